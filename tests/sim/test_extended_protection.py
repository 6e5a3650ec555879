"""ews-sim's IIS Extended Protection for Authentication (--extended-protection, GET/POST
/auth, the auth_failures counters).

Two independent real clients show the check is right: exchangelib (Debian's requests-ntlm
1.1 sends a channel binding token over HTTPS, computed by its own code from the certificate
it received) must be accepted under `require`; curl --ntlm (Debian 12's 7.88 sends none)
must be refused under `require` and accepted under `allow` and `off`. Hand-built
AUTHENTICATE messages pin down absent, all-zero, wrong and right tokens per mode, and the
RFC 5929 hash choice is checked against the openssl CLI on certificates signed with
SHA-256, SHA-384 and SHA-1.
"""

import asyncio
import base64
import datetime
import hashlib
import http.client
import os
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.test_utils import make_mocked_request
from exchangelib import IMPERSONATION, NTLM, UTC, Account, Build, Configuration, Credentials, EWSDateTime, \
    FailFast, Version
from exchangelib.protocol import close_connections
from ntlm_auth import ntlm
from ntlm_auth.gss_channel_bindings import GssChannelBindingsStruct

import ews

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "sim"))

from ewssim import auth as authmod  # noqa: E402

EWS_PATH = "/EWS/Exchange.asmx"
GETFOLDER = ews.envelope(
    '<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>'
    '<m:FolderIds><t:DistinguishedFolderId Id="calendar"/></m:FolderIds></m:GetFolder>',
    impersonate="user00001@contoso.example",
)
NOERROR = b"<m:ResponseCode>NoError</m:ResponseCode>"


# --------------------------------------------------------------------------
# certificates (openssl CLI) and simulators
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and three server certificates for 127.0.0.1 it signed with SHA-256, SHA-384
    and SHA-1; for each, the DER and the RFC 5929 hash computed by `openssl dgst`."""
    d = tmp_path_factory.mktemp("epa-pki")

    def openssl(*args, stdin=None):
        return subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, input=stdin).stdout

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=ews-sim EPA test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    (d / "ext.cnf").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                               "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    out = {"ca": str(d / "ca.pem"), "dir": d}
    for sig, cbt_hash in (("sha256", "sha256"), ("sha384", "sha384"), ("sha1", "sha256")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", sig + ".key", "-out", sig + ".csr",
                "-subj", "/CN=localhost")
        openssl("x509", "-req", "-in", sig + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", sig + ".pem", "-days", "2", "-extfile", "ext.cnf", "-" + sig)
        text = openssl("x509", "-in", sig + ".pem", "-noout", "-text").decode()
        assert "Signature Algorithm: %sWithRSAEncryption" % sig in text
        der = openssl("x509", "-in", sig + ".pem", "-outform", "DER")
        digest = openssl("dgst", "-" + cbt_hash, "-binary", stdin=der)
        # what ews-sim gets: the leaf first, then the CA (a chain file)
        (d / (sig + "-chain.pem")).write_bytes((d / (sig + ".pem")).read_bytes() + (d / "ca.pem").read_bytes())
        out[sig] = {"cert": str(d / (sig + "-chain.pem")), "key": str(d / (sig + ".key")), "der": der,
                    "hash_name": cbt_hash, "hash": digest}
    return out


def cbt_md5(cert_hash):
    """MsvAvChannelBindings for a tls-server-end-point hash, built by ntlm_auth's own code."""
    b = GssChannelBindingsStruct()
    b[b.APPLICATION_DATA] = b"tls-server-end-point:" + cert_hash
    return hashlib.md5(b.get_data()).digest()


@pytest.fixture(scope="module")
def tls_sim(module_sim_factory, pki):
    """HTTPS ews-sim with a SHA-384-signed certificate (so SHA-384 channel bindings)."""
    return module_sim_factory("--tls-cert", pki["sha384"]["cert"], "--tls-key", pki["sha384"]["key"],
                              "--extended-protection", "require")


@pytest.fixture(scope="module")
def http_sim(module_sim_factory):
    return module_sim_factory("--extended-protection", "require")


def set_mode(sim, mode):
    _, doc = sim.control("POST", "/auth", {"extended_protection": mode}, expect=200)
    assert doc["extended_protection"] == mode
    sim.control("POST", "/counters/reset", expect=200)


def auth_failures(sim):
    return sim.counters().get("auth_failures", {})


# --------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------
def curl(sim, ca, *args):
    cmd = ["curl", "-sS", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}", "-H", "Content-Type: text/xml",
           "--data-binary", "@-", *args]
    if ca:
        cmd += ["--cacert", ca]
    p = subprocess.run(cmd + [sim.ews], input=GETFOLDER, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    body, _, code = p.stdout.rpartition(b"\n")
    return int(code), body


def exchangelib_reads_calendar(sim, monkeypatch, ca):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
    try:
        config = Configuration(service_endpoint=sim.ews, credentials=Credentials("CONTOSO\\svc", "Passw0rd!"),
                               auth_type=NTLM, version=Version(build=Build(15, 1)), retry_policy=FailFast())
        a = Account(primary_smtp_address="user00002@contoso.example", config=config, autodiscover=False,
                    access_type=IMPERSONATION, default_timezone=UTC)
        today = EWSDateTime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return list(a.calendar.view(start=today - datetime.timedelta(days=1),
                                    end=today + datetime.timedelta(days=14)))
    finally:
        close_connections()


class TlsConn:
    """One keep-alive HTTPS connection to the sim, driven by hand."""

    def __init__(self, sim, ca):
        self.c = http.client.HTTPSConnection("127.0.0.1", sim.port, timeout=30,
                                             context=ssl.create_default_context(cafile=ca))
        self.c.connect()
        self.local = self.c.sock.getsockname()
        self.peer_der = self.c.sock.getpeercert(True)

    def post(self, authorization=None):
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        if authorization is not None:
            headers["Authorization"] = authorization
        self.c.request("POST", EWS_PATH, body=GETFOLDER, headers=headers)
        r = self.c.getresponse()
        body = r.read()
        assert self.c.sock is not None and self.c.sock.getsockname() == self.local, "connection was not kept"
        return r.status, r.headers.get_all("WWW-Authenticate") or [], body

    def ntlm(self, ctx):
        """NEGOTIATE, CHALLENGE, AUTHENTICATE; the final (status, challenges, body)."""
        status, challenges, _ = self.post("NTLM " + base64.b64encode(ctx.step()).decode())
        assert status == 401 and len(challenges) == 1 and challenges[0].startswith("NTLM ")
        type3 = ctx.step(base64.b64decode(challenges[0][5:]))
        return self.post("NTLM " + base64.b64encode(type3).decode())

    def close(self):
        self.c.close()


def ntlm_ctx(password="Passw0rd!", app_data=None):
    cbt = None
    if app_data is not None:
        cbt = GssChannelBindingsStruct()
        cbt[cbt.APPLICATION_DATA] = app_data
    return ntlm.NtlmContext("svc", password, domain="CONTOSO", workstation="WS1", cbt_data=cbt,
                            ntlm_compatibility=3)


# --------------------------------------------------------------------------
# 1. exchangelib (requests-ntlm sends a channel binding) is accepted
# --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["require", "allow", "off"])
def test_exchangelib_with_cbt_accepted(tls_sim, pki, monkeypatch, mode):
    set_mode(tls_sim, mode)
    items = exchangelib_reads_calendar(tls_sim, monkeypatch, pki["ca"])
    assert items, "the demo calendar has items in the window"
    assert auth_failures(tls_sim) == {}
    assert tls_sim.counters()["requests_by_op"].get("FindItem", 0) >= 1


def test_exchangelib_with_cbt_accepted_sha256_certificate(module_sim_factory, pki, monkeypatch):
    s = module_sim_factory("--tls-cert", pki["sha256"]["cert"], "--tls-key", pki["sha256"]["key"],
                           "--extended-protection", "require")
    assert s.control("GET", "/auth", expect=200)[1]["channel_binding"]["hash"] == "sha256"
    assert exchangelib_reads_calendar(s, monkeypatch, pki["ca"])
    assert auth_failures(s) == {}


# --------------------------------------------------------------------------
# 2. curl --ntlm (no channel binding): refused under require only
# --------------------------------------------------------------------------
def test_curl_without_cbt(tls_sim, pki):
    ntlm_user = ["--ntlm", "-u", "CONTOSO\\svc:Passw0rd!"]
    set_mode(tls_sim, "require")
    code, body = curl(tls_sim, pki["ca"], *ntlm_user)
    assert code == 401 and NOERROR not in body
    assert auth_failures(tls_sim) == {"channel-binding-missing": 1}
    # Basic has no channel binding to check (IIS EPA binds Windows authentication only)
    code, body = curl(tls_sim, pki["ca"], "--basic", "-u", "svc@contoso.example:Passw0rd!")
    assert code == 200 and NOERROR in body
    for mode in ("allow", "off"):
        set_mode(tls_sim, mode)
        code, body = curl(tls_sim, pki["ca"], *ntlm_user)
        assert code == 200 and NOERROR in body, mode
        assert auth_failures(tls_sim) == {}


# --------------------------------------------------------------------------
# 3a. hand-built AUTHENTICATE messages, in process
# --------------------------------------------------------------------------
class FakeTransport:
    def __init__(self, tls):
        self.tls = tls

    def is_closing(self):
        return False

    def get_extra_info(self, name, default=None):
        return object() if self.tls and name == "ssl_object" else default


def mocked(transport, authorization=None):
    headers = {"Host": "127.0.0.1"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return make_mocked_request("POST", EWS_PATH, headers=headers, transport=transport, payload=EMPTY_PAYLOAD)


def hand_built_type3(type2, cbt, password="Passw0rd!"):
    """An NTLMv2 AUTHENTICATE (no MIC) whose client challenge carries the CHALLENGE's AV
    pairs plus MsvAvChannelBindings = cbt (none if cbt is None)."""
    challenge = type2[24:32]
    ti_len, _, ti_off = struct.unpack_from("<HHI", type2, 40)
    pairs = authmod.parse_av_pairs(type2[ti_off:ti_off + ti_len])
    if cbt is not None:
        pairs.append((10, cbt))
    av = b"".join(struct.pack("<HH", i, len(v)) + v for i, v in pairs) + b"\x00" * 4
    filetime = int((time.time() + 11644473600) * 10_000_000)
    temp = b"\x01\x01" + b"\x00" * 6 + struct.pack("<Q", filetime) + os.urandom(8) + b"\x00" * 4 + av + b"\x00" * 4
    proof = authmod.ntproofstr(authmod.ntowfv2(password, "svc", "CONTOSO"), challenge, temp)
    fields = [b"\x00" * 24, proof + temp, "CONTOSO".encode("utf-16-le"), "svc".encode("utf-16-le"),
              "WS1".encode("utf-16-le"), b""]
    flags = authmod.NEGOTIATE_UNICODE | authmod.NEGOTIATE_NTLM | authmod.NEGOTIATE_EXTENDED_SESSIONSECURITY
    head, payload, offset = b"", b"", 64
    for f in fields:
        head += struct.pack("<HHI", len(f), len(f), offset + len(payload))
        payload += f
    return b"NTLMSSP\x00" + struct.pack("<I", 3) + head + struct.pack("<I", flags) + payload


def authenticate_in_process(a, tls, make_type3):
    """NEGOTIATE then AUTHENTICATE = make_type3(type2) on one fake connection; returns the
    account or the 401 response."""
    t = FakeTransport(tls)
    type1 = ntlm_ctx().step()

    async def go():
        r = await a.authenticate(mocked(t, "NTLM " + base64.b64encode(type1).decode()))
        assert r.status == 401
        type2 = base64.b64decode(r.headers.getall("WWW-Authenticate")[0].split(" ", 1)[1])
        return await a.authenticate(mocked(t, "NTLM " + base64.b64encode(make_type3(type2)).decode()))
    return asyncio.run(go())


@pytest.fixture
def authenticator(pki):
    failures = []

    def make(mode):
        failures.clear()
        return authmod.Authenticator(
            lambda name: ("svc@contoso.example", "Passw0rd!") if name.lower() == "contoso\\svc" else None,
            lambda token: None, extended_protection=mode, tls_cert_der=pki["sha384"]["der"],
            on_failure=failures.append)
    make.failures = failures
    return make


# expected result per (mode, token): None = accepted, else the failure reason
EXPECTED = {
    "off": {"absent": None, "zero": None, "wrong": None, "right": None},
    "allow": {"absent": None, "zero": None, "wrong": "channel-binding-mismatch", "right": None},
    "require": {"absent": "channel-binding-missing", "zero": "channel-binding-missing",
                "wrong": "channel-binding-mismatch", "right": None},
}


@pytest.mark.parametrize("mode", ["off", "allow", "require"])
@pytest.mark.parametrize("token", ["absent", "zero", "wrong", "right"])
def test_hand_built_tokens(authenticator, pki, mode, token):
    right = cbt_md5(pki["sha384"]["hash"])
    cbt = {"absent": None, "zero": b"\x00" * 16, "wrong": cbt_md5(pki["sha256"]["hash"]), "right": right}[token]
    a = authenticator(mode)
    r = authenticate_in_process(a, True, lambda type2: hand_built_type3(type2, cbt))
    want = EXPECTED[mode][token]
    if want is None:
        assert r == "svc@contoso.example"
        assert authenticator.failures == []
    else:
        assert isinstance(r, web.Response) and r.status == 401
        assert authenticator.failures == [want]
    # over plain HTTP nothing is checked
    assert authenticate_in_process(a, False, lambda type2: hand_built_type3(type2, cbt)) == "svc@contoso.example"


def test_hand_built_other_shapes(authenticator, pki):
    right = cbt_md5(pki["sha384"]["hash"])
    a = authenticator("allow")
    # a token of the wrong length, or a one-bit difference, is a mismatch, not "absent"
    for cbt in (right[:15], right + b"\x00", b"\x00" * 15 + b"\x01", bytes([right[0] ^ 1]) + right[1:]):
        r = authenticate_in_process(a, True, lambda type2: hand_built_type3(type2, cbt))
        assert isinstance(r, web.Response) and r.status == 401
    assert authenticator.failures == ["channel-binding-mismatch"] * 4
    # the token is covered by NTProofStr: swapping a wrong one in after signing a right one
    # breaks the credentials, so nobody can repair a client's token on the way

    def swapped(type2):
        msg = bytearray(hand_built_type3(type2, right))
        pos = bytes(msg).rfind(right)
        msg[pos:pos + 16] = b"\x11" * 16
        return bytes(msg)
    a = authenticator("off")
    r = authenticate_in_process(a, True, swapped)
    assert isinstance(r, web.Response) and authenticator.failures == ["credentials"]
    # bad credentials are reported as such even when the token is also missing
    a = authenticator("require")
    r = authenticate_in_process(a, True, lambda type2: hand_built_type3(type2, None, password="wrong"))
    assert isinstance(r, web.Response) and authenticator.failures == ["credentials"]


@pytest.mark.parametrize("mode", ["allow", "require"])
def test_ntlm_auth_client_tokens(authenticator, pki, mode):
    """ntlm_auth (with a MIC) computing the token itself from application data."""
    a = authenticator(mode)

    def with_app_data(app_data):
        ctx = ntlm_ctx(app_data=app_data)
        t = FakeTransport(True)

        async def go():
            r = await a.authenticate(mocked(t, "NTLM " + base64.b64encode(ctx.step()).decode()))
            type2 = base64.b64decode(r.headers.getall("WWW-Authenticate")[0].split(" ", 1)[1])
            return await a.authenticate(mocked(t, "NTLM " + base64.b64encode(ctx.step(type2)).decode()))
        return asyncio.run(go())

    assert with_app_data(b"tls-server-end-point:" + pki["sha384"]["hash"]) == "svc@contoso.example"
    # the SHA-256 hash of a SHA-384-signed certificate is what a client wrongly choosing the hash sends
    der = pki["sha384"]["der"]
    for app_data in (b"tls-server-end-point:" + hashlib.sha256(der).digest(),
                     b"tls-unique:" + pki["sha384"]["hash"]):
        r = with_app_data(app_data)
        assert isinstance(r, web.Response) and r.status == 401
    assert authenticator.failures == ["channel-binding-mismatch"] * 2


def test_unknown_mode_refused():
    with pytest.raises(ValueError):
        authmod.Authenticator(lambda n: None, lambda t: None, extended_protection="yes")


# --------------------------------------------------------------------------
# 3b. the same over a real TLS connection to ews-sim: IIS's ordinary 401, state reset
# --------------------------------------------------------------------------
def test_wrong_cbt_over_tls_is_an_ordinary_401(tls_sim, pki):
    set_mode(tls_sim, "allow")
    c = TlsConn(tls_sim, pki["ca"])
    try:
        served = hashlib.sha384(c.peer_der).digest()
        assert c.peer_der == pki["sha384"]["der"]
        bad = c.ntlm(ntlm_ctx(app_data=b"tls-server-end-point:" + hashlib.sha256(c.peer_der).digest()))
        assert auth_failures(tls_sim) == {"channel-binding-mismatch": 1}
        # the connection's NTLM state is gone: no header means anonymous again
        anonymous = c.post()
        assert anonymous[0] == 401
        wrong_password = c.ntlm(ntlm_ctx(password="wrong", app_data=b"tls-server-end-point:" + served))
        assert auth_failures(tls_sim) == {"channel-binding-mismatch": 1, "credentials": 1}
        # the same page and challenges as any failed authentication
        assert bad[0] == wrong_password[0] == 401
        assert bad[1] == wrong_password[1] == anonymous[1]
        assert [v.split(" ")[0] for v in bad[1]] == ["Negotiate", "NTLM", "Basic", "Bearer"]
        assert bad[2] == wrong_password[2] == anonymous[2] and b"401 - Unauthorized" in bad[2]
        # and the right token on the same connection gets in, and stays in
        status, _, body = c.ntlm(ntlm_ctx(app_data=b"tls-server-end-point:" + served))
        assert status == 200 and NOERROR in body
        assert c.post()[0] == 200
    finally:
        c.close()
    set_mode(tls_sim, "require")
    c = TlsConn(tls_sim, pki["ca"])
    try:
        assert c.ntlm(ntlm_ctx())[0] == 401  # ntlm_auth without cbt_data sends no token
        assert auth_failures(tls_sim) == {"channel-binding-missing": 1}
    finally:
        c.close()


# --------------------------------------------------------------------------
# 4. RFC 5929: which hash of which certificate
# --------------------------------------------------------------------------
@pytest.mark.parametrize("sig", ["sha256", "sha384", "sha1"])
def test_tls_server_end_point_hash(pki, sig):
    cert = pki[sig]
    name, digest = authmod.tls_server_end_point(cert["der"])
    assert (name, digest) == (cert["hash_name"], cert["hash"])
    # the leaf, not the CA, of a chain file
    assert authmod.leaf_cert_der(cert["cert"]) == cert["der"]
    # requests-ntlm's own choice agrees (a second, independent implementation)
    from requests_ntlm.requests_ntlm import _get_certificate_hash
    assert _get_certificate_hash(cert["der"]) == digest.hex().upper()
    a = authmod.Authenticator(lambda n: None, lambda t: None, tls_cert_der=cert["der"])
    assert a.describe()["channel_binding"] == {"type": "tls-server-end-point", "hash": cert["hash_name"],
                                               "certificate_hash": cert["hash"].hex()}
    assert a._expected_cbt == cbt_md5(cert["hash"])


def test_served_certificate_and_control_api(tls_sim, http_sim, pki):
    c = TlsConn(tls_sim, pki["ca"])
    peer = c.peer_der
    c.close()
    _, doc = tls_sim.control("GET", "/auth", expect=200)
    assert doc["channel_binding"] == {"type": "tls-server-end-point", "hash": "sha384",
                                      "certificate_hash": hashlib.sha384(peer).hexdigest()}
    assert doc["methods"] == ["negotiate", "ntlm", "basic", "bearer"]
    for body in ({"extended_protection": "on"}, {"extended_protection": None}, {"tokenChecking": "Require"}):
        status, err = tls_sim.control("POST", "/auth", body)
        assert status == 400 and "error" in err
    set_mode(tls_sim, "off")
    assert tls_sim.control("GET", "/auth", expect=200)[1]["extended_protection"] == "off"
    _, doc = http_sim.control("GET", "/auth", expect=200)
    assert doc["extended_protection"] == "require" and doc["channel_binding"] is None


# --------------------------------------------------------------------------
# 5. plain HTTP: nothing to bind, nothing checked
# --------------------------------------------------------------------------
def test_plain_http_not_checked(http_sim):
    set_mode(http_sim, "require")
    code, body = curl(http_sim, None, "--ntlm", "-u", "CONTOSO\\svc:Passw0rd!")
    assert code == 200 and NOERROR in body
    code, _ = curl(http_sim, None, "--ntlm", "-u", "CONTOSO\\svc:wrong")
    assert code == 401
    assert auth_failures(http_sim) == {"credentials": 1}


# --------------------------------------------------------------------------
# 6. counters: by reason, reset with the others
# --------------------------------------------------------------------------
def test_counters_by_reason(tls_sim, pki):
    set_mode(tls_sim, "require")
    curl(tls_sim, pki["ca"], "--ntlm", "-u", "CONTOSO\\svc:Passw0rd!")
    curl(tls_sim, pki["ca"], "--ntlm", "-u", "CONTOSO\\svc:Passw0rd!")
    curl(tls_sim, pki["ca"], "--ntlm", "-u", "CONTOSO\\svc:wrong")
    curl(tls_sim, pki["ca"], "--basic", "-u", "svc@contoso.example:wrong")
    curl(tls_sim, pki["ca"], "-H", "Authorization: Bearer nope")
    curl(tls_sim, pki["ca"])  # no credentials: not a failure
    counters = tls_sim.counters()
    assert counters["auth_failures"] == {"channel-binding-missing": 2, "credentials": 3}
    assert counters["rejections"]["http_401"] >= 6
    tls_sim.control("POST", "/counters/reset", expect=200)
    assert auth_failures(tls_sim) == {}
