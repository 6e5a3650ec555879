"""Test-run set-up shared by every pytest test: the ews-sim fixtures (sim_factory, sim,
certs; the harness itself is tests/simharness.py) and MD4 for the NTLM clients.

The third-party NTLM clients the tests use in-process (exchangelib and requests_ntlm,
through ntlm_auth) call hashlib.new('md4'), which Debian 12's OpenSSL 3 keeps in its
legacy provider. We load that provider into OpenSSL's default library context, the one
Python's hashlib uses, so MD4 works for the clients. ews-sim itself does not need this:
it has its own MD4 (sim/ewssim/md4.py).
"""

import ctypes
import ctypes.util
import hashlib
import subprocess

import pytest

from simharness import sim_pool


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


@pytest.fixture
def sim_factory():
    yield from sim_pool()


@pytest.fixture
def sim(sim_factory):
    return sim_factory()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A throwaway CA and a server certificate it signed for 127.0.0.1 and localhost."""
    d = tmp_path_factory.mktemp("pki")

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=ews-sim test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
        "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "authorityKeyIdentifier=keyid\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    return {"ca": str(d / "ca.pem"), "cert": str(d / "srv.pem"), "key": str(d / "srv.key")}

