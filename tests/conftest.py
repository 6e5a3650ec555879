"""Test-run set-up shared by every pytest test.

The third-party NTLM clients the tests use in-process (exchangelib and requests_ntlm,
through ntlm_auth) call hashlib.new('md4'), which Debian 12's OpenSSL 3 keeps in its
legacy provider. We load that provider into OpenSSL's default library context, the one
Python's hashlib uses, so MD4 works for the clients. ews-sim itself does not need this:
it has its own MD4 (sim/ewssim/md4.py).
"""

import ctypes
import ctypes.util
import hashlib


def _enable_md4():
    try:
        hashlib.new("md4", b"")
        return
    except ValueError:
        pass
    lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
    lib.OSSL_PROVIDER_load.restype = ctypes.c_void_p
    lib.OSSL_PROVIDER_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    for name in (b"default", b"legacy"):
        if not lib.OSSL_PROVIDER_load(None, name):
            raise RuntimeError("tests: cannot load OpenSSL's %s provider (MD4 for NTLM clients)" % name.decode())
    hashlib.new("md4", b"")


_enable_md4()
