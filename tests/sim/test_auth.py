"""End-to-end tests of sim/ewssim/auth.py with real, independent clients.

A tiny aiohttp app (POST/GET /EWS/Exchange.asmx -> "ok <account>") is served on
127.0.0.1:<random port> from a background thread, over HTTP and HTTPS (throwaway
CA made with the openssl CLI).  Clients: curl (--ntlm / --basic / Bearer),
requests + requests_ntlm and exchangelib (in a subprocess, because their MD4
comes from OpenSSL's legacy provider, see _client_env), and raw http.client
connections to pin down IIS's per-connection NTLM semantics.
"""

import asyncio
import base64
import http.client
import json
import logging
import os
import ssl
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from aiohttp import web

from simharness import LEGACY_OPENSSL_CONF

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "sim"))

from ewssim import md4 as md4mod  # noqa: E402
from ewssim.auth import Authenticator  # noqa: E402

PYTHON = "/usr/bin/python3"
CURL = "/usr/bin/curl"
EWS_PATH = "/EWS/Exchange.asmx"

USERS = {"svc": "Passw0rd!", "alice": "Wonder land:1", "bob": "pässwörd"}
TOKENS = {"tok": "svc@contoso.example", "alice-token-123": "alice@contoso.example"}
SECRETS = list(USERS.values()) + list(TOKENS)

ALL_CHALLENGES = [
    "Negotiate",
    "NTLM",
    'Basic realm="127.0.0.1"',
    'Bearer client_id="00000002-0000-0ff1-ce00-000000000000", '
    'trusted_issuers="00000001-0000-0000-c000-000000000000@*", '
    'token_types="app_asserted_user_v1 service_asserted_app_v1", '
    'authorization_uri="https://login.windows.net/common/oauth2/authorize", '
    'error="invalid_token"',
]


def make_lookup(calls):
    def lookup(name):
        calls.append(name)
        n = name.lower()
        if "\\" in n:
            dom, user = n.split("\\", 1)
            if dom not in ("contoso", "contoso.example"):
                return None
        elif "@" in n:
            user, dom = n.split("@", 1)
            if dom != "contoso.example":
                return None
        else:
            user = n
        if user in USERS:
            return user + "@contoso.example", USERS[user]
        return None
    return lookup


def bearer_lookup(token):
    return TOKENS.get(token)


# --------------------------------------------------------------------------
# server harness
# --------------------------------------------------------------------------
class SimServer:
    """aiohttp app with the Authenticator in front, in a background thread."""

    def __init__(self, methods=("negotiate", "ntlm", "basic", "bearer"), ssl_context=None):
        self.lookup_calls = []
        self.auth = Authenticator(make_lookup(self.lookup_calls), bearer_lookup, methods=methods)
        self.ssl_context = ssl_context
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.bodies = []

    async def _handler(self, request):
        r = await self.auth.authenticate(request)
        if isinstance(r, web.Response):
            return r
        body = await request.read()
        self.bodies.append(body)
        return web.Response(text="ok " + r)

    async def _start(self):
        app = web.Application()
        app.router.add_post(EWS_PATH, self._handler)
        app.router.add_get(EWS_PATH, self._handler)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        return self.runner.addresses[0][1]

    def start(self):
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        scheme = "https" if self.ssl_context else "http"
        self.url = "%s://127.0.0.1:%d%s" % (scheme, self.port, EWS_PATH)
        return self

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def connection_count(self):
        async def get():
            return self.auth.connection_count()
        return asyncio.run_coroutine_threadsafe(get(), self.loop).result(10)


@pytest.fixture(scope="module")
def server():
    s = SimServer().start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def tls_server(certs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["cert"], certs["key"])
    s = SimServer(ssl_context=ctx).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def negotiate_only_server():
    """EWS vdir with only Windows auth (Negotiate) + Basic enabled."""
    s = SimServer(methods=("negotiate", "basic")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def legacy_openssl_conf(tmp_path_factory):
    """OpenSSL config enabling the legacy provider (MD4) for client processes.

    Debian 12's hashlib has no MD4 (OpenSSL 3), and ntlm_auth -- the NTLM code
    under requests_ntlm and exchangelib -- calls hashlib.new('md4').  Clients
    therefore need OPENSSL_CONF pointing at a config like this one."""
    p = LEGACY_OPENSSL_CONF
    env = dict(os.environ, OPENSSL_CONF=str(p))
    probe = subprocess.run([PYTHON, "-c", "import hashlib; hashlib.new('md4', b'')"],
                           env=env, capture_output=True)
    if probe.returncode != 0:
        pytest.fail("OpenSSL legacy provider (MD4) not available for ntlm_auth clients: %s" % probe.stderr)
    return str(p)


@pytest.fixture
def no_secrets_logged(caplog):
    caplog.set_level(logging.DEBUG)
    yield
    for secret in SECRETS:
        assert secret not in caplog.text


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def curl(*args, data="<x/>"):
    """Run curl against the sim; return (final status code, body)."""
    cmd = [CURL, "-s", "-S", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}",
           "-H", "Content-Type: text/xml; charset=utf-8"]
    if data is not None:
        cmd += ["--data-binary", data]
    cmd += list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    body, _, code = p.stdout.rpartition("\n")
    return int(code), body


def www_authenticate(resp):
    return resp.headers.get_all("WWW-Authenticate") or []


class Conn:
    """One keep-alive HTTP connection (http.client) to the sim."""

    def __init__(self, srv):
        self.c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        self.c.connect()
        self.local = self.c.sock.getsockname()

    def post(self, authorization=None, body=b"<soap/>"):
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        if authorization is not None:
            headers["Authorization"] = authorization
        self.c.request("POST", EWS_PATH, body=body, headers=headers)
        r = self.c.getresponse()
        data = r.read()
        assert self.c.sock is not None, "server closed the connection"
        assert self.c.sock.getsockname() == self.local, "http.client reconnected"
        return r, data

    def close(self):
        self.c.close()


@pytest.fixture
def ntlm_client(monkeypatch):
    """Factory of ntlm_auth contexts usable in this (legacy-less) process.

    ntlm_auth needs hashlib MD4 only inside its own hash helpers; here we let it
    use our MD4 (already verified against RFC 1320 and OpenSSL in the unit
    tests).  The fully independent paths are covered by the curl and
    subprocess tests."""
    from ntlm_auth import compute_hash, ntlm

    class _HashlibShim:
        def __getattr__(self, name):
            import hashlib
            return getattr(hashlib, name)

        @staticmethod
        def new(name, data=b""):
            if name.lower() == "md4":
                return md4mod.MD4(data)
            import hashlib
            return hashlib.new(name, data)

    monkeypatch.setattr(compute_hash, "hashlib", _HashlibShim())

    def make(user="svc", password="Passw0rd!", domain="CONTOSO", compat=3):
        return ntlm.NtlmContext(user, password, domain=domain, workstation="CLIENT1",
                                ntlm_compatibility=compat)
    return make


def b64(data):
    return base64.b64encode(data).decode("ascii")


def handshake(conn, ctx, scheme="NTLM"):
    """Run type1/type2/type3 on conn; return (final response, body, type3 bytes)."""
    r, _ = conn.post("%s %s" % (scheme, b64(ctx.step())))
    assert r.status == 401
    challenges = www_authenticate(r)
    assert len(challenges) == 1 and challenges[0].startswith(scheme + " ")
    type2 = base64.b64decode(challenges[0].split(" ", 1)[1])
    type3 = ctx.step(type2)
    r, data = conn.post("%s %s" % (scheme, b64(type3)))
    return r, data, type3


# --------------------------------------------------------------------------
# 401 shape
# --------------------------------------------------------------------------
def test_anonymous_gets_iis_401(server):
    c = Conn(server)
    r, body = c.post()
    assert r.status == 401
    assert www_authenticate(r) == ALL_CHALLENGES
    assert r.getheader("Server") == "Microsoft-IIS/10.0"
    assert r.getheader("Content-Type").startswith("text/html")
    assert b"401 - Unauthorized" in body
    # keep-alive: the 401 must not close the connection
    assert (r.getheader("Connection") or "").lower() != "close"
    r, _ = c.post()
    assert r.status == 401
    c.close()


def test_methods_restrict_challenges(negotiate_only_server):
    c = Conn(negotiate_only_server)
    r, _ = c.post()
    assert www_authenticate(r) == ["Negotiate", 'Basic realm="127.0.0.1"']
    # disabled schemes are refused
    r, _ = c.post("Bearer tok")
    assert r.status == 401
    r, _ = c.post("NTLM " + b64(b"NTLMSSP\x00\x01\x00\x00\x00" + b"\x07\x82\x08\xa2" + b"\0" * 16))
    assert r.status == 401 and www_authenticate(r) == ["Negotiate", 'Basic realm="127.0.0.1"']
    c.close()


def test_unknown_method_rejected():
    with pytest.raises(ValueError):
        Authenticator(lambda u: None, lambda t: None, methods=("ntlm", "digest"))


# --------------------------------------------------------------------------
# curl
# --------------------------------------------------------------------------
@pytest.mark.parametrize("user", ["CONTOSO\\svc", "svc@contoso.example", "contoso\\alice"])
def test_curl_ntlm_http(server, user, no_secrets_logged):
    password = USERS[user.split("\\")[-1].split("@")[0]]
    code, body = curl("--ntlm", "-u", "%s:%s" % (user, password), server.url)
    assert code == 200, body
    assert body == "ok %s@contoso.example" % user.split("\\")[-1].split("@")[0].lower()
    # NTLM lookup gets DOMAIN\user or the bare (UPN) user as sent
    assert server.lookup_calls[-1] == user


def test_curl_ntlm_https(tls_server, certs):
    code, body = curl("--ntlm", "-u", "CONTOSO\\svc:Passw0rd!", "--cacert", certs["ca"],
                      tls_server.url)
    assert (code, body) == (200, "ok svc@contoso.example")
    code, body = curl("--ntlm", "-u", "svc@contoso.example:Passw0rd!", "--cacert", certs["ca"],
                      tls_server.url)
    assert (code, body) == (200, "ok svc@contoso.example")
    code, _ = curl("--ntlm", "-u", "CONTOSO\\svc:nope", "--cacert", certs["ca"], tls_server.url)
    assert code == 401


def test_curl_ntlm_wrong_password_and_user(server, no_secrets_logged):
    code, _ = curl("--ntlm", "-u", "CONTOSO\\svc:Passw0rd", server.url)
    assert code == 401
    code, _ = curl("--ntlm", "-u", "CONTOSO\\nobody:Passw0rd!", server.url)
    assert code == 401
    code, _ = curl("--ntlm", "-u", "OTHERDOM\\svc:Passw0rd!", server.url)
    assert code == 401


def test_curl_ntlm_body_reaches_handler(server, tmp_path):
    big = "<soap>" + "x" * 200_000 + "</soap>"
    (tmp_path / "body.xml").write_text(big)
    code, body = curl("--ntlm", "-u", "CONTOSO\\svc:Passw0rd!", server.url,
                      data="@" + str(tmp_path / "body.xml"))
    assert code == 200
    assert server.bodies[-1] == big.encode()


def test_curl_ntlm_reuses_connection_for_later_requests(server):
    # two URLs in one curl run: the second rides the authenticated connection
    cmd = [CURL, "-s", "--ntlm", "-u", "CONTOSO\\svc:Passw0rd!", "-d", "<x/>",
           "-w", "%{http_code} %{num_connects}\n", "-o", "/dev/null", server.url,
           "-o", "/dev/null", server.url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.split("\n")
    assert out[0] == "200 1" and out[1] == "200 0"


def test_curl_basic(server, tls_server, certs, no_secrets_logged):
    assert curl("--basic", "-u", "CONTOSO\\svc:Passw0rd!", server.url) == \
        (200, "ok svc@contoso.example")
    assert curl("--basic", "-u", "svc@contoso.example:Passw0rd!", server.url)[0] == 200
    assert curl("--basic", "-u", "alice:Wonder land:1", server.url) == \
        (200, "ok alice@contoso.example")
    assert curl("--basic", "-u", "bob:pässwörd", server.url) == (200, "ok bob@contoso.example")
    assert curl("--basic", "-u", "CONTOSO\\svc:wrong", server.url)[0] == 401
    assert curl("--basic", "-u", "CONTOSO\\svc:", server.url)[0] == 401
    assert curl("--basic", "-u", "CONTOSO\\svc:Passw0rd!", "--cacert", certs["ca"],
                tls_server.url) == (200, "ok svc@contoso.example")


def test_curl_bearer(server, no_secrets_logged):
    assert curl("-H", "Authorization: Bearer tok", server.url) == (200, "ok svc@contoso.example")
    p = subprocess.run([CURL, "-s", "-D", "-", "-o", "/dev/null", "-d", "<x/>",
                        "-H", "Authorization: Bearer bogus", server.url],
                       capture_output=True, text=True, timeout=30)
    assert p.stdout.startswith("HTTP/1.1 401")
    assert 'error="invalid_token"' in p.stdout
    assert curl("-H", "Authorization: Bearer ", server.url)[0] == 401


# --------------------------------------------------------------------------
# requests + requests_ntlm, exchangelib (subprocess, real OpenSSL MD4)
# --------------------------------------------------------------------------
REQUESTS_NTLM_CLIENT = r"""
import json, sys, requests
from requests_ntlm import HttpNtlmAuth
url, user, password, verify = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
s = requests.Session()
s.auth = HttpNtlmAuth(user, password)
out = []
for i in range(3):
    r = s.post(url, data=b"<soap>%d</soap>" % i, headers={"Content-Type": "text/xml"},
               verify=verify if verify != "-" else True)
    out.append({"status": r.status_code, "text": r.text,
                "history": [h.status_code for h in r.history],
                "challenge": [h.headers.get("WWW-Authenticate", "") for h in r.history]})
print(json.dumps(out))
"""


def run_client(script, args, conf, extra_env=None):
    env = dict(os.environ, OPENSSL_CONF=conf)
    env.update(extra_env or {})
    p = subprocess.run([PYTHON, "-c", script, *args], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("user", ["CONTOSO\\svc", "svc@contoso.example"])
def test_requests_ntlm_http(server, legacy_openssl_conf, user, no_secrets_logged):
    out = run_client(REQUESTS_NTLM_CLIENT, [server.url, user, "Passw0rd!", "-"],
                     legacy_openssl_conf)
    assert [o["status"] for o in out] == [200, 200, 200]
    assert all(o["text"] == "ok svc@contoso.example" for o in out)
    # first request: 401 (anonymous) + 401 (challenge) then 200; afterwards
    # the kept-alive connection is already authenticated
    assert out[0]["history"] == [401, 401]
    assert out[0]["challenge"][1].startswith("NTLM ")
    assert out[1]["history"] == [] and out[2]["history"] == []


def test_requests_ntlm_https_with_cbt(tls_server, certs, legacy_openssl_conf):
    # requests_ntlm sends a channel-binding hash over TLS; IIS without
    # Extended Protection ignores it, and so do we.
    out = run_client(REQUESTS_NTLM_CLIENT, [tls_server.url, "CONTOSO\\svc", "Passw0rd!",
                                            certs["ca"]], legacy_openssl_conf)
    assert [o["status"] for o in out] == [200, 200, 200]
    assert out[0]["history"] == [401, 401]


def test_requests_ntlm_wrong_password(server, legacy_openssl_conf):
    out = run_client(REQUESTS_NTLM_CLIENT, [server.url, "CONTOSO\\svc", "bad", "-"],
                     legacy_openssl_conf)
    assert [o["status"] for o in out] == [401, 401, 401]
    # the final 401 carries fresh challenges
    assert all(o["history"] == [401, 401] for o in out)


def test_requests_ntlm_over_negotiate(negotiate_only_server, legacy_openssl_conf):
    # only "Negotiate" offered -> requests_ntlm sends raw NTLMSSP under Negotiate
    out = run_client(REQUESTS_NTLM_CLIENT, [negotiate_only_server.url, "CONTOSO\\svc",
                                            "Passw0rd!", "-"], legacy_openssl_conf)
    assert [o["status"] for o in out] == [200, 200, 200]
    assert out[0]["challenge"][1].startswith("Negotiate TlRMTVNTUAAC")


EXCHANGELIB_CLIENT = r"""
import json, sys
from exchangelib import Configuration, Credentials, Build, Version
from exchangelib.transport import NTLM, get_service_authtype
from exchangelib.protocol import Protocol, FailFast
from exchangelib.util import post_ratelimited
from exchangelib.errors import UnauthorizedError
url, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = Configuration(service_endpoint=url, credentials=Credentials(user, password), auth_type=NTLM,
                    version=Version(build=Build(15, 2, 1118, 7)), retry_policy=FailFast())
proto = Protocol(config=cfg)
out = {"authtype": get_service_authtype(proto)}
session = proto.get_session()
results = []
try:
    for i in range(2):
        r, session = post_ratelimited(protocol=proto, session=session, url=url,
                                      headers={"Content-Type": "text/xml; charset=utf-8"},
                                      data=b"<soap>%d</soap>" % i)
        results.append([r.status_code, r.text, [h.status_code for h in r.history]])
except UnauthorizedError as e:
    results.append(["UnauthorizedError"])
finally:
    proto.release_session(session)
    proto.close()
out["results"] = results
print(json.dumps(out))
"""


def test_exchangelib_ntlm_session(server, legacy_openssl_conf, no_secrets_logged):
    out = run_client(EXCHANGELIB_CLIENT, [server.url, "CONTOSO\\svc", "Passw0rd!"],
                     legacy_openssl_conf)
    assert out["authtype"] == "NTLM"
    assert out["results"][0] == [200, "ok svc@contoso.example", [401, 401]]
    assert out["results"][1] == [200, "ok svc@contoso.example", []]


def test_exchangelib_ntlm_https(tls_server, certs, legacy_openssl_conf):
    out = run_client(EXCHANGELIB_CLIENT, [tls_server.url, "svc@contoso.example", "Passw0rd!"],
                     legacy_openssl_conf, {"REQUESTS_CA_BUNDLE": certs["ca"]})
    assert out["results"][0][:2] == [200, "ok svc@contoso.example"]


def test_exchangelib_wrong_password(server, legacy_openssl_conf):
    out = run_client(EXCHANGELIB_CLIENT, [server.url, "CONTOSO\\svc", "nope"],
                     legacy_openssl_conf)
    assert out["results"] == [["UnauthorizedError"]]


# --------------------------------------------------------------------------
# per-connection NTLM semantics (raw http.client)
# --------------------------------------------------------------------------
def test_type3_on_other_connection_is_rejected(server, ntlm_client):
    ctx = ntlm_client()
    a, b = Conn(server), Conn(server)
    r, _ = a.post("NTLM " + b64(ctx.step()))
    assert r.status == 401
    type2 = base64.b64decode(www_authenticate(r)[0].split(" ", 1)[1])
    type3 = ctx.step(type2)
    r, _ = b.post("NTLM " + b64(type3))
    assert r.status == 401
    assert www_authenticate(r) == ALL_CHALLENGES
    # B stays unauthenticated
    r, _ = b.post()
    assert r.status == 401
    # the very same type 3 is still good on A, where the challenge was issued
    r, body = a.post("NTLM " + b64(type3))
    assert (r.status, body) == (200, b"ok svc@contoso.example")
    a.close()
    b.close()


def test_authenticated_connection_needs_no_header(server, ntlm_client):
    a = Conn(server)
    r, body, _ = handshake(a, ntlm_client())
    assert (r.status, body) == (200, b"ok svc@contoso.example")
    for _ in range(3):
        r, body = a.post()
        assert (r.status, body) == (200, b"ok svc@contoso.example")
    # a fresh connection without a header is anonymous
    c = Conn(server)
    r, _ = c.post()
    assert r.status == 401 and www_authenticate(r) == ALL_CHALLENGES
    a.close()
    c.close()


def test_new_header_restarts_auth(server, ntlm_client):
    a = Conn(server)
    r, body, _ = handshake(a, ntlm_client())
    assert r.status == 200
    # Basic for another user on the same connection: per request only
    r, body = a.post("Basic " + b64("alice:Wonder land:1".encode()))
    assert (r.status, body) == (200, b"ok alice@contoso.example")
    # ...and it replaced the NTLM identity of the connection
    r, _ = a.post()
    assert r.status == 401
    # re-authenticate with NTLM as alice on the same connection
    r, body, _ = handshake(a, ntlm_client("alice", "Wonder land:1", "CONTOSO"))
    assert (r.status, body) == (200, b"ok alice@contoso.example")
    r, body = a.post()
    assert body == b"ok alice@contoso.example"
    # non-ASCII password (UTF-16LE in NTOWFv2)
    r, body, _ = handshake(a, ntlm_client("bob", "pässwörd", "CONTOSO"))
    assert (r.status, body) == (200, b"ok bob@contoso.example")
    # a bad Authorization header wipes the authenticated state
    r, _ = a.post("Basic " + b64(b"svc:wrong"))
    assert r.status == 401
    r, _ = a.post()
    assert r.status == 401
    a.close()


def test_bad_ntlm_credentials_clear_state(server, ntlm_client):
    a = Conn(server)
    r, _, type3 = handshake(a, ntlm_client(password="wrong"))
    assert r.status == 401
    assert www_authenticate(r) == ALL_CHALLENGES
    r, _ = a.post()
    assert r.status == 401
    # no challenge pending any more: replaying a type 3 fails
    r, _ = a.post("NTLM " + b64(type3))
    assert r.status == 401
    a.close()


def test_type3_replay_against_new_challenge(server, ntlm_client):
    a = Conn(server)
    r, _, type3 = handshake(a, ntlm_client())
    assert r.status == 200
    b = Conn(server)
    r, _ = b.post("NTLM " + b64(ntlm_client().step()))
    assert r.status == 401
    r, _ = b.post("NTLM " + b64(type3))  # answer to another challenge
    assert r.status == 401
    a.close()
    b.close()


def test_ntlmv1_rejected(server, ntlm_client):
    a = Conn(server)
    # ntlm_compatibility 1/2: NTLMv1 (24-byte NT response)
    for compat in (1, 2):
        r, _, type3 = handshake(a, ntlm_client(compat=compat))
        nt_len = struct.unpack_from("<H", type3, 20)[0]
        assert nt_len == 24
        assert r.status == 401
    a.close()


def test_tampered_mic_rejected(server, ntlm_client):
    a = Conn(server)
    ctx = ntlm_client()
    r, _ = a.post("NTLM " + b64(ctx.step()))
    type2 = base64.b64decode(www_authenticate(r)[0].split(" ", 1)[1])
    type3 = bytearray(ctx.step(type2))
    type3[72] ^= 1  # MIC lives at 72..88
    r, _ = a.post("NTLM " + b64(bytes(type3)))
    assert r.status == 401
    a.close()


def test_negotiate_with_raw_ntlm(server, ntlm_client):
    a = Conn(server)
    r, body, _ = handshake(a, ntlm_client(), scheme="Negotiate")
    assert (r.status, body) == (200, b"ok svc@contoso.example")
    r, body = a.post()
    assert body == b"ok svc@contoso.example"
    a.close()


def test_negotiate_kerberos_token_gets_401(server):
    a = Conn(server)
    # an SPNEGO NegTokenInit (ASN.1 application 0) - not supported, like a
    # server without a usable SPN
    r, _ = a.post("Negotiate " + b64(b"\x60\x28\x06\x06\x2b\x06\x01\x05\x05\x02" + b"\x00" * 32))
    assert r.status == 401 and www_authenticate(r) == ALL_CHALLENGES
    a.close()


def test_type1_with_body_keeps_connection_usable(server, ntlm_client):
    # requests_ntlm re-sends the whole body with every leg; the 401 answers
    # must leave the connection reusable (body drained, no Connection: close)
    a = Conn(server)
    ctx = ntlm_client()
    body = b"<soap>" + b"y" * 300_000 + b"</soap>"
    r, _ = a.post("NTLM " + b64(ctx.step()), body=body)
    assert r.status == 401
    assert (r.getheader("Connection") or "").lower() != "close"
    type2 = base64.b64decode(www_authenticate(r)[0].split(" ", 1)[1])
    r, data = a.post("NTLM " + b64(ctx.step(type2)), body=body)
    assert (r.status, data) == (200, b"ok svc@contoso.example")
    assert server.bodies[-1] == body
    a.close()


def test_garbage_headers_get_401(server):
    a = Conn(server)
    for value in ["NTLM", "NTLM !!!notbase64", "NTLM " + b64(b"NTLMSSP\x00"),
                  "NTLM " + b64(b"NTLMSSP\x00\x02\x00\x00\x00" + b"\x00" * 40),
                  "NTLM " + b64(b"NTLMSSP\x00\x03\x00\x00\x00" + b"\xff" * 80),
                  "Negotiate " + b64(os.urandom(64)), "Basic", "Basic ???", "Basic " + b64(b"nocolon"),
                  "Digest username=x", "Bearer", "x" * 4000]:
        r, _ = a.post(value)
        assert r.status == 401, value
    a.close()


def test_closed_connections_are_forgotten(server, ntlm_client):
    import gc
    conns = []
    for _ in range(5):
        c = Conn(server)
        r, _, _ = handshake(c, ntlm_client())
        assert r.status == 200
        conns.append(c)
    pending = Conn(server)
    r, _ = pending.post("NTLM " + b64(ntlm_client().step()))
    authed, waiting = server.connection_count()
    assert authed >= 5 and waiting >= 1
    for c in conns:
        c.close()
    pending.close()
    # give the server loop a moment to see the FINs and drop the transports
    import time
    deadline = time.time() + 5
    while time.time() < deadline:
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), server.loop).result(5)
        server.loop.call_soon_threadsafe(gc.collect)
        if server.connection_count() == (0, 0):
            break
        time.sleep(0.05)
    assert server.connection_count() == (0, 0)
