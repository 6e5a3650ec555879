"""Helpers shared by the Graph simulator's modules: Graph's instant formats, ids, GUIDs,
request ids and the JSON error bodies of Microsoft Graph and of Entra ID (AADSTS).

A leaf: it imports nothing of ews-sim, so that every graph_* module can use it.
"""

import base64
import hashlib
import json
import urllib.parse
import uuid
from datetime import timezone

from aiohttp import web

from . import calendar

UTC = timezone.utc

# Graph's application id (the resource "00000003-0000-0000-c000-000000000000") and the
# scopes a client-credentials request may name for it.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"
JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


# -- instants --------------------------------------------------------------------------------


def graph_datetime(dt):
    """A dateTimeTimeZone.dateTime: wall-clock time with 7 fractional digits and no offset,
    as Graph writes it ("2026-12-07T09:00:00.0000000")."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%06d0" % dt.microsecond


def graph_instant(dt):
    """An Edm.DateTimeOffset as Graph writes it for Outlook items: UTC, 7 fractional digits, Z."""
    return graph_datetime(dt.astimezone(UTC)) + "Z"


def http_date(dt):
    """innerError.date: UTC to the second, no offset ("2026-12-07T09:00:00")."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_instant(text):
    """An ISO 8601 instant from a query or a body; no offset means UTC, as Graph reads
    startDateTime. Up to 7 fractional digits. Raises ValueError. The xs:dateTime reading of
    the calendar model, which has the same rules."""
    return calendar.parse_dt(text)


# -- ids ------------------------------------------------------------------------------------------


def rest_id(ews_id):
    """The REST (Graph) form of an EWS id: the URL-safe base64 alphabet, as Exchange Online's
    REST APIs write item ids ("AAMkAD..." with '-' and '_' for '/' and '+')."""
    return ews_id.replace("/", "-").replace("+", "_")


def ews_id(rest):
    return rest.replace("-", "/").replace("_", "+")


def guid_for(*parts):
    """A stable GUID (Entra object ids, subscription ids are GUIDs in Graph) from parts."""
    h = hashlib.sha256("\0".join(str(p) for p in parts).encode()).digest()[:16]
    return str(uuid.UUID(bytes=h, version=4))


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text):
    """Decode base64url with or without padding; raises ValueError."""
    if not isinstance(text, str) or not text or any(c not in _B64URL for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# -- request context and Graph's error bodies --------------------------------------------------


class RequestIds:
    """request-id and client-request-id of one Graph request: Graph echoes the client's
    client-request-id (or uses the request-id when none is sent)."""

    __slots__ = ("request_id", "client_request_id", "date")

    def __init__(self, headers, now):
        self.request_id = str(uuid.uuid4())
        crid = headers.get("client-request-id") if headers is not None else None
        self.client_request_id = crid if crid else self.request_id
        self.date = now

    def headers(self):
        return {"request-id": self.request_id, "client-request-id": self.client_request_id}

    def inner(self):
        return {"date": http_date(self.date), "request-id": self.request_id,
                "client-request-id": self.client_request_id}


class GraphError(Exception):
    """A Graph error answer: HTTP status, error.code, error.message (and extra headers)."""

    def __init__(self, status, code, message, headers=None):
        super().__init__("%d %s: %s" % (status, code, message))
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(code, message, ids):
    """{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}"""
    return {"error": {"code": code, "message": message, "innerError": ids.inner()}}


def json_response(status, doc, ids=None, headers=None):
    """An aiohttp response with a Graph JSON body (None: no body, e.g. 204)."""
    h = {}
    if ids is not None:
        h.update(ids.headers())
    h.update(headers or {})
    if doc is None:
        return web.Response(status=status, headers=h)
    h["Content-Type"] = JSON_TYPE
    return web.Response(status=status, body=json.dumps(doc, ensure_ascii=False).encode(), headers=h)


# -- Entra ID (AADSTS) error bodies -------------------------------------------------------------


class AadError(Exception):
    """A token endpoint error: HTTP status, OAuth error, AADSTS number and description."""

    def __init__(self, status, error, code, description):
        super().__init__("AADSTS%d: %s" % (code, description))
        self.status = status
        self.error = error
        self.code = code
        self.description = description


def aad_body(exc, now):
    """The error body Entra ID's v2.0 token endpoint sends: error, error_description (with
    the trace and correlation ids and the timestamp on their own lines), error_codes,
    timestamp, trace_id, correlation_id, error_uri."""
    trace = str(uuid.uuid4())
    corr = str(uuid.uuid4())
    ts = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    desc = "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
        exc.code, exc.description, trace, corr, ts)
    return {"error": exc.error, "error_description": desc, "error_codes": [exc.code], "timestamp": ts,
            "trace_id": trace, "correlation_id": corr,
            "error_uri": "https://login.microsoftonline.com/error?code=%d" % exc.code}


class Call:
    """One Graph request as the handlers see it, whether it came over HTTP or inside a
    $batch: method, path below /v1.0 (segments), query (name -> value; Graph's $-names are
    case-insensitive, so they are kept lower-case), headers (lower-case names), the body's
    JSON, the base URL links are made from, the request ids, the access token, and the
    mailbox a mailbox resource acts on (set by the dispatcher)."""

    __slots__ = ("sim", "method", "path", "segments", "query", "headers", "body", "base", "ids", "token",
                 "mailbox", "op", "batch")

    def __init__(self, sim, method, path, query, headers, body, base, ids, token=None, batch=False):
        self.sim = sim
        self.method = method.upper()
        self.path = path
        self.segments = [s for s in path.split("/") if s]
        self.query = {}
        for k, v in query.items():
            self.query[k.lower() if k.startswith("$") else k] = v
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        self.base = base
        self.ids = ids
        self.token = token
        self.mailbox = None
        self.op = "?"
        self.batch = batch

    def param(self, name):
        """A query parameter; startDateTime and the like are case-insensitive too."""
        if name in self.query:
            return self.query[name]
        low = name.lower()
        for k, v in self.query.items():
            if k.lower() == low:
                return v
        return None

    def link(self, path, query):
        """An absolute Graph URL (nextLink, deltaLink, @odata.context) for path and query."""
        from_q = "&".join("%s=%s" % (k, quote_param(v)) for k, v in query)
        return "%s/v1.0/%s%s" % (self.base, path, ("?" + from_q) if from_q else "")


def quote_param(v):
    return urllib.parse.quote(str(v), safe=":,$/'()*-._~")


def prefer(headers):
    """The Prefer header's preferences: {name: value} (value '' when none), names lower-case."""
    out = {}
    raw = headers.get("prefer") if headers else None
    if not raw:
        return out
    for part in raw.split(","):
        name, _, value = part.strip().partition("=")
        if not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out[name.strip().lower()] = value
    return out
