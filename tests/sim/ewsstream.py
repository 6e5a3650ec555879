"""Test helpers for notifications: Subscribe/GetEvents/Unsubscribe bodies, and a raw
GetStreamingEvents reader over a plain socket that keeps the HTTP chunk boundaries and
cuts the body into envelopes at each `</Envelope>` (the unprefixed on-wire form of
Exchange 2013+). Independent of ews-sim's code."""

import base64
import re
import socket
import time
import urllib.parse

from lxml import etree

import ews
from simharness import NS, PASSWORD, SVC

ALL_TYPES = ("CreatedEvent", "DeletedEvent", "ModifiedEvent", "MovedEvent", "CopiedEvent", "FreeBusyChangedEvent")
ENV_END = b"</Envelope>"


def event_types(types=ALL_TYPES):
    return "<t:EventTypes>%s</t:EventTypes>" % "".join("<t:EventType>%s</t:EventType>" % t for t in types)


def folders(*specs):
    """specs: 'calendar' or ('calendar', 'someone@x') for a t:Mailbox."""
    out = []
    for s in specs:
        if isinstance(s, tuple):
            out.append('<t:DistinguishedFolderId Id="%s"><t:Mailbox><t:EmailAddress>%s</t:EmailAddress>'
                       "</t:Mailbox></t:DistinguishedFolderId>" % s)
        else:
            out.append('<t:DistinguishedFolderId Id="%s"/>' % s)
    return "<t:FolderIds>%s</t:FolderIds>" % "".join(out)


def pull_body(timeout=10, watermark=None, fold=("calendar",), types=ALL_TYPES, all_folders=False):
    attr = ' SubscribeToAllFolders="true"' if all_folders else ""
    f = "" if all_folders else folders(*fold)
    wm = "<t:Watermark>%s</t:Watermark>" % watermark if watermark else ""
    return ("<m:Subscribe><m:PullSubscriptionRequest%s>%s%s%s<t:Timeout>%d</t:Timeout>"
            "</m:PullSubscriptionRequest></m:Subscribe>" % (attr, f, event_types(types), wm, timeout))


def streaming_body(fold=("calendar",), types=ALL_TYPES, all_folders=False):
    attr = ' SubscribeToAllFolders="true"' if all_folders else ""
    f = "" if all_folders else folders(*fold)
    return ("<m:Subscribe><m:StreamingSubscriptionRequest%s>%s%s</m:StreamingSubscriptionRequest>"
            "</m:Subscribe>" % (attr, f, event_types(types)))


def getevents_body(sid, wm):
    return "<m:GetEvents><m:SubscriptionId>%s</m:SubscriptionId><m:Watermark>%s</m:Watermark></m:GetEvents>" % (
        sid, wm)


def unsubscribe_body(sid):
    return "<m:Unsubscribe><m:SubscriptionId>%s</m:SubscriptionId></m:Unsubscribe>" % sid


def gse_body(ids, timeout=30):
    return ("<m:GetStreamingEvents><m:SubscriptionIds>%s</m:SubscriptionIds>"
            "<m:ConnectionTimeout>%d</m:ConnectionTimeout></m:GetStreamingEvents>"
            % ("".join("<t:SubscriptionId>%s</t:SubscriptionId>" % i for i in ids), timeout))


def subscribe(sim, mailbox, kind="streaming", headers=None, impersonate=True, **kw):
    """Subscribe impersonating mailbox; returns (Response, sub id or None, watermark or None)."""
    body = streaming_body(**kw) if kind == "streaming" else pull_body(**kw)
    r = ews.call(sim, body, impersonate=mailbox if impersonate else None, headers=headers)
    sid = r.xpath("//m:SubscriptionId")
    wm = r.xpath("//m:Watermark")
    return r, (sid[0].text if sid else None), (wm[0].text if wm else None)


def emit(sim, mailbox, *types, **kw):
    evs = []
    for t in types:
        ev = {"type": t}
        ev.update(kw)
        evs.append(ev)
    return sim.control("POST", "/notify/emit", {"mailbox": mailbox, "events": evs}, expect=200)[1]


class Message:
    """One GetStreamingEventsResponseMessage cut from the stream."""

    def __init__(self, raw):
        self.raw = raw
        self.doc = etree.fromstring(raw)
        self.msg = self.doc.xpath("//m:GetStreamingEventsResponseMessage", namespaces=NS)[0]

    def x(self, path):
        return self.msg.xpath(path, namespaces=NS)

    @property
    def response_class(self):
        return self.msg.get("ResponseClass")

    @property
    def code(self):
        return self.x("m:ResponseCode")[0].text

    @property
    def status(self):
        s = self.x("m:ConnectionStatus")
        return s[0].text if s else None

    @property
    def error_ids(self):
        return [e.text for e in self.x("m:ErrorSubscriptionIds/m:SubscriptionId")]

    def notifications(self):
        """{sub id: [event element, ...]}"""
        out = {}
        for n in self.x("m:Notifications/m:Notification"):
            sid = n.xpath("t:SubscriptionId", namespaces=NS)[0].text
            out.setdefault(sid, []).extend(e for e in n if etree.QName(e).localname != "SubscriptionId")
        return out

    @property
    def is_heartbeat(self):
        return self.response_class == "Success" and self.status == "OK" and not self.x("m:Notifications")

    def __repr__(self):
        return "<Message %s %s %s ids=%s notif=%s>" % (
            self.response_class, self.code, self.status, self.error_ids,
            {k: len(v) for k, v in self.notifications().items()})


class Stream:
    """A GetStreamingEvents request read over a raw socket."""

    def __init__(self, sim, ids, timeout=30, impersonate=None, headers=None, user=SVC, password=PASSWORD,
                 version="Exchange2013_SP1", body=None, sock_timeout=30.0):
        u = urllib.parse.urlsplit(sim.ews)
        payload = body if body is not None else ews.envelope(gse_body(ids, timeout), impersonate=impersonate,
                                                             version=version)
        h = {
            "Host": "%s:%d" % (u.hostname, u.port),
            "Content-Type": "text/xml; charset=utf-8",
            "Content-Length": str(len(payload)),
            "Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode(),
        }
        h.update(headers or {})
        self.sock = socket.create_connection((u.hostname, u.port), timeout=sock_timeout)
        req = "POST %s HTTP/1.1\r\n%s\r\n" % (u.path, "".join("%s: %s\r\n" % kv for kv in h.items()))
        self.sock.sendall(req.encode() + payload)
        self.buf = b""
        self.body = b""  # decoded body bytes so far
        self.chunks = []  # sizes of the HTTP chunks received
        self.eof = False  # the terminating 0-chunk arrived
        self.reset = False  # the connection ended without the terminating chunk
        self._pos = 0  # start of the next envelope in self.body
        self._read_head()

    def _recv(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return None
        except (ConnectionResetError, BrokenPipeError):
            d = b""
        if not d:
            self.reset = True
            return b""
        self.buf += d
        return d

    def _read_head(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            d = self._recv(deadline)
            if not d:
                raise AssertionError("no HTTP response head (got %r)" % self.buf[:200])
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        self.header_list = []
        for ln in lines[1:]:
            k, v = ln.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
            self.header_list.append((k.strip(), v.strip()))
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        if not self.chunked:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                if not self._recv(deadline):
                    break
            self.body = self.buf[:n]
            self.eof = True

    def _parse_chunks(self):
        while not self.eof:
            i = self.buf.find(b"\r\n")
            if i < 0:
                return
            size = int(self.buf[:i].split(b";")[0], 16)
            if len(self.buf) < i + 2 + size + 2:
                return
            data = self.buf[i + 2:i + 2 + size]
            assert self.buf[i + 2 + size:i + 4 + size] == b"\r\n", "bad chunk framing"
            self.buf = self.buf[i + 4 + size:]
            if size == 0:
                self.eof = True
                return
            self.chunks.append(size)
            self.body += data

    def _next_env(self):
        j = self.body.find(ENV_END, self._pos)
        if j < 0:
            return None
        raw = self.body[self._pos:j + len(ENV_END)]
        self._pos = j + len(ENV_END)
        return Message(raw)

    def next(self, timeout=10.0):
        """The next message, or None when the body ended (self.eof / self.reset say how)
        or nothing arrived within timeout (then self.eof and self.reset are both False)."""
        deadline = time.monotonic() + timeout
        while True:
            m = self._next_env()
            if m is not None:
                return m
            if self.eof or self.reset:
                return None
            self._parse_chunks()
            m = self._next_env()
            if m is not None:
                return m
            if self.eof:
                return None
            if time.monotonic() >= deadline:
                return None
            if self._recv(deadline) == b"":
                self._parse_chunks()
                return self._next_env()

    def until(self, pred, timeout=10.0, what="message"):
        """Skip messages until pred(msg); returns it (AssertionError on deadline/end)."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            m = self.next(max(0.01, deadline - time.monotonic()))
            if m is None:
                if self.eof or self.reset:
                    raise AssertionError("stream ended waiting for %s; saw %r" % (what, seen))
                continue
            if pred(m):
                return m
            seen.append(m)
        raise AssertionError("timed out waiting for %s; saw %r" % (what, seen))

    def rest(self, timeout=10.0):
        """All remaining messages until the body ends."""
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.next(max(0.01, deadline - time.monotonic()))
            if m is None:
                if self.eof or self.reset:
                    return out
                continue
            out.append(m)
        raise AssertionError("stream did not end within %.1fs; got %r" % (timeout, out))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def fault_code(self):
        m = re.search(rb"<e:ResponseCode[^>]*>([^<]+)<", self.body)
        return m.group(1).decode() if m else None


def event_kinds(elems):
    return [etree.QName(e).localname for e in elems]
