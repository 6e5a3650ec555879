"""The GetStreamingEvents wire: the envelopes of a streaming body (status, per-subscription
errors, notifications) in Exchange 2013+'s on-wire form, the event elements GetEvents
shares, the chunked HTTP response, and the writer that applies the write-mode faults
(batching, splitting, half-open) to a connection's bytes.

A leaf: it imports only soap from ews-sim. What a connection is (notify.StreamConn) and
which write mode applies (faults.Faults.stream_mode) are handed in by the caller.
"""

import asyncio
import datetime
import random

from aiohttp import web
from lxml import etree

from . import soap
from .soap import M, T, el

STREAM_MSG = "GetStreamingEventsResponseMessage"
MOVE_TYPES = ("MovedEvent", "CopiedEvent")

# -- envelopes ----------------------------------------------------------------------------


def envelope(body_child):
    """One envelope of a GetStreamingEvents body, in the on-wire form of Exchange 2013+:
    an unprefixed <Envelope> root with soap11:-prefixed Header and Body, no XML declaration.
    (See tests/fixtures/wire/getstreamingevents-stream.xmls.)"""
    env = etree.Element("{%s}Envelope" % soap.NS_S, nsmap={None: soap.NS_S})
    header = etree.SubElement(env, "{%s}Header" % soap.NS_S, nsmap={"soap11": soap.NS_S})
    # Here ServerVersionInfo is unprefixed, in a default types namespace (no h: prefix).
    etree.SubElement(header, "{%s}ServerVersionInfo" % soap.NS_T, attrib=soap.SERVER_VERSION,
                     nsmap={None: soap.NS_T, "xsd": soap.NS_XSD, "xsi": soap.NS_XSI})
    body = etree.SubElement(env, "{%s}Body" % soap.NS_S, nsmap={"soap11": soap.NS_S})
    body.append(body_child)
    return etree.tostring(env, encoding="utf-8")


def event_el(parent, ev, when, watermark=None):
    """Append the t:<Type>Event element of event dict ev (emitted at sim time `when`) to
    parent; GetEvents gives each event its watermark, streaming gives none."""
    e = el(parent, T(ev["type"]))
    if watermark is not None:
        el(e, T("Watermark"), watermark)
    el(e, T("TimeStamp"), epoch_iso(when))
    idtag = "FolderId" if ev.get("folder_event") else "ItemId"
    el(e, T(idtag), Id=ev["item_id"], ChangeKey=ev.get("change_key"))
    el(e, T("ParentFolderId"), Id=ev["parent_folder_id"], ChangeKey=ev.get("parent_change_key"))
    if ev["type"] in MOVE_TYPES:
        el(e, T("Old" + idtag), Id=ev["old_item_id"], ChangeKey=ev.get("old_change_key"))
        el(e, T("OldParentFolderId"), Id=ev["old_parent_folder_id"], ChangeKey=ev.get("old_parent_change_key"))
    elif ev["type"] == "ModifiedEvent" and ev.get("unread_count") is not None:
        el(e, T("UnreadCount"), int(ev["unread_count"]))
    return e


def epoch_iso(epoch):
    """A sim time (epoch seconds) as Exchange writes an instant."""
    return soap.iso(datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc))


# Exchange writes xsd/xsi declarations on the streaming response element (see the fixture).
_STREAM_NSMAP = {"xsd": soap.NS_XSD, "xsi": soap.NS_XSI, "t": soap.NS_T, "m": soap.NS_M}


def _stream_root():
    root = etree.Element(M("GetStreamingEventsResponse"), nsmap=_STREAM_NSMAP)
    msgs = etree.SubElement(root, M("ResponseMessages"))
    return root, msgs


def stream_status(status):
    """A status envelope: ConnectionStatus status ("OK" or "Closed")."""
    root, msgs = _stream_root()
    m = soap.success_message(msgs, STREAM_MSG)
    el(m, M("ConnectionStatus"), status)
    return envelope(root)


def stream_error(code, text, ids, status="OK", message_xml=None):
    """An error envelope for subscription ids (ErrorSubscriptionIds when ids)."""
    root, msgs = _stream_root()
    m = soap.error_message(msgs, STREAM_MSG, code, text, message_xml)
    if ids:
        ei = el(m, M("ErrorSubscriptionIds"))
        for i in ids:
            el(ei, M("SubscriptionId"), i)
    el(m, M("ConnectionStatus"), status)
    return envelope(root)


def stream_notifications(batches):
    """batches: [(sub id, [(seq, time, ev), ...]), ...] -> one envelope."""
    root, msgs = _stream_root()
    m = soap.success_message(msgs, STREAM_MSG)
    ns = el(m, M("Notifications"))
    for sid, recs in batches:
        nt = el(ns, M("Notification"))
        el(nt, T("SubscriptionId"), sid)
        for _seq, when, ev in recs:
            event_el(nt, ev, when)
    return envelope(root)


# -- the HTTP response --------------------------------------------------------------------


async def prepare(ctx):
    """Send the head of a streaming answer (HTTP 200, chunked) for request context ctx."""
    resp = web.StreamResponse(status=200, headers=ctx.response_headers())
    resp.content_type = "text/xml"
    resp.charset = "utf-8"
    resp.enable_chunked_encoding()
    ctx.apply_cookies(resp)
    await resp.prepare(ctx.request)
    return resp


async def error_stream(ctx, errors):
    """A whole GetStreamingEvents answer made of error messages, the last one Closed.
    errors: [(code, text, ids, message_xml), ...]."""
    resp = await prepare(ctx)
    try:
        for i, (code, text, ids, mx) in enumerate(errors):
            last = i == len(errors) - 1
            await resp.write(stream_error(code, text, ids, "Closed" if last else "OK", mx))
        await resp.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass
    return resp


class Writer:
    """Writes envelopes to a stream, applying the write-mode faults (batching, splits,
    half-open) that hold for the connection.

    conn carries the per-connection write state (halfopen, held, rng, offset: see
    notify.StreamConn); mode(conn) is the fault's write mode (a dict with batch,
    split_every, split_seed, split_max, pause_ms) or None."""

    def __init__(self, conn, resp, mode):
        self.conn = conn
        self.resp = resp
        self.mode = mode

    def _mode(self):
        return self.mode(self.conn)

    async def send(self, env, final=False):
        conn = self.conn
        if conn.halfopen:
            return
        mode = self._mode() or {}
        batch = int(mode.get("batch") or 1)
        conn.held.append(env)
        if len(conn.held) < batch and not final:
            return
        data = b"".join(conn.held)
        conn.held = []
        await self._write(data, mode)

    async def flush(self):
        if self.conn.held and not self.conn.halfopen:
            data = b"".join(self.conn.held)
            self.conn.held = []
            await self._write(data, self._mode() or {})

    async def _write(self, data, mode):
        conn = self.conn
        every = mode.get("split_every")
        seed = mode.get("split_seed")
        if not every and seed is None:
            conn.offset += len(data)
            await self.resp.write(data)
            return
        pause = float(mode.get("pause_ms") or 0) / 1000.0
        pos = 0
        while pos < len(data):
            if every:
                step = every
            else:
                if conn.rng is None:
                    conn.rng = random.Random(seed)
                step = conn.rng.randint(1, int(mode.get("split_max") or 64))
            piece = data[pos:pos + step]
            pos += len(piece)
            conn.offset += len(piece)
            await self.resp.write(piece)
            if pause and pos < len(data):
                await asyncio.sleep(pause)
