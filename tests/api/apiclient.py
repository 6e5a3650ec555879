"""The HTTP API test harness: start `calsync run` (tests/sync/calsyncproc.py's Calsync) with an
<api> on a port chosen at run time, find that port in its log, and talk HTTP, Server-Sent
Events and Prometheus text to it. Plain module; the fixtures are in tests/api/conftest.py."""

import http.client
import json
import os
import re
import socket
import ssl
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sync"))

from calsyncproc import Calsync  # noqa: E402,F401 (the fixtures import it from here)
from simharness import wait_for  # noqa: E402

TOKEN_ENV = "CALSYNC_TEST_API_TOKEN"
TOKEN = "s3cret-t0ken-for-tests"
LISTEN_RE = re.compile(r"api: listening on (https?)://(\[[^\]]+\]|[^:/ ]+):(\d+)")


def api_element(token=True, extra_attrs=""):
    return '<api listen="127.0.0.1:0"%s%s/>' % (' token_env="%s"' % TOKEN_ENV if token else "",
                                                 " " + extra_attrs if extra_attrs else "")


def start_calsync(factory, sim, mailboxes, *, token=True, env=None, api_attrs="", **config):
    """A started Calsync with the API on a free port; returns (cs, Api)."""
    env = dict(env or {})
    env[TOKEN_ENV] = TOKEN
    cs = factory(sim, mailboxes, env=env, api=api_element(token, api_attrs), **config)
    cs.start()
    return cs, wait_api(cs, TOKEN if token else None)


def wait_api(cs, token, cafile=None):
    """The Api of the running cs, once it logged where it listens (this run's log only)."""
    def found():
        cs.assert_running()
        return LISTEN_RE.search(cs.stderr_text())
    m = wait_for(found, timeout=20, interval=0.02, what="calsync to log 'api: listening on'")
    return Api(m.group(1), m.group(2).strip("[]"), int(m.group(3)), token, cafile)


def q(smtp):
    """An address as a path segment."""
    return urllib.parse.quote(smtp, safe="")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


class Api:
    def __init__(self, scheme, host, port, token=None, cafile=None):
        self.scheme, self.host, self.port, self.token, self.cafile = scheme, host, port, token, cafile

    @property
    def base(self):
        return "%s://%s:%d" % (self.scheme, self.host, self.port)

    def connection(self, timeout=30):
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.cafile)
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def auth_headers(self, token="default"):
        token = self.token if token == "default" else token
        return {"Authorization": "Bearer " + token} if token else {}

    def request(self, method, path, body=None, *, token="default", headers=None, raw=None):
        """One request on a new connection; body is JSON-encoded unless raw (bytes) is given."""
        h = self.auth_headers(token)
        if body is not None:
            raw = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        c = self.connection()
        try:
            c.request(method, path, body=raw, headers=h)
            r = c.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data.decode())
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def ok(self, method, path, status=200, **kw):
        r = self.request(method, path, **kw)
        assert r.status == status, (method, path, r)
        return r.json if r.body else None

    def events(self, after=None, last_event_id=None, token="default", timeout=15):
        h = self.auth_headers(token)
        if last_event_id is not None:
            h["Last-Event-ID"] = str(last_event_id)
        path = "/v1/events" + ("" if after is None else "?after=%s" % after)
        return EventStream(self.connection(timeout), path, h)

    def metrics(self):
        r = self.get("/metrics")
        assert r.status == 200, r
        assert r.header("Content-Type").startswith("text/plain; version=0.0.4"), r.headers
        return parse_prometheus(r.body)


class EventStream:
    """A Server-Sent Events client: next() returns the next event or comment as a dict
    ({"comment": text} or {"id", "event", "data"})."""

    def __init__(self, conn, path, headers):
        self.conn = conn
        conn.request("GET", path, headers=headers)
        self.resp = conn.getresponse()
        self.status = self.resp.status

    def next(self):
        ev = {}
        while True:
            line = self.resp.readline()
            if not line:
                raise EOFError("event stream ended")
            line = line.decode().rstrip("\r\n")
            if line == "":
                if ev:
                    if "data" in ev:
                        ev["json"] = json.loads(ev["data"])
                    return ev
                continue
            if line.startswith(":"):
                ev.setdefault("comment", line[1:].strip())
                continue
            field, _, value = line.partition(":")
            ev[field] = value[1:] if value.startswith(" ") else value

    def next_event(self, skip_comments=True):
        while True:
            ev = self.next()
            if "comment" in ev and skip_comments:
                continue
            return ev

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


# -- Prometheus text format (version 0.0.4) ---------------------------------------------------

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_prometheus(text):
    """{"types": {name: type}, "samples": {(name, frozenset(labels.items())): float}}; raises on
    any line that is not a comment, a TYPE/HELP line or a well-formed sample."""
    types, samples = {}, {}
    assert text.endswith("\n"), "the page must end with a newline"
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, "TYPE twice: %s" % line
            types[name] = typ
            continue
        if line.startswith("#") or not line.strip():
            continue
        m = SAMPLE_RE.match(line)
        assert m, "not a sample: %r" % line
        name, labels_s, value = m.group(1), m.group(3), m.group(4)
        labels = {}
        pos = 0
        while labels_s and pos < len(labels_s):
            lm = LABEL_RE.match(labels_s, pos)
            assert lm, "bad labels in %r" % line
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        key = (name, frozenset(labels.items()))
        assert key not in samples, "sample twice: %s" % line
        samples[key] = float(value)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or base in types, "sample without TYPE: %s" % line
    return {"types": types, "samples": samples}


def sample(m, name, **labels):
    return m["samples"][(name, frozenset(labels.items()))]
