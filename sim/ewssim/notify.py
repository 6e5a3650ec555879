"""Subscriptions and notifications: Subscribe, GetEvents, GetStreamingEvents, Unsubscribe.

Model (Exchange 2013+ behaviour; see docs/ews-sim-notifications.md for the choices made
where Exchange is undocumented):

- Every mailbox has an event journal (the "event table" a watermark points into): a
  bounded deque of (seq, sim time, event). `emit()` appends to it. A journal has a 16-byte
  token derived from the mailbox and its database; moving the mailbox changes the token,
  so old watermarks become ErrorInvalidWatermark.
- A subscription lives on the backend the Subscribe was ROUTED to (ctx.backend), in that
  backend's generation; it belongs to the creating account and watches one mailbox. It
  keeps only a cursor into the mailbox's journal, so queued events cost nothing per
  subscription and 50,000 subscriptions fit easily.
- Pull subscriptions are read with GetEvents (watermarks, 50 events per call) and expire
  when not polled for Timeout sim minutes. Streaming subscriptions are read by
  GetStreamingEvents connections: one asyncio task per open connection, none per
  subscription. Events emitted while a streaming subscription has no connection stay in
  the journal and are delivered on reconnect (bounded: ErrorMissedNotificationEvents).
- Push subscriptions are accepted (SubscriptionId + Watermark) but never delivered:
  ews-sim does not call back. They lapse after StatusFrequency minutes, as a push
  subscription whose notifications are never acknowledged does.
"""

import asyncio
import base64
import collections
import hashlib
import itertools
import logging
import struct
import uuid

from aiohttp import web

from . import calendar as calmod
from . import registry, soap, wire
from .soap import M, T, el
from .webio import bad, not_found, read_json
from .wire import MOVE_TYPES

log = logging.getLogger("ews-sim.notify")

EVENT_TYPES = (
    "CopiedEvent",
    "CreatedEvent",
    "DeletedEvent",
    "ModifiedEvent",
    "MovedEvent",
    "NewMailEvent",
    "FreeBusyChangedEvent",
)
_TYPESETS = {}

# The operations this module answers; main adds them to the server's table.
OPERATIONS = registry.Table()

TXT_NOT_FOUND = "The specified subscription was not found."
TXT_ACCESS_DENIED = "Access is denied. Only the subscription owner may access the subscription."
TXT_DELEGATE = "Subscriptions are not supported for delegate user access."
TXT_BAD_WATERMARK = "The watermark used for creating this subscription was not found."
TXT_GETEVENTS_WATERMARK = "The specified watermark is invalid for this subscription."
TXT_MULTI_MAILBOX = "A subscription can only watch folders of a single mailbox."
TXT_NO_FOLDERS = "FolderIds are required unless SubscribeToAllFolders is true, and not allowed with it."
TXT_SUB_COUNT = "You have exceeded the maximum number of subscriptions for this mailbox."
TXT_NOT_PULL = "The subscription is not a pull subscription."
TXT_INVALID_SUB = "The subscription is not valid for this operation."
TXT_NEW_STREAM = "A new event stream connection was opened for this subscription; this connection no longer serves it."
TXT_MISSED = "Notification events were missed; the event queue of the subscription overflowed."
TXT_EXPIRED = "The subscription has expired."
TXT_TOO_MANY_IDS = "Too many subscription ids: at most %d are allowed in one GetStreamingEvents request."

WATERMARK_MAX_AGE = 30 * 86400  # the mailbox event table keeps 30 days


class Config:
    """Tunables of the notification model, settable over POST /notify/config."""

    FIELDS = {
        "journal_size": (int, 1, 10_000_000),  # events kept per mailbox
        "streaming_queue_limit": (int, 1, 10_000_000),  # queued events per disconnected streaming sub
        "streaming_expiry_minutes": (float, 0.0, 10_000_000.0),  # streaming sub with no connection lives this long
        "max_ids_per_connection": (int, 1, 1_000_000),  # SubscriptionIds per GetStreamingEvents
        "max_events_per_getevents": (int, 1, 1_000_000),
        "max_events_per_message": (int, 1, 1_000_000),  # events per streamed envelope
        "sweep_interval_seconds": (float, 0.05, 3600.0),  # real seconds between expiry sweeps
    }

    def __init__(self):
        self.journal_size = 2000
        self.streaming_queue_limit = 500
        self.streaming_expiry_minutes = 30.0
        self.max_ids_per_connection = 200
        self.max_events_per_getevents = 50
        self.max_events_per_message = 100
        self.sweep_interval_seconds = 2.0

    def as_dict(self):
        return {k: getattr(self, k) for k in self.FIELDS}

    def update(self, d):
        for k, v in d.items():
            if k not in self.FIELDS:
                raise ValueError("unknown notify setting %r; known: %s" % (k, ", ".join(self.FIELDS)))
            typ, lo, hi = self.FIELDS[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (typ is int and int(v) != v):
                raise ValueError("%s must be a number" % k)
            if not lo <= v <= hi:
                raise ValueError("%s must be in %s..%s" % (k, lo, hi))
            setattr(self, k, typ(v))


class Journal:
    """The event table of one mailbox: events with increasing sequence numbers."""

    __slots__ = ("token", "seq", "events", "floor")

    def __init__(self, token):
        self.token = token  # 16 bytes, part of every watermark
        self.seq = 0  # seq of the newest event (0: none yet)
        self.events = None  # deque of (seq, sim time, event dict), created on first event
        self.floor = 0  # events with seq <= floor are gone (dropped or never existed)


class Subscription:
    __slots__ = (
        "id", "kind", "owner", "mailbox", "budget", "backend_index", "generation", "folders", "types",
        "timeout", "last_poll", "cursor", "conn", "disconnected_at", "created", "pending_code",
        "lost_upto", "reported",
    )

    def __init__(self, sid, kind, owner, mailbox, budget, backend, folders, types, now):
        self.id = sid
        self.kind = kind  # "pull" | "streaming" | "push"
        self.owner = owner  # smtp of the account that created it
        self.mailbox = mailbox  # smtp of the watched mailbox
        self.budget = budget  # EWSMaxSubscriptions budget charged
        self.backend_index = backend.index
        self.generation = backend.generation
        self.folders = folders  # tuple of folder ids, or None (all folders)
        self.types = types  # frozenset of event type names
        self.timeout = 0  # pull: minutes; push: StatusFrequency minutes
        self.last_poll = now
        self.cursor = 0  # pull: seq of the last acknowledged watermark; streaming: last delivered seq
        self.conn = None  # streaming: the StreamConn serving it
        self.disconnected_at = now
        self.created = now
        self.pending_code = None  # one-shot error for the next access (fault injection)
        self.lost_upto = 0  # events up to this seq are lost for this subscription
        self.reported = 0  # the missed-events gap already reported

    def matches(self, ev):
        if ev["type"] not in self.types:
            return False
        f = self.folders
        if f is None:
            return True
        if ev["parent_folder_id"] in f:
            return True
        if ev.get("folder_event") and ev["item_id"] in f:
            return True
        if ev["type"] in MOVE_TYPES and ev.get("old_parent_folder_id") in f:
            return True
        return False

    def describe(self, sim):
        d = {
            "id": self.id,
            "kind": self.kind,
            "owner": self.owner,
            "mailbox": self.mailbox,
            "budget": self.budget,
            "backend": sim.backends[self.backend_index].name,
            "generation": self.generation,
            "folders": None if self.folders is None else sorted(self.folders),
            "event_types": sorted(self.types),
            "cursor": self.cursor,
            "connected": self.conn is not None,
        }
        if self.kind in ("pull", "push"):
            d["timeout_minutes"] = self.timeout
        return d


class StreamConn:
    """One open GetStreamingEvents connection."""

    __slots__ = (
        "id", "subs", "budget", "account", "backend_index", "wake", "outbox", "command", "halfopen",
        "opened", "timeout_minutes", "rng", "offset", "held",
    )

    def __init__(self, cid, ctx, timeout_minutes):
        self.id = cid
        self.subs = {}  # sub id -> Subscription
        self.budget = ctx.budget
        self.account = ctx.account.smtp
        self.backend_index = ctx.backend.index
        self.wake = asyncio.Event()
        self.outbox = []  # (code, text, [ids]) error messages to send
        self.command = None  # ("drop", how)
        self.halfopen = False
        self.opened = ctx.sim.clock.time()
        self.timeout_minutes = timeout_minutes
        self.rng = None  # random split offsets (fault)
        self.offset = 0  # bytes written so far (split faults)
        self.held = []  # envelopes held back (batch write fault)

    def describe(self, sim):
        return {
            "id": self.id,
            "budget": self.budget,
            "account": self.account,
            "backend": sim.backends[self.backend_index].name,
            "subscriptions": sorted(self.subs),
            "half_open": self.halfopen,
            "opened": self.opened,
            "connection_timeout_minutes": self.timeout_minutes,
        }


# -- ids and watermarks -------------------------------------------------------------------


def _gen_tail(backend):
    return hashlib.sha1(("%s/%d" % (backend.fqdn, backend.generation)).encode()).digest()[:8]


def new_subscription_id(backend):
    """An id shaped like Exchange 2013+'s: base64 of 0x26 0x00, the backend FQDN, a
    16-byte length-prefixed GUID and 8 bytes that are the same for the whole process."""
    raw = b"\x26\x00" + backend.fqdn.encode() + b"\x10\x00\x00\x00" + uuid.uuid4().bytes + _gen_tail(backend)
    return base64.b64encode(raw).decode()


_WM_HEAD = b"\x01\x00\x00\x00"
_WM_LEN = 4 + 16 + 8 + 8 + 1


def encode_watermark(token, seq, t):
    return base64.b64encode(_WM_HEAD + token + struct.pack("<Qq", seq, int(t)) + b"\x01").decode()


def decode_watermark(s):
    """(token, seq, sim time) or None when s is not one of our watermarks."""
    try:
        raw = base64.b64decode((s or "").strip(), validate=True)
    except (ValueError, TypeError):
        return None
    if len(raw) != _WM_LEN or not raw.startswith(_WM_HEAD):
        return None
    seq, t = struct.unpack("<Qq", raw[20:36])
    return raw[4:20], seq, t


# -- the notification state ---------------------------------------------------------------


class Notify:
    """The notification state of a sim (sim.notify): journals, subscriptions, open streams.

    Made by state.Sim, it registers itself on the sim's hook lists: the calendar's changes
    (its event queue feeder), the counters' gauges, clock changes (an expiry sweep), mailbox
    deletion and shutdown."""

    def __init__(self, sim):
        self.sim = sim
        self.cfg = Config()
        self.subs = {}  # id -> Subscription
        self.by_mailbox = {}  # smtp -> [Subscription]
        self.sub_count = collections.Counter()  # EWSMaxSubscriptions budget -> live subscriptions
        self.journals = {}  # smtp -> Journal
        self.journal_epoch = collections.Counter()  # smtp -> moves so far
        self.conns = {}  # conn id -> StreamConn
        self._conn_seq = 0
        self._sweeper = None
        sim.calendar_hooks.append(self.feed)
        sim.gauge_hooks.append(self.gauges)
        sim.clock_hooks.append(self.sweep)
        sim.mailbox_deleted_hooks.append(self.mailbox_deleted)
        sim.shutdown_hooks.append(self.shutdown)

    # -- hooks -------------------------------------------------------------------------

    def feed(self, mailbox, events):
        """The calendar changed: queue its events (calendar hook)."""
        emit(self.sim, mailbox, events)

    def mailbox_deleted(self, smtp):
        """The mailbox is gone: so are its subscriptions and its event table."""
        self.lose_mailbox(smtp, "ErrorSubscriptionNotFound", TXT_NOT_FOUND)
        self.reset_journal(smtp)

    async def shutdown(self):
        """Cut every open stream (the process is going away)."""
        for c in list(self.conns.values()):
            self.command(c, ("drop", "reset"))
        await asyncio.sleep(0)

    # -- journals ----------------------------------------------------------------------

    def journal(self, mailbox):
        j = self.journals.get(mailbox.smtp)
        if j is None:
            token = hashlib.md5(
                ("%s/%s/%d" % (mailbox.guid, mailbox.database, self.journal_epoch[mailbox.smtp])).encode()
            ).digest()
            j = self.journals[mailbox.smtp] = Journal(token)
        return j

    def reset_journal(self, smtp):
        """The mailbox moved to another database: a new event table."""
        self.journal_epoch[smtp] += 1
        self.journals.pop(smtp, None)

    def append(self, mailbox, events):
        now = self.sim.clock.time()
        j = self.journal(mailbox)
        if j.events is None:
            j.events = collections.deque()
        dq = j.events
        for ev in events:
            j.seq += 1
            dq.append((j.seq, now, ev))
        limit = self.cfg.journal_size
        while dq and (len(dq) > limit or dq[0][1] < now - WATERMARK_MAX_AGE):
            j.floor = dq.popleft()[0]
        self.sim.counters.inc("events", "emitted", len(events))
        for sub in self.by_mailbox.get(mailbox.smtp, ()):
            if sub.conn is not None:
                sub.conn.wake.set()

    def collect(self, sub, j, after, limit):
        """Events of journal j after seq `after` that sub wants, at most limit:
        (records, more, last seq scanned)."""
        out = []
        last = after
        dq = j.events
        if dq:
            start = max(0, after + 1 - dq[0][0])
            for rec in itertools.islice(dq, start, None):
                if sub.matches(rec[2]):
                    if len(out) >= limit:
                        return out, True, last
                    out.append(rec)
                last = rec[0]
        return out, False, last

    def count_pending(self, sub, j, after):
        n = 0
        if j.events:
            for rec in j.events:
                if rec[0] > after and sub.matches(rec[2]):
                    n += 1
        return n

    # -- subscriptions -----------------------------------------------------------------

    def add(self, sub):
        self.subs[sub.id] = sub
        self.by_mailbox.setdefault(sub.mailbox, []).append(sub)
        self.sub_count[sub.budget] += 1

    def remove(self, sub, stream_code=None, stream_text=None):
        """Forget sub. If a stream serves it, the stream loses it; with stream_code the
        stream is told with a per-subscription error message."""
        if self.subs.pop(sub.id, None) is None:
            return False
        lst = self.by_mailbox.get(sub.mailbox)
        if lst is not None:
            try:
                lst.remove(sub)
            except ValueError:
                pass
            if not lst:
                del self.by_mailbox[sub.mailbox]
        self.sub_count[sub.budget] -= 1
        if self.sub_count[sub.budget] <= 0:
            del self.sub_count[sub.budget]
        conn = sub.conn
        if conn is not None:
            conn.subs.pop(sub.id, None)
            sub.conn = None
            if stream_code:
                conn.outbox.append((stream_code, stream_text or TXT_NOT_FOUND, [sub.id]))
            conn.wake.set()
        return True

    def expired(self, sub, now):
        if sub.kind == "streaming":
            return sub.conn is None and now - sub.disconnected_at > self.cfg.streaming_expiry_minutes * 60
        return now - sub.last_poll > sub.timeout * 60

    def sweep(self):
        now = self.sim.clock.time()
        dead = [s for s in self.subs.values() if self.expired(s, now)]
        for s in dead:
            self.remove(s)
            self.sim.counters.inc("subscriptions_expired", s.kind)
        return len(dead)

    def live_count(self, budget):
        return self.sub_count.get(budget, 0)

    def lookup(self, ctx, sid):
        """(sub, None, None) or (None, code, text) for a request routed to ctx.backend."""
        sub = self.subs.get(sid)
        b = ctx.backend
        if sub is None or b is None or sub.backend_index != b.index or sub.generation != b.generation:
            return None, "ErrorSubscriptionNotFound", TXT_NOT_FOUND
        if self.expired(sub, self.sim.clock.time()):
            self.remove(sub)
            self.sim.counters.inc("subscriptions_expired", sub.kind)
            return None, "ErrorSubscriptionNotFound", TXT_NOT_FOUND
        if sub.owner != ctx.account.smtp:
            return None, "ErrorSubscriptionAccessDenied", TXT_ACCESS_DENIED
        if sub.pending_code == "ErrorExpiredSubscription":
            self.remove(sub)
            return None, "ErrorExpiredSubscription", TXT_EXPIRED
        return sub, None, None

    def ensure_sweeper(self):
        if self._sweeper is not None and not self._sweeper.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._sweeper = loop.create_task(self._sweep_loop())

    async def _sweep_loop(self):
        while True:
            await asyncio.sleep(self.cfg.sweep_interval_seconds)
            try:
                self.sweep()
            except Exception:  # never let the sweeper die
                log.exception("subscription sweep failed")

    # -- streams -----------------------------------------------------------------------

    def new_conn(self, ctx, timeout_minutes):
        self._conn_seq += 1
        conn = StreamConn(self._conn_seq, ctx, timeout_minutes)
        self.conns[conn.id] = conn
        return conn

    def close_conn(self, conn):
        self.conns.pop(conn.id, None)
        now = self.sim.clock.time()
        for sub in list(conn.subs.values()):
            if sub.conn is conn:
                sub.conn = None
                sub.disconnected_at = now
        conn.subs.clear()

    def streams_matching(self, backend=None, subscription=None, budget=None, account=None):
        out = []
        for c in list(self.conns.values()):
            if backend is not None and c.backend_index != backend:
                continue
            if subscription is not None and subscription not in c.subs:
                continue
            if budget is not None and c.budget != budget:
                continue
            if account is not None and c.account != account:
                continue
            out.append(c)
        return out

    def command(self, conn, cmd):
        conn.command = cmd
        conn.wake.set()

    # -- fault hooks (used by faults.py) ---------------------------------------------

    def lose_backend(self, backend_index, how="reset"):
        """The backend restarted: its subscriptions are gone, its streams cut."""
        lost = [s for s in self.subs.values() if s.backend_index == backend_index]
        for s in lost:
            self.remove(s)
        conns = self.streams_matching(backend=backend_index)
        for c in conns:
            self.command(c, ("drop", how))
        return len(lost), len(conns)

    def lose_mailbox(self, smtp, stream_code=None, stream_text=None):
        lost = list(self.by_mailbox.get(smtp, ()))
        for s in lost:
            self.remove(s, stream_code, stream_text)
        return len(lost)

    def inject_missed(self, sub):
        j = self.journals.get(sub.mailbox)
        head = j.seq if j is not None else 0
        sub.lost_upto = max(sub.lost_upto, head)
        if sub.kind == "streaming" and sub.conn is not None:
            sub.cursor = max(sub.cursor, head)
            sub.conn.outbox.append(("ErrorMissedNotificationEvents", TXT_MISSED, [sub.id]))
            sub.conn.wake.set()
        else:
            sub.pending_code = "ErrorMissedNotificationEvents"

    # -- gauges ------------------------------------------------------------------------

    def gauges(self):
        kinds = collections.Counter(s.kind for s in self.subs.values())
        kinds["total"] = len(self.subs)
        by_backend = collections.Counter(self.sim.backends[s.backend_index].name for s in self.subs.values())
        per_budget = collections.Counter(c.budget for c in self.conns.values())
        return {
            "subscriptions": dict(kinds),
            "subscriptions_by_backend": dict(by_backend),
            "streaming_connections": {"total": len(self.conns)},
            "streaming_connections_by_budget": dict(per_budget),
            "streaming_subscriptions_connected": {
                "total": sum(len(c.subs) for c in self.conns.values())
            },
        }


def _validate_event(sim, mailbox, ev):
    if not isinstance(ev, dict):
        raise ValueError("an event must be an object")
    t = ev.get("type")
    if t not in EVENT_TYPES:
        raise ValueError("event type must be one of %s, got %r" % (", ".join(EVENT_TYPES), t))
    out = dict(ev)
    if not out.get("parent_folder_id"):
        fid, ck = calmod.folder_id(mailbox)
        out["parent_folder_id"] = fid
        out.setdefault("parent_change_key", ck)
    if not out.get("item_id"):
        out["item_id"] = base64.b64encode(b"\x00\x00\x00\x00" + uuid.uuid4().bytes * 2).decode()
    if t in MOVE_TYPES:
        if not out.get("old_item_id") or not out.get("old_parent_folder_id"):
            raise ValueError("%s needs old_item_id and old_parent_folder_id" % t)
    for k in ("item_id", "change_key", "parent_folder_id", "parent_change_key", "old_item_id",
              "old_parent_folder_id", "old_change_key", "old_parent_change_key"):
        if out.get(k) is not None and not isinstance(out[k], str):
            raise ValueError("%s must be a string" % k)
    return out


def emit(sim, mailbox, events):
    """Record events in mailbox's journal and wake the streams that watch it.

    mailbox: a state.Mailbox (or its SMTP address). events: list of dicts with "type",
    "item_id", "change_key", "parent_folder_id", "parent_change_key"; Moved/Copied add
    "old_item_id", "old_parent_folder_id" (optionally "old_change_key",
    "old_parent_change_key"); "folder_event": True writes FolderId instead of ItemId.
    Raises ValueError for a malformed event (nothing is recorded then)."""
    n = sim.notify
    if not events:
        return 0
    if isinstance(mailbox, str):
        mb = sim.mailbox(mailbox)
        if mb is None:
            raise ValueError("no mailbox %s" % mailbox)
        mailbox = mb
    evs = [_validate_event(sim, mailbox, e) for e in events]
    n.append(mailbox, evs)
    return len(evs)


# -- Subscribe ----------------------------------------------------------------------------


def _folder_specs(ctx, req):
    """The folders of a subscription request: (tuple of ids | None, error (code, text) | None)."""
    all_folders = (req.get("SubscribeToAllFolders") or "").strip().lower() in ("true", "1")
    fids = soap.child(req, "FolderIds")
    specs = [c for c in fids if isinstance(c.tag, str)] if fids is not None else []
    if all_folders == bool(specs):
        return None, ("ErrorInvalidSubscriptionRequest", TXT_NO_FOLDERS)
    if all_folders:
        return None, None
    sim = ctx.sim
    mailboxes = set()
    ids = set()
    for f in specs:
        kind = soap.local(f.tag)
        if kind == "DistinguishedFolderId":
            mbel = soap.child(f, "Mailbox")
            addr = soap.text_of(mbel, "EmailAddress") if mbel is not None else None
            target = ctx.mailbox.smtp if not addr else addr.strip().lower()
            mailboxes.add(target)
            mb = sim.mailbox(target) if target != ctx.mailbox.smtp else ctx.mailbox
            if mb is None:
                mailboxes.add("?" + target)
                continue
            ids.add(calmod.folder_id(mb, f.get("Id"))[0])
        elif kind == "FolderId":
            ids.add(f.get("Id"))
            mailboxes.add(ctx.mailbox.smtp)
        else:  # public folders and the like
            return None, ("ErrorInvalidSubscriptionRequest", "Only mailbox folders can be subscribed to.")
    if len(mailboxes) > 1:
        return None, ("ErrorInvalidSubscriptionRequest", TXT_MULTI_MAILBOX)
    if mailboxes != {ctx.mailbox.smtp}:
        return None, ("ErrorSubscriptionDelegateAccessNotSupported", TXT_DELEGATE)
    return tuple(sorted(ids)), None


@OPERATIONS.operation("Subscribe")
async def subscribe(ctx, op):
    sim = ctx.sim
    n = sim.notify
    n.ensure_sweeper()
    root, msgs = soap.response_root("Subscribe")
    msg_tag = "SubscribeResponseMessage"
    req = None
    for c in op:
        if isinstance(c.tag, str):
            req = c
            break
    kind = {"PullSubscriptionRequest": "pull", "StreamingSubscriptionRequest": "streaming",
            "PushSubscriptionRequest": "push"}.get(soap.local(req.tag) if req is not None else "")
    if kind is None:
        raise soap.EwsFault("ErrorInvalidRequest", "The Subscribe request has no subscription request.")
    if kind == "streaming" and not soap.version_at_least(ctx.version, "Exchange2010_SP1"):
        raise soap.EwsFault("ErrorInvalidServerVersion",
                            "Streaming subscriptions need Exchange2010_SP1 or later.")
    ets = soap.child(req, "EventTypes")
    types = frozenset((e.text or "").strip() for e in soap.children(ets, "EventType")) if ets is not None else frozenset()
    types = frozenset(t for t in types if t in EVENT_TYPES)
    types = _TYPESETS.setdefault(types, types)  # shared: a few distinct sets for all subscriptions
    if "FreeBusyChangedEvent" in types and not soap.version_at_least(ctx.version, "Exchange2010_SP1"):
        raise soap.EwsFault("ErrorInvalidServerVersion", "FreeBusyChangedEvent needs Exchange2010_SP1 or later.")
    if not types:
        soap.error_message(msgs, msg_tag, "ErrorInvalidSubscriptionRequest", "No valid event types were given.")
        return root
    folders, err = _folder_specs(ctx, req)
    if err:
        soap.error_message(msgs, msg_tag, *err)
        return root
    now = sim.clock.time()
    j = n.journal(ctx.mailbox)
    start = j.seq
    wm_in = soap.text_of(req, "Watermark") if kind != "streaming" else None
    if wm_in:
        w = decode_watermark(wm_in)
        if (w is None or w[0] != j.token or w[1] > j.seq or w[1] < j.floor
                or w[2] < now - WATERMARK_MAX_AGE):
            sim.counters.inc("rejections", "ErrorInvalidWatermark")
            soap.error_message(msgs, msg_tag, "ErrorInvalidWatermark", TXT_BAD_WATERMARK)
            return root
        start = w[1]
    limit = sim.limits.ews_max_subscriptions
    budget = ctx.budget
    if limit is not None and n.live_count(budget) >= limit:
        n.sweep()
    if limit is not None and n.live_count(budget) >= limit:
        sim.counters.inc("rejections", "ErrorExceededSubscriptionCount")
        soap.error_message(msgs, msg_tag, "ErrorExceededSubscriptionCount", TXT_SUB_COUNT,
                           message_xml=[("Policy", "MaxSubscriptions"), ("MaxSubscriptionsLimit", limit)])
        return root
    sub = Subscription(new_subscription_id(ctx.backend), kind, ctx.account.smtp, ctx.mailbox.smtp, budget,
                       ctx.backend, folders, types, now)
    sub.cursor = start
    sub.lost_upto = start
    sub.reported = start
    if kind == "pull":
        sub.timeout = int(soap.text_of(req, "Timeout", "30"))
        sub.timeout = min(max(sub.timeout, 1), 1440)
    elif kind == "push":
        sub.timeout = min(max(int(soap.text_of(req, "StatusFrequency", "30")), 1), 1440)
    n.add(sub)
    sim.counters.inc("subscriptions_created", kind)
    m = soap.success_message(msgs, msg_tag)
    el(m, M("SubscriptionId"), sub.id)
    if kind != "streaming":
        el(m, M("Watermark"), wm_in if wm_in else encode_watermark(j.token, start, now))
    return root


# -- Unsubscribe --------------------------------------------------------------------------


@OPERATIONS.operation("Unsubscribe")
async def unsubscribe(ctx, op):
    n = ctx.sim.notify
    root, msgs = soap.response_root("Unsubscribe")
    sid = soap.text_of(op, "SubscriptionId", "")
    sub, code, text = n.lookup(ctx, sid)
    if sub is None:
        soap.error_message(msgs, "UnsubscribeResponseMessage", code, text)
        return root
    if sub.kind == "push":
        soap.error_message(msgs, "UnsubscribeResponseMessage", "ErrorInvalidPullSubscriptionId", TXT_NOT_PULL)
        return root
    n.remove(sub)
    ctx.sim.counters.inc("subscriptions_removed", "unsubscribe")
    soap.success_message(msgs, "UnsubscribeResponseMessage")
    return root


# -- GetEvents ----------------------------------------------------------------------------


@OPERATIONS.operation("GetEvents")
async def get_events(ctx, op):
    sim = ctx.sim
    n = sim.notify
    root, msgs = soap.response_root("GetEvents")
    tag = "GetEventsResponseMessage"
    sid = soap.text_of(op, "SubscriptionId", "")
    wm_in = soap.text_of(op, "Watermark", "")
    sub, code, text = n.lookup(ctx, sid)
    if sub is None:
        soap.error_message(msgs, tag, code, text)
        return root
    if sub.kind != "pull":
        soap.error_message(msgs, tag, "ErrorInvalidPullSubscriptionId", TXT_NOT_PULL)
        return root
    now = sim.clock.time()
    sub.last_poll = now  # every GetEvents resets the Timeout
    mb = sim.mailbox(sub.mailbox)
    if mb is None:
        n.remove(sub)
        soap.error_message(msgs, tag, "ErrorSubscriptionNotFound", TXT_NOT_FOUND)
        return root
    j = n.journal(mb)
    w = decode_watermark(wm_in)
    if w is None or w[0] != j.token or w[1] < sub.cursor or w[1] > j.seq:
        sim.counters.inc("rejections", "ErrorInvalidWatermark")
        soap.error_message(msgs, tag, "ErrorInvalidWatermark", TXT_GETEVENTS_WATERMARK)
        return root
    after = w[1]
    if sub.pending_code == "ErrorMissedNotificationEvents":
        sub.pending_code = None
        sub.reported = max(sub.reported, sub.lost_upto)
        sim.counters.inc("events", "missed_reported")
        soap.error_message(msgs, tag, "ErrorMissedNotificationEvents", TXT_MISSED)
        return root
    floor = max(j.floor, sub.lost_upto)
    if after < floor:
        if sub.reported < floor:
            sub.reported = floor
            sim.counters.inc("events", "missed_reported")
            soap.error_message(msgs, tag, "ErrorMissedNotificationEvents", TXT_MISSED)
            return root
        after = floor
    sub.cursor = w[1]
    recs, more, last = n.collect(sub, j, after, n.cfg.max_events_per_getevents)
    m = soap.success_message(msgs, tag)
    nt = el(m, M("Notification"))
    el(nt, T("SubscriptionId"), sub.id)
    el(nt, T("PreviousWatermark"), wm_in)
    el(nt, T("MoreEvents"), "true" if more else "false")
    if recs:
        for seq, when, ev in recs:
            wire.event_el(nt, ev, when, encode_watermark(j.token, seq, when))
        sim.counters.inc("events", "delivered_pull", len(recs))
    else:
        st = el(nt, T("StatusEvent"))
        el(st, T("Watermark"), encode_watermark(j.token, last, now))
    return root


# -- GetStreamingEvents -------------------------------------------------------------------


def _resolve_ids(n, ctx, ids):
    """Split requested ids into good subscriptions and errors grouped by code."""
    good = []
    errors = collections.OrderedDict()
    for sid in ids:
        sub, code, text = n.lookup(ctx, sid)
        if sub is not None and sub.kind != "streaming":
            sub, code, text = None, "ErrorInvalidSubscription", TXT_INVALID_SUB
        if sub is None:
            errors.setdefault(code, (text, []))[1].append(sid)
        else:
            good.append(sub)
    return good, [(code, text, lst) for code, (text, lst) in errors.items()]


@OPERATIONS.operation("GetStreamingEvents", min_version="Exchange2010_SP1", streaming=True)
async def get_streaming_events(ctx, op):
    sim = ctx.sim
    n = sim.notify
    n.ensure_sweeper()
    ids_el = soap.child(op, "SubscriptionIds")
    ids = []
    for c in soap.children(ids_el, "SubscriptionId") if ids_el is not None else []:
        v = (c.text or "").strip()
        if v not in ids:
            ids.append(v)
    try:
        timeout = int(soap.text_of(op, "ConnectionTimeout", "30"))
    except ValueError:
        timeout = 30
    timeout = min(max(timeout, 1), 30)
    throttle = sim.throttle
    budget = throttle.hanging_enter(ctx)  # raises ErrorExceededConnectionCount
    conn = None
    try:
        if len(ids) > n.cfg.max_ids_per_connection:
            sim.counters.inc("rejections", "TooManySubscriptionIds")
            return await wire.error_stream(
                ctx, [("ErrorInvalidArgument", TXT_TOO_MANY_IDS % n.cfg.max_ids_per_connection, [], None)])
        good, errors = _resolve_ids(n, ctx, ids)
        if not good:
            return await wire.error_stream(ctx, [(c, t, i, None) for c, t, i in errors])
        conn = n.new_conn(ctx, timeout)
        # Take the subscriptions over from any older connection (it is told so).
        taken = collections.OrderedDict()
        j_by_mb = {}
        for sub in good:
            old = sub.conn
            if old is not None and old is not conn:
                old.subs.pop(sub.id, None)
                taken.setdefault(old.id, (old, []))[1].append(sub.id)
            sub.conn = conn
            conn.subs[sub.id] = sub
        for old, sids in taken.values():
            old.outbox.append(("ErrorNewEventStreamConnectionOpened", TXT_NEW_STREAM, sids))
            old.wake.set()
        if taken:
            sim.counters.inc("streams_taken_over", "", sum(len(v[1]) for v in taken.values()))
        # Queued events beyond what the subscription could hold are reported as missed.
        missed = []
        for sub in good:
            mb = sim.mailbox(sub.mailbox)
            if mb is None:
                continue
            j = j_by_mb.get(sub.mailbox) or n.journal(mb)
            j_by_mb[sub.mailbox] = j
            floor = max(j.floor, sub.lost_upto)
            if (sub.pending_code == "ErrorMissedNotificationEvents" or sub.cursor < floor
                    or n.count_pending(sub, j, sub.cursor) > n.cfg.streaming_queue_limit):
                missed.append(sub.id)
                sub.pending_code = None
                sub.cursor = j.seq
                sub.reported = j.seq
        if missed:
            sim.counters.inc("events", "missed_reported", len(missed))
            conn.outbox.append(("ErrorMissedNotificationEvents", TXT_MISSED, missed))
        if sim.faults.take_half_open(conn):
            conn.halfopen = True
        resp = await wire.prepare(ctx)
        await _run_stream(ctx, n, conn, resp, errors)
        return resp
    finally:
        throttle.hanging_leave(budget)
        if conn is not None:
            n.close_conn(conn)


async def _deliver(n, writer, conn):
    """Write the events queued for the connection's subscriptions."""
    sim = n.sim
    limit = n.cfg.max_events_per_message
    while True:
        batches = []
        total = 0
        more = False
        for sub in list(conn.subs.values()):
            if total >= limit:
                more = True
                break
            j = n.journals.get(sub.mailbox)
            if j is None or j.seq <= sub.cursor:
                continue
            recs, m, last = n.collect(sub, j, sub.cursor, limit - total)
            sub.cursor = recs[-1][0] if m else last
            more = more or m
            if recs:
                batches.append((sub.id, recs))
                total += len(recs)
        if batches:
            sim.counters.inc("events", "delivered_streaming", total)
            await writer.send(wire.stream_notifications(batches))
        if not more:
            return


async def _run_stream(ctx, n, conn, resp, initial_errors):
    sim = ctx.sim
    loop = asyncio.get_running_loop()
    writer = wire.Writer(conn, resp, sim.faults.stream_mode)
    start = loop.time()
    deadline = start + sim.clock.real(conn.timeout_minutes * 60)
    hb = max(sim.heartbeat_seconds, 0.001)
    next_hb = start + sim.clock.real(hb)
    try:
        await writer.send(wire.stream_status("OK"))
        for code, text, ids in initial_errors:
            await writer.send(wire.stream_error(code, text, ids, "OK"))
        while True:
            conn.wake.clear()
            cmd = conn.command
            if cmd is not None:
                conn.command = None
                if cmd[0] == "halfopen":
                    conn.halfopen = True
                elif cmd[0] == "drop":
                    how = cmd[1]
                    if how == "closed":
                        await writer.send(wire.stream_status("Closed"), final=True)
                        await resp.write_eof()
                    elif how == "eof":
                        await writer.flush()
                        await resp.write_eof()
                    else:
                        tr = ctx.request.transport
                        if tr is not None:
                            tr.abort()
                    sim.counters.inc("streams_dropped", how)
                    return
            while conn.outbox:
                code, text, ids = conn.outbox.pop(0)
                closing = not conn.subs and not conn.outbox
                await writer.send(wire.stream_error(code, text, ids, "Closed" if closing else "OK"), final=closing)
                if closing:
                    if not conn.halfopen:
                        await resp.write_eof()
                        sim.counters.inc("streams_closed", "no_subscriptions")
                        return
            await _deliver(n, writer, conn)
            now = loop.time()
            if not conn.subs and not conn.halfopen:
                await writer.send(wire.stream_status("Closed"), final=True)
                await resp.write_eof()
                sim.counters.inc("streams_closed", "no_subscriptions")
                return
            if conn.halfopen:
                # Nothing more is written; the TCP connection stays open until the client
                # gives up or a drop fault ends it. (aiohttp does not cancel a handler whose
                # client went away, and a silent stream never fails a write: poll.)
                tr = ctx.request.transport
                if tr is None or tr.is_closing():
                    sim.counters.inc("streams_closed", "client_gone")
                    return
                try:
                    await asyncio.wait_for(conn.wake.wait(), 0.25)
                except asyncio.TimeoutError:
                    pass
                continue
            if now >= deadline:
                await writer.send(wire.stream_status("Closed"), final=True)
                await resp.write_eof()
                sim.counters.inc("streams_closed", "timeout")
                return
            if now >= next_hb:
                await writer.send(wire.stream_status("OK"))
                sim.counters.inc("heartbeats", "")
                while next_hb <= now:
                    next_hb += sim.clock.real(hb)
            # IIS notices at once when a client closes its connection; aiohttp tells a
            # handler only when a write fails, so look at the transport at least every second.
            tr = ctx.request.transport
            if tr is None or tr.is_closing():
                sim.counters.inc("streams_closed", "client_gone")
                return
            wait = min(next_hb, deadline, loop.time() + 1.0) - loop.time()
            if wait > 0 and not conn.wake.is_set():
                try:
                    await asyncio.wait_for(conn.wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
    except (ConnectionResetError, ConnectionError):
        sim.counters.inc("streams_closed", "client_gone")
        return


# -- control API ---------------------------------------------------------------------------


def control_routes(sim):
    """The /notify routes of the control API, for main to add."""

    def st():
        return sim.notify

    async def post_emit(request):
        """{"mailbox": smtp, "events": [{type, item_id?, parent_folder_id?, ...}]}"""
        d = await read_json(request)
        mb = sim.mailbox(str(d.get("mailbox", "")))
        if mb is None:
            raise not_found("no mailbox %r" % d.get("mailbox"))
        evs = d.get("events")
        if not isinstance(evs, list) or not evs:
            raise bad("events must be a non-empty list")
        try:
            k = emit(sim, mb, evs)
        except ValueError as exc:
            raise bad(str(exc))
        j = st().journals.get(mb.smtp)
        return web.json_response({"emitted": k, "seq": j.seq if j else 0})

    async def get_subs(request):
        q = request.query
        out = []
        limit = int(q.get("limit", "1000"))
        for s in st().subs.values():
            if q.get("mailbox") and s.mailbox != q["mailbox"].lower():
                continue
            if q.get("owner") and s.owner != q["owner"].lower():
                continue
            if q.get("kind") and s.kind != q["kind"]:
                continue
            out.append(s.describe(sim))
            if len(out) >= limit:
                break
        return web.json_response({"count": len(st().subs), "subscriptions": out})

    async def get_sub(request):
        s = st().subs.get(request.match_info["id"])
        if s is None:
            raise not_found("no subscription %s" % request.match_info["id"])
        return web.json_response(s.describe(sim))

    async def get_streams(request):
        return web.json_response([c.describe(sim) for c in st().conns.values()])

    async def get_config(request):
        return web.json_response(st().cfg.as_dict())

    async def post_config(request):
        d = await read_json(request)
        try:
            st().cfg.update(d)
        except ValueError as exc:
            raise bad(str(exc))
        return web.json_response(st().cfg.as_dict())

    async def post_sweep(request):
        return web.json_response({"expired": st().sweep()})

    return [
        web.post("/notify/emit", post_emit),
        web.get("/notify/subscriptions", get_subs),
        web.get("/notify/subscriptions/{id:.+}", get_sub),  # ids are base64: may hold "/"
        web.get("/notify/streams", get_streams),
        web.get("/notify/config", get_config),
        web.post("/notify/config", post_config),
        web.post("/notify/sweep", post_sweep),
    ]
