"""Test helpers for the Graph simulator: start ews-sim with Graph on, get tokens, call Graph
and the control API, receive change notifications (an HTTP or HTTPS server in a thread),
and make throwaway certificates. Deliberately independent of the simulator's code."""

import base64
import datetime as dt
import hashlib
import http.server as httpserver
import json
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SECRET = "sim~GraphSecret.0123456789-abcdefghijkl"
SCOPE = "https://graph.microsoft.com/.default"
UTC = dt.timezone.utc
A = "user00001@contoso.example"
B = "user00002@contoso.example"
C = "user00003@contoso.example"
ONPREM = "user00009@contoso.example"
WINDOW = "startDateTime=2000-01-01T00:00:00Z&endDateTime=2100-01-01T00:00:00Z"


def graph_sim(factory, *args, tls=None):
    """An ews-sim with Graph on (mailboxes user00001..3 in the cloud unless args say otherwise)."""
    a = ["--graph-listen", "127.0.0.1:0"]
    if not any(str(x).startswith("--cloud-mailbox") for x in args):
        a += ["--cloud-mailboxes", "1-3"]
    if tls:
        a += ["--tls-cert", tls["cert"], "--tls-key", tls["key"]]
    return factory(*a, *args)


def ssl_ctx(sim, ca=None):
    if not sim.info["graph"].startswith("https"):
        return None
    return ssl.create_default_context(cafile=ca)


def http(method, url, body=None, headers=None, ctx=None, form=None, raw=False, timeout=30):
    """(status, headers dict with lower-case names, parsed JSON or bytes)."""
    data = None
    h = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        h.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif body is not None:
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            status, hdrs, payload = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, payload = e.code, e.headers, e.read()
    hd = {k.lower(): v for k, v in hdrs.items()}
    if raw or not payload:
        return status, hd, payload
    return status, hd, json.loads(payload)


def token_request(sim, form, ctx=None, tenant=None):
    url = sim.info["token_endpoint"]
    if tenant is not None:
        url = "%s/%s/oauth2/v2.0/token" % (sim.info["login"], tenant)
    return http("POST", url, form=form, ctx=ctx)


def token(sim, secret=SECRET, ctx=None):
    status, _, doc = token_request(sim, {"grant_type": "client_credentials", "client_id": sim.info["client_id"],
                                         "scope": SCOPE, "client_secret": secret}, ctx)
    assert status == 200, doc
    return doc["access_token"]


class Graph:
    """A tiny Graph client bound to one sim and one token."""

    def __init__(self, sim, tok=None, ctx=None):
        self.sim = sim
        self.ctx = ctx if ctx is not None else ssl_ctx(sim)
        self.tok = tok or token(sim, ctx=self.ctx)

    def call(self, method, path, body=None, headers=None, tok=None):
        url = path if path.startswith("http") else self.sim.info["graph"] + "/" + path.lstrip("/")
        h = {"Authorization": "Bearer " + (tok or self.tok)}
        h.update(headers or {})
        return http(method, url, body=body, headers=h, ctx=self.ctx)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def ok(self, path, **kw):
        status, _, doc = self.get(path, **kw)
        assert status == 200, (status, doc)
        return doc

    def all_pages(self, path, headers=None):
        """Follow @odata.nextLink; returns (items, last page)."""
        items = []
        doc = self.ok(path, headers=headers)
        items += doc["value"]
        while "@odata.nextLink" in doc:
            doc = self.ok(doc["@odata.nextLink"], headers=headers)
            items += doc["value"]
        return items, doc


def control(sim, method, path, body=None, expect=None):
    return sim.control(method, path, body, expect)


def create_item(sim, mailbox, **fields):
    body = {"subject": "Graph test", "start": "2030-01-07T09:00:00Z", "end": "2030-01-07T10:00:00Z"}
    body.update(fields)
    return sim.control("POST", "/mailboxes/%s/items" % mailbox, body, expect=201)[1]


def item_path(mailbox, item_id):
    return "/mailboxes/%s/items/%s" % (mailbox, urllib.parse.quote(item_id, safe=""))


def rest_id(ews_id):
    return ews_id.replace("/", "-").replace("+", "_")


# -- certificates -----------------------------------------------------------------------------------


def client_certificate(directory, name="calsync-app"):
    """A self-signed certificate and key for client assertions: (cert path, key PEM,
    private key, SHA-1 hex thumbprint, DER)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2)).sign(key, hashes.SHA256()))
    path = os.path.join(str(directory), name + ".pem")
    pem = cert.public_bytes(serialization.Encoding.PEM)
    with open(path, "wb") as f:
        f.write(pem)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    der = cert.public_bytes(serialization.Encoding.DER)
    return {"path": path, "pem": pem.decode(), "key_pem": key_pem.decode(), "key": key,
            "thumbprint": hashlib.sha1(der).hexdigest().upper(), "der": der}


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def assertion(cert, aud, client_id, alg="RS256", header=None, claims=None, drop=(), key=None):
    """A client assertion JWT signed with cert's key (alg RS256 or PS256)."""
    now = int(time.time())
    h = {"alg": alg, "typ": "JWT", "x5t#S256": b64url(hashlib.sha256(cert["der"]).digest())}
    h.update(header or {})
    c = {"aud": aud, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()), "nbf": now - 5,
         "exp": now + 600, "iat": now}
    c.update(claims or {})
    for k in drop:
        h.pop(k, None)
        c.pop(k, None)
    signing = b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(c).encode())
    k = key or cert["key"]
    if alg == "PS256":
        sig = k.sign(signing.encode(), padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                     hashes.SHA256())
    else:
        sig = k.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing + "." + b64url(sig)


# -- a notification endpoint ----------------------------------------------------------------------


class Receiver:
    """An HTTP(S) server in a thread standing in for calsync's webhook: answers validation
    requests (mode "ok", "wrong", "status", "slow", "plain-json"), records notifications, and
    can fail the next N notification POSTs."""

    def __init__(self, cert=None, key=None, mode="ok"):
        self.mode = mode
        self.fail_next = 0
        self.fail_status = 503
        self.slow_seconds = 2.0
        self.validations = []
        self.posts = []  # JSON bodies of notification POSTs (one list entry per POST)
        self.attempts = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(httpserver.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                q = urllib.parse.urlsplit(self.path).query
                params = urllib.parse.parse_qs(q)
                if "validationToken" in params:
                    outer._validate(self, params["validationToken"][0])
                    return
                with outer.lock:
                    outer.attempts += 1
                    fail = outer.fail_next > 0
                    if fail:
                        outer.fail_next -= 1
                    else:
                        outer.posts.append({"path": self.path, "body": json.loads(raw), "headers": dict(self.headers)})
                self.send_response(outer.fail_status if fail else 202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = httpserver.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/notify", host="127.0.0.1"):
        return "%s://%s:%d%s" % (self.scheme, host, self.port, path)

    def _validate(self, h, tok):
        with self.lock:
            self.validations.append({"path": h.path, "token": tok, "content_type": h.headers.get("Content-Type")})
        mode = self.mode
        if mode == "slow":
            time.sleep(self.slow_seconds)
        if mode == "status":
            h.send_response(500)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        body = (tok + "x" if mode == "wrong" else tok).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json" if mode == "plain-json" else "text/plain; charset=utf-8")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def notifications(self, path=None):
        with self.lock:
            return [n for p in self.posts if path is None or p["path"] == path for n in p["body"]["value"]]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def iso_in(seconds, now=None):
    base = now or dt.datetime.now(UTC)
    return (base + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sim_now(sim):
    return dt.datetime.fromtimestamp(sim.control("GET", "/clock", expect=200)[1]["epoch"], UTC)


def wait_for(cond, timeout=20.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def wait_for_in_flight(sim, n):
    wait_for(lambda: sim.counters().get("graph_requests_in_flight", {}).get("total") == n,
             what="%d Graph requests in flight" % n)
