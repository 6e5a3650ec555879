"""Test-run set-up shared by every pytest test: the ews-sim fixtures (sim_factory, sim,
module_sim_factory, certs; the harness itself is tests/simharness.py), the calsync daemon
fixtures of tests/sync, tests/api and tests/webhook (calsync_bin, calsync_factory; the daemon
harness is tests/sync/calsyncproc.py), and MD4 for the NTLM clients.

The third-party NTLM clients the tests use in-process (exchangelib and requests_ntlm,
through ntlm_auth) call hashlib.new('md4'), which Debian 12's OpenSSL 3 keeps in its
legacy provider. We load that provider into OpenSSL's default library context, the one
Python's hashlib uses, so MD4 works for the clients. ews-sim itself does not need this:
it has its own MD4 (sim/ewssim/md4.py).
"""

import ctypes
import ctypes.util
import hashlib
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "sync"))

from calsyncproc import Calsync, calsync_binary, calsync_pool, failed  # noqa: E402
from simharness import sim_pool  # noqa: E402


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
def module_sim_factory():
    """ews-sims shared by the tests of one module (each test uses its own mailboxes)."""
    yield from sim_pool()


# ---- calsync daemons ----------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def calsync_bin():
    path = calsync_binary()
    if not os.access(path, os.X_OK):
        pytest.fail("calsync binary not found at %s: build it (meson setup build && meson compile -C build) "
                    "or set CALSYNC_BUILD to a meson build directory" % path)
    return path


@pytest.fixture
def calsync_class():
    """The daemon harness class calsync_factory makes; tests/api uses its subclass."""
    return Calsync


@pytest.fixture
def calsync_factory(calsync_bin, calsync_class, tmp_path, request):
    """calsync_factory(sim, mailboxes, **config) -> Calsync (not started)."""
    yield from calsync_pool(calsync_class, lambda name, i: tmp_path / (name or "calsync%d" % (i + 1)),
                            lambda: failed(request.node))


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

