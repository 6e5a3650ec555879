"""Faults on demand: failing or slow requests, misbehaving streams, backend restarts,
expired subscriptions, missed events and mailbox moves. Driven over the control API
(JSON); see docs/ews-sim-notifications.md.

Request faults (POST /faults) are checked by the dispatcher before the operation runs
(`before(ctx)`), after authentication, schema validation, impersonation and routing, in
the order they were added; each has an optional count ("the next N matching requests",
null = until cleared) and filters (operation, mailbox, budget, account, backend, and
max_entries_over: a FindItem whose view asks for more than N items, or names no limit).
Stream faults change how open or future GetStreamingEvents connections write.
"""

import itertools

from aiohttp import web

from . import soap, wire
from .webio import bad, fault_response, not_found, read_json, xml_response

# Keys POST /faults understands (anything else is refused, so that a typo is not ignored).
KEYS = {"kind", "count", "operation", "mailbox", "budget", "account", "backend", "subscription", "max_entries_over",
        "code", "message",
        "message_xml", "back_off_ms", "inner_code", "inner_message", "http_status", "seconds", "retry_after", "batch",
        "split_every", "split_seed", "split_max", "pause_ms"}

REQUEST_KINDS = ("http_503", "http_500", "ews_fault", "ews_error", "delay")
STREAM_KINDS = ("stream_write", "stream_half_open")
KINDS = REQUEST_KINDS + STREAM_KINDS

# Operations whose answer is not <Op>Response/ResponseMessages/<Op>ResponseMessage: an
# injected per-message error becomes a SOAP fault for them.
NOT_MESSAGE_SHAPED = {"GetUserAvailability", "GetUserOofSettings", "SetUserOofSettings", "GetServerTimeZones"}

DEFAULT_TEXT = {
    "ErrorServerBusy": "The server cannot service this request right now. Try again later.",
    "ErrorInternalServerError": "An internal server error occurred. The operation failed.",
    "ErrorInternalServerTransientError": "An internal server error occurred. Try again later.",
    "ErrorMailboxMoveInProgress": "Mailbox move in progress. Try again later.",
    "ErrorMailboxStoreUnavailable": "The mailbox database is temporarily unavailable.",
    "ErrorTimeoutExpired": "The request timed out.",
    "ErrorExceededConnectionCount": "You have exceeded the available concurrent connections for your account. "
                                    "Try again once your other requests have completed.",
    "ErrorTooManyObjectsOpened": "Too many objects are open. Try again later.",
    "ErrorSubscriptionNotFound": "The specified subscription was not found.",
    "ErrorInvalidSubscription": "The subscription is no longer valid.",
}

IIS_503 = ("<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"\"http://www.w3.org/TR/html4/strict.dtd\">\r\n"
           "<HTML><HEAD><TITLE>Service Unavailable</TITLE></HEAD><BODY><h2>Service Unavailable</h2>"
           "<hr><p>HTTP Error 503. The service is unavailable.</p></BODY></HTML>\r\n")
IIS_500 = ("<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"\"http://www.w3.org/TR/html4/strict.dtd\">\r\n"
           "<HTML><HEAD><TITLE>Internal Server Error</TITLE></HEAD><BODY><h2>Internal Server Error</h2>"
           "<hr><p>HTTP Error 500. The server encountered an internal error.</p></BODY></HTML>\r\n")


def _text(code, given=None):
    return given or DEFAULT_TEXT.get(code, "The request failed: %s." % code)


class Fault:
    __slots__ = ("id", "kind", "count", "filters", "params", "hits")

    def __init__(self, fid, kind, count, filters, params):
        self.id = fid
        self.kind = kind
        self.count = count  # None: until cleared
        self.filters = filters
        self.params = params
        self.hits = 0

    def matches_ctx(self, ctx):
        f = self.filters
        if "operation" in f and ctx.op_name not in f["operation"]:
            return False
        if "mailbox" in f and (ctx.mailbox is None or ctx.mailbox.smtp != f["mailbox"]):
            return False
        if "budget" in f and ctx.budget != f["budget"]:
            return False
        if "account" in f and ctx.account.smtp != f["account"]:
            return False
        if "backend" in f and (ctx.backend is None or ctx.backend.index != f["backend"]):
            return False
        if "max_entries_over" in f and not _asks_over(ctx.op_element, f["max_entries_over"]):
            return False
        return True

    def matches_conn(self, conn):
        f = self.filters
        if "backend" in f and conn.backend_index != f["backend"]:
            return False
        if "budget" in f and conn.budget != f["budget"]:
            return False
        if "account" in f and conn.account != f["account"]:
            return False
        if "subscription" in f and f["subscription"] not in conn.subs:
            return False
        if "mailbox" in f and not any(s.mailbox == f["mailbox"] for s in conn.subs.values()):
            return False
        return True

    def describe(self):
        return {"id": self.id, "kind": self.kind, "count": self.count, "hits": self.hits,
                "filters": {k: (sorted(v) if isinstance(v, set) else v) for k, v in self.filters.items()},
                **self.params}


class Faults:
    """The faults of a sim (sim.faults, made by state.Sim), read by the server before an
    operation runs and by notify as it writes streams."""

    def __init__(self, sim):
        self.sim = sim
        self.items = []
        self.moving = {}  # smtp -> sim time the move window ends
        self._ids = itertools.count(1)

    # -- hooks called by the server and notify ----------------------------------------

    async def before(self, ctx):
        sim = self.sim
        if self.moving and ctx.mailbox is not None:
            until = self.moving.get(ctx.mailbox.smtp)
            if until is not None:
                if sim.clock.time() < until:
                    sim.counters.inc("faults_injected", "mailbox_move")
                    return await self._ews_error(ctx, "ErrorMailboxMoveInProgress", None, [])
                del self.moving[ctx.mailbox.smtp]
        for f in list(self.items):
            if f.kind not in REQUEST_KINDS or not f.matches_ctx(ctx):
                continue
            self._consume(f)
            sim.counters.inc("faults_injected", f.kind)
            p = f.params
            if f.kind == "delay":
                # A slow server: for throttled operations the delay is served while the
                # request holds its EWSMaxConcurrency slot (throttle.enter adds it).
                entry = ctx.operation
                if entry is not None and entry.throttled and not entry.streaming:
                    ctx.extra_delay = getattr(ctx, "extra_delay", 0.0) + p["seconds"]
                else:
                    await sim.clock.sleep(p["seconds"])
                continue
            if f.kind == "http_503":
                h = dict(ctx.response_headers())
                if p.get("retry_after") is not None:
                    h["Retry-After"] = str(p["retry_after"])
                return web.Response(status=503, text=IIS_503, content_type="text/html", headers=h)
            if f.kind == "http_500":
                return web.Response(status=500, text=IIS_500, content_type="text/html",
                                    headers=ctx.response_headers())
            mx = p.get("message_xml") or []
            if f.kind == "ews_fault":
                return fault_response(
                    soap.EwsFault(p["code"], _text(p["code"], p.get("message")), mx,
                                  http_status=p.get("http_status", 500)), ctx)
            return await self._ews_error(ctx, p["code"], p.get("message"), mx)
        return None

    async def _ews_error(self, ctx, code, message, mx):
        """A 200 answer whose response message carries the error (a stream with one error
        message and Closed for GetStreamingEvents; a SOAP fault where no message fits)."""
        op = ctx.op_name
        text = _text(code, message)
        if op == "GetStreamingEvents":
            return await wire.error_stream(ctx, [(code, text, [], mx)])
        if op in NOT_MESSAGE_SHAPED:
            return fault_response(soap.EwsFault(code, text, mx), ctx)
        root, msgs = soap.response_root(op)
        soap.error_message(msgs, op + "ResponseMessage", code, text, mx)
        return xml_response(root, ctx)

    def _consume(self, f):
        f.hits += 1
        if f.count is not None:
            f.count -= 1
            if f.count <= 0:
                self.items.remove(f)

    def stream_mode(self, conn):
        """The write mode for an open stream (batch/split), or None."""
        for f in self.items:
            if f.kind == "stream_write" and f.matches_conn(conn):
                return f.params
        return None

    def take_half_open(self, conn):
        for f in list(self.items):
            if f.kind == "stream_half_open" and f.matches_conn(conn):
                self._consume(f)
                self.sim.counters.inc("faults_injected", "stream_half_open")
                return True
        return False

    # -- control actions --------------------------------------------------------------

    def add(self, d):
        d = dict(d)
        kind = d.get("kind")
        if kind not in KINDS:
            raise ValueError("kind must be one of %s" % ", ".join(KINDS))
        unknown = set(d) - KEYS
        if unknown:
            raise ValueError("unknown keys %s; known: %s" % (sorted(unknown), ", ".join(sorted(KEYS))))
        filters = _filters(self.sim, d)
        count = d.get("count", None if kind == "stream_write" else 1)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or null (until cleared)")
        params = {}
        if kind in ("ews_fault", "ews_error"):
            code = d.get("code")
            if not isinstance(code, str) or not code.startswith("Error"):
                raise ValueError("%s needs 'code', an EWS ResponseCode such as ErrorServerBusy" % kind)
            params["code"] = code
            if d.get("message") is not None:
                params["message"] = str(d["message"])
            mx = _message_xml(d.get("message_xml"))
            if d.get("back_off_ms") is not None:
                mx.append(("BackOffMilliseconds", int(d["back_off_ms"])))
            if d.get("inner_code"):
                mx.append(("InnerErrorResponseCode", str(d["inner_code"])))
                mx.append(("InnerErrorMessageText", _text(d["inner_code"], d.get("inner_message"))))
            params["message_xml"] = mx
            if kind == "ews_fault":
                st = d.get("http_status", 500)
                if not isinstance(st, int) or not 200 <= st <= 599:
                    raise ValueError("http_status must be an HTTP status")
                params["http_status"] = st
        elif kind == "delay":
            s = d.get("seconds")
            if isinstance(s, bool) or not isinstance(s, (int, float)) or s < 0:
                raise ValueError("delay needs 'seconds' (sim seconds, >= 0)")
            params["seconds"] = float(s)
        elif kind == "http_503":
            if d.get("retry_after") is not None:
                params["retry_after"] = int(d["retry_after"])
        elif kind == "stream_write":
            b = d.get("batch", 1)
            if isinstance(b, bool) or not isinstance(b, int) or b < 1:
                raise ValueError("batch must be an integer >= 1 (envelopes per write)")
            params["batch"] = b
            if d.get("split_every") is not None:
                e = d["split_every"]
                if isinstance(e, bool) or not isinstance(e, int) or e < 1:
                    raise ValueError("split_every must be an integer >= 1 (bytes)")
                params["split_every"] = e
            if d.get("split_seed") is not None:
                params["split_seed"] = int(d["split_seed"])
                m = d.get("split_max", 64)
                if isinstance(m, bool) or not isinstance(m, int) or m < 1:
                    raise ValueError("split_max must be an integer >= 1")
                params["split_max"] = m
            if d.get("pause_ms") is not None:
                params["pause_ms"] = float(d["pause_ms"])
        f = Fault(next(self._ids), kind, count, filters, params)
        self.items.append(f)
        return f

    def describe(self):
        return {"faults": [f.describe() for f in self.items],
                "moving_mailboxes": {k: v for k, v in self.moving.items()}}

    def clear(self, fid=None):
        if fid is None:
            n = len(self.items) + len(self.moving)
            self.items.clear()
            self.moving.clear()
            return n
        before = len(self.items)
        self.items = [f for f in self.items if f.id != fid]
        return before - len(self.items)


def _backend_index(sim, v):
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError("backend must be an index or a name")
    if isinstance(v, int):
        if 0 <= v < len(sim.backends):
            return v
    elif isinstance(v, str):
        for b in sim.backends:
            if v.lower() in (b.name.lower(), b.fqdn):
                return b.index
        if v.isdigit() and int(v) < len(sim.backends):
            return int(v)
    raise ValueError("no backend %r (0..%d or a name)" % (v, len(sim.backends) - 1))


# The paging elements of FindItem that carry MaxEntriesReturned.
PAGED_VIEWS = ("CalendarView", "IndexedPageItemView", "FractionalPageItemView")


def _asks_over(op, n):
    """Whether op (a request's operation element) is a FindItem whose view has no
    MaxEntriesReturned or one above n: an answer that may be too big for the server, as
    EWSFindCountLimit or a timeout would say (ErrorExceededFindCountLimit, ErrorTimeoutExpired)."""
    if op is None or soap.local(op.tag) != "FindItem":
        return False
    for name in PAGED_VIEWS:
        view = soap.child(op, name)
        if view is not None:
            mx = view.get("MaxEntriesReturned")
            return mx is None or not mx.strip().isdigit() or int(mx) > n
    return True  # no view at all: every item


def _filters(sim, d):
    f = {}
    if d.get("operation") is not None:
        ops = d["operation"]
        f["operation"] = {ops} if isinstance(ops, str) else set(ops)
    for k in ("mailbox", "budget", "account"):
        if d.get(k) is not None:
            v = str(d[k])
            f[k] = v if k == "budget" else v.lower()
    if d.get("subscription") is not None:
        f["subscription"] = str(d["subscription"])
    if d.get("backend") is not None:
        f["backend"] = _backend_index(sim, d["backend"])
    if d.get("max_entries_over") is not None:
        n = d["max_entries_over"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError("max_entries_over must be an integer >= 0 (items a FindItem may ask for)")
        f["max_entries_over"] = n
    return f


def _message_xml(v):
    if v is None:
        return []
    if isinstance(v, dict):
        return [(str(k), str(x)) for k, x in v.items()]
    if isinstance(v, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in v):
        return [(str(a), str(b)) for a, b in v]
    raise ValueError("message_xml must be an object or a list of [name, value] pairs")


def control_routes(sim):
    """The /faults routes of the control API, for main to add."""

    async def post_fault(request):
        d = await read_json(request)
        try:
            f = sim.faults.add(d)
        except (ValueError, TypeError) as exc:
            raise bad(str(exc))
        return web.json_response(f.describe(), status=201)

    async def get_faults(request):
        return web.json_response(sim.faults.describe())

    async def delete_faults(request):
        return web.json_response({"cleared": sim.faults.clear()})

    async def delete_fault(request):
        try:
            fid = int(request.match_info["id"])
        except ValueError:
            raise bad("fault ids are integers")
        if not sim.faults.clear(fid):
            raise not_found("no fault %d" % fid)
        return web.json_response({"cleared": 1})

    def stream_filters(d):
        try:
            f = _filters(sim, d)
        except ValueError as exc:
            raise bad(str(exc))
        return sim.notify.streams_matching(backend=f.get("backend"), subscription=f.get("subscription"),
                                         budget=f.get("budget"), account=f.get("account"))

    async def drop_streams(request):
        """{"backend"?, "subscription"?, "budget"?, "account"?, "how": "reset"|"eof"|"closed"}"""
        d = await read_json(request)
        how = d.get("how", "reset")
        if how not in ("reset", "eof", "closed"):
            raise bad("how must be reset (cut TCP), eof (end the body without Closed) or closed")
        conns = stream_filters(d)
        for c in conns:
            sim.notify.command(c, ("drop", how))
        return web.json_response({"dropped": len(conns)})

    async def half_open(request):
        """{"backend"?, "subscription"?, "budget"?, "account"?}: stop writing, keep TCP open."""
        d = await read_json(request)
        conns = stream_filters(d)
        for c in conns:
            c.halfopen = True
            sim.notify.command(c, ("halfopen",))
        return web.json_response({"half_open": len(conns)})

    async def restart_backend(request):
        """Backend restart: generation += 1, its subscriptions are lost, its streams cut."""
        d = await read_json(request)
        try:
            idx = _backend_index(sim, request.match_info["backend"])
        except ValueError as exc:
            raise not_found(str(exc))
        how = d.get("how", "reset")
        if how not in ("reset", "eof", "closed"):
            raise bad("how must be reset, eof or closed")
        b = sim.backends[idx]
        b.generation += 1
        lost, cut = sim.notify.lose_backend(idx, how)
        sim.counters.inc("faults_injected", "backend_restart")
        return web.json_response({"backend": b.name, "generation": b.generation,
                                  "subscriptions_lost": lost, "streams_cut": cut})

    async def expire(request):
        """{"ids": [...] | "mailbox": smtp | "all": true, "mid_deletion": false,
        "stream_code": "ErrorSubscriptionNotFound" (null: open streams are not told)}"""
        d = await read_json(request)
        n = sim.notify
        if d.get("all"):
            subs = list(n.subs.values())
        elif d.get("mailbox"):
            subs = list(n.by_mailbox.get(str(d["mailbox"]).lower(), ()))
        elif isinstance(d.get("ids"), list):
            subs = [n.subs[i] for i in d["ids"] if i in n.subs]
        else:
            raise bad("give 'ids' (a list), 'mailbox' or 'all'")
        code = d.get("stream_code", "ErrorSubscriptionNotFound")
        for s in subs:
            if d.get("mid_deletion") and s.conn is None:
                s.pending_code = "ErrorExpiredSubscription"
            else:
                n.remove(s, code, _text(code) if code else None)
        sim.counters.inc("faults_injected", "expire", len(subs))
        return web.json_response({"expired": len(subs)})

    async def missed(request):
        """{"subscription": id} or {"mailbox": smtp}: the next read reports
        ErrorMissedNotificationEvents and the events queued so far are lost."""
        d = await read_json(request)
        n = sim.notify
        if d.get("subscription"):
            s = n.subs.get(str(d["subscription"]))
            if s is None:
                raise not_found("no subscription %s" % d["subscription"])
            subs = [s]
        elif d.get("mailbox"):
            subs = list(n.by_mailbox.get(str(d["mailbox"]).lower(), ()))
        else:
            raise bad("give 'subscription' or 'mailbox'")
        for s in subs:
            n.inject_missed(s)
        sim.counters.inc("faults_injected", "missed_events", len(subs))
        return web.json_response({"affected": len(subs)})

    async def move_mailbox(request):
        """{"mailbox": smtp, "backend": index|name (default: the next one),
        "window_seconds": sim seconds of ErrorMailboxMoveInProgress (default 0),
        "stream_code": code sent on open streams (default ErrorSubscriptionNotFound; null: none)}"""
        d = await read_json(request)
        mb = sim.mailbox(str(d.get("mailbox", "")))
        if mb is None:
            raise not_found("no mailbox %r" % d.get("mailbox"))
        try:
            target = _backend_index(sim, d.get("backend"))
        except ValueError as exc:
            raise bad(str(exc))
        if target is None:
            target = (mb.backend_index + 1) % len(sim.backends)
        window = d.get("window_seconds", 0)
        if isinstance(window, bool) or not isinstance(window, (int, float)) or window < 0:
            raise bad("window_seconds must be a number >= 0")
        old = mb.backend.name
        mb.backend_index = target
        mb.database = "DB%02d" % (target + 1)  # a new database: a new event table (journal epoch)
        code = d.get("stream_code", "ErrorSubscriptionNotFound")
        lost = sim.notify.lose_mailbox(mb.smtp, code, _text(code) if code else None)
        sim.notify.reset_journal(mb.smtp)
        if window:
            sim.faults.moving[mb.smtp] = sim.clock.time() + window
        sim.counters.inc("faults_injected", "mailbox_move")
        return web.json_response({"mailbox": mb.smtp, "from": old, "to": mb.backend.name,
                                  "subscriptions_lost": lost, "move_window_seconds": window})

    return [
        web.post("/faults", post_fault),
        web.get("/faults", get_faults),
        web.delete("/faults", delete_faults),
        web.delete("/faults/{id}", delete_fault),
        web.post("/faults/streams/drop", drop_streams),
        web.post("/faults/streams/half-open", half_open),
        web.post("/faults/backends/{backend}/restart", restart_backend),
        web.post("/faults/subscriptions/expire", expire),
        web.post("/faults/missed-events", missed),
        web.post("/faults/mailboxes/move", move_mailbox),
    ]
