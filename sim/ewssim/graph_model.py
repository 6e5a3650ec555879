"""The calendar as Microsoft Graph shows it: the shared calendar model's items, occurrences
and exceptions as Graph event resources, users, calendarView paging, and the sync states
of calendarView/delta.

Mapping from the model (Exchange's fields) to Graph's event (checked against the CSDL by
tests/graphsim/test_csdl.py):

| model | Graph |
|---|---|
| LegacyFreeBusyStatus Free/Tentative/Busy/OOF/WorkingElsewhere/NoData | showAs free/tentative/busy/oof/workingElsewhere/unknown |
| Sensitivity Normal/Personal/Private/Confidential | sensitivity normal/personal/private/confidential |
| CalendarItemType Single/Occurrence/Exception/RecurringMaster | type singleInstance/occurrence/exception/seriesMaster |
| IsAllDayEvent, IsCancelled | isAllDay, isCancelled |
| MyResponseType | responseStatus.response |
| UID (GlobalObjectId) | iCalUId (per instance for occurrences, as Exchange derives it) |
"""

import collections
import hashlib
import hmac
import secrets
import struct
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import calendar as calmod
from . import graph_util as gu
from .graph_util import GraphError

SHOW_AS = {"Free": "free", "Tentative": "tentative", "Busy": "busy", "OOF": "oof",
           "WorkingElsewhere": "workingElsewhere", "NoData": "unknown"}
SENSITIVITY = {"Normal": "normal", "Personal": "personal", "Private": "private", "Confidential": "confidential"}
EVENT_TYPE = {"Single": "singleInstance", "Occurrence": "occurrence", "Exception": "exception",
              "RecurringMaster": "seriesMaster"}
RESPONSE = {"Unknown": "none", "Organizer": "organizer", "Tentative": "tentativelyAccepted", "Accept": "accepted",
            "Decline": "declined", "NoResponseReceived": "notResponded"}
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

# Properties of event (and of outlookItem and entity, its base types) that $select may
# name; those the simulator does not model are simply absent from the answer.
EVENT_PROPERTIES = {
    "id", "categories", "changeKey", "createdDateTime", "lastModifiedDateTime", "allowNewTimeProposals",
    "attendees", "body", "bodyPreview", "cancelledOccurrences", "end", "hasAttachments", "hideAttendees",
    "iCalUId", "importance", "isAllDay", "isCancelled", "isDraft", "isOnlineMeeting", "isOrganizer",
    "isReminderOn", "location", "locations", "onlineMeeting", "onlineMeetingProvider", "onlineMeetingUrl",
    "organizer", "originalEndTimeZone", "originalStart", "originalStartTimeZone", "recurrence",
    "reminderMinutesBeforeStart", "responseRequested", "responseStatus", "sensitivity", "seriesMasterId",
    "showAs", "start", "subject", "transactionId", "type", "webLink",
}
_LOWER = {p.lower(): p for p in EVENT_PROPERTIES}
ORDERABLE = {"start/datetime": lambda v: v.start, "end/datetime": lambda v: v.end,
             "subject": lambda v: v.subject or "", "lastmodifieddatetime": lambda v: v.modified,
             "createddatetime": lambda v: v.item.created}
MAX_PAGE = 1000

# -- users ------------------------------------------------------------------------------------


def user_id_of(smtp):
    """The Entra object id of a mailbox's user: a stable GUID."""
    return gu.guid_for("entra-user", smtp.lower())


def user_id(mb):
    return user_id_of(mb.smtp)


def user_json(mb):
    return {"businessPhones": [], "displayName": mb.display_name, "givenName": None, "jobTitle": None,
            "mail": mb.smtp, "mobilePhone": None, "officeLocation": None, "preferredLanguage": None,
            "surname": None, "userPrincipalName": mb.smtp, "id": user_id(mb)}


# -- time zones ---------------------------------------------------------------------------------


def resolve_zone(name):
    """(label, tzinfo) for Prefer: outlook.timezone (a Windows id as Outlook uses, or an
    IANA name), or None for a name we do not know (Graph then answers in UTC)."""
    if not name:
        return None
    if name.upper() == "UTC":
        return ("UTC", gu.UTC)
    if calmod.known_zone(name):
        return (name, calmod.zone(name))
    try:
        return (name, ZoneInfo(name))
    except (ZoneInfoNotFoundError, ValueError):
        return None


UTC_ZONE = ("UTC", gu.UTC)


def _dtz(dt, zone, floating_tz=None):
    """A dateTimeTimeZone in zone. An all-day event (floating_tz: its own zone) is not
    converted: Graph returns its midnights as they are in the event's zone, labelled with
    the zone asked for."""
    local = calmod.utc_to_local(dt, floating_tz) if floating_tz else dt.astimezone(zone[1])
    return {"dateTime": gu.graph_datetime(local), "timeZone": zone[0]}


# -- events ---------------------------------------------------------------------------------------


def ical_uid(view):
    """Exchange's GlobalObjectId carries the instance date (year, month, day) in bytes
    16..19: zero for the series, the original start date for an occurrence."""
    uid = view.item.uid
    if not view.is_instance or len(uid) < 40:
        return uid
    d = calmod.utc_to_local(view.orig, view.item.tz).date()
    return uid[:32] + struct.pack(">HBB", d.year, d.month, d.day).hex().upper() + uid[40:]


def _recurrence(it):
    r = it.rec
    start_date = calmod.utc_to_local(it.start, it.tz).date()
    pattern = {"type": r.pattern, "interval": r.interval, "month": 0, "dayOfMonth": 0,
               "firstDayOfWeek": "sunday", "index": "first"}
    if r.pattern == "weekly":
        pattern["daysOfWeek"] = [DAYS[d] for d in sorted(r.days)]
    rng = {"type": "noEnd", "startDate": start_date.isoformat(), "endDate": "0001-01-01",
           "recurrenceTimeZone": it.tz, "numberOfOccurrences": 0}
    if r.count:
        rng.update(type="numbered", numberOfOccurrences=r.count)
    elif r.until:
        rng.update(type="endDate", endDate=r.until.isoformat())
    return {"pattern": pattern, "range": rng}


def event_json(view, zone=UTC_ZONE):
    """The Graph event for a calendar.View (single, master, occurrence or exception)."""
    it = view.item
    ck = view.change_key
    name, address = it.organizer_mailbox()
    reminder = it.reminder
    doc = {
        "@odata.etag": 'W/"%s"' % ck,
        "id": gu.rest_id(view.id),
        "createdDateTime": gu.graph_instant(it.created),
        "lastModifiedDateTime": gu.graph_instant(view.modified),
        "changeKey": ck,
        "categories": list(it.categories),
        "originalStartTimeZone": it.tz,
        "originalEndTimeZone": it.tz,
        "iCalUId": ical_uid(view),
        "reminderMinutesBeforeStart": reminder if reminder is not None else 0,
        "isReminderOn": reminder is not None,
        "subject": view.subject,
        "isAllDay": it.all_day,
        "isCancelled": bool(view.cancelled),
        "isOrganizer": it.organizer is None,
        "responseRequested": True,
        "seriesMasterId": gu.rest_id(it.id) if view.is_instance else None,
        "showAs": SHOW_AS.get(view.status, "unknown"),
        "type": EVENT_TYPE[view.kind],
        "sensitivity": SENSITIVITY.get(view.sensitivity, "normal"),
        "responseStatus": {"response": RESPONSE.get(it.response, "none"), "time": "0001-01-01T00:00:00Z"},
        "start": _dtz(view.start, zone, it.tz if it.all_day else None),
        "end": _dtz(view.end, zone, it.tz if it.all_day else None),
        "location": {"displayName": view.location or "", "locationType": "default", "uniqueIdType": "unknown"},
        "organizer": {"emailAddress": {"name": name, "address": address}},
    }
    if view.kind == "Exception" or view.kind == "Occurrence":
        doc["originalStart"] = gu.graph_instant(view.orig).replace(".0000000Z", "Z")
    if view.kind == "RecurringMaster":
        doc["recurrence"] = _recurrence(it)
    else:
        doc["recurrence"] = None
    return doc


def removed_json(rest):
    return {"@odata.type": "#microsoft.graph.event", "id": rest, "@removed": {"reason": "deleted"}}


# -- OData query options ----------------------------------------------------------------------------


def select_props(call):
    """The set of properties $select names (always with id), or None for all."""
    raw = call.query.get("$select")
    if raw is None or not raw.strip():
        return None
    out = {"id"}
    for name in raw.split(","):
        n = name.strip()
        p = _LOWER.get(n.lower())
        if p is None:
            raise GraphError(400, "RequestBroker--ParseUri",
                             "Could not find a property named '%s' on type 'Microsoft.OutlookServices.Event'." % n)
        out.add(p)
    return out


def apply_select(doc, props):
    if props is None:
        return doc
    return {k: v for k, v in doc.items() if k in props or k.startswith("@")}


def order_views(views, call):
    raw = call.query.get("$orderby")
    if not raw:
        return views
    keys = []
    for part in raw.split(","):
        bits = part.strip().split()
        if not bits or len(bits) > 2 or (len(bits) == 2 and bits[1].lower() not in ("asc", "desc")):
            raise GraphError(400, "BadRequest", "Invalid $orderby expression '%s'." % raw)
        fn = ORDERABLE.get(bits[0].lower())
        if fn is None:
            raise GraphError(400, "ErrorInvalidProperty",
                             "The property '%s' does not support sorting in this simulator." % bits[0])
        keys.append((fn, len(bits) == 2 and bits[1].lower() == "desc"))
    out = list(views)
    for fn, desc in reversed(keys):
        out.sort(key=fn, reverse=desc)
    return out


def window(call):
    """(start, end) from startDateTime/endDateTime, as calendarView requires them."""
    s, e = call.param("startDateTime"), call.param("endDateTime")
    if not s or not e:
        raise GraphError(400, "ErrorInvalidParameter",
                         "This request requires a time window specified by the query string parameters "
                         "StartDateTime and EndDateTime.")
    try:
        lo = gu.parse_instant(s)
    except ValueError:
        raise GraphError(400, "ErrorInvalidParameter", "The value '%s' of parameter 'StartDateTime' is invalid." % s)
    try:
        hi = gu.parse_instant(e)
    except ValueError:
        raise GraphError(400, "ErrorInvalidParameter", "The value '%s' of parameter 'EndDateTime' is invalid." % e)
    if hi < lo:
        raise GraphError(400, "ErrorInvalidParameter", "The parameter 'EndDateTime' must be after 'StartDateTime'.")
    return lo, hi


def page_size(call, default, applied):
    """The page size: $top, else Prefer odata.maxpagesize (max 1000), else default."""
    top = call.query.get("$top")
    if top is not None:
        if not top.isdigit() or int(top) < 1:
            raise GraphError(400, "BadRequest", "Invalid $top value '%s'." % top)
        return min(int(top), MAX_PAGE)
    mps = gu.prefer(call.headers).get("odata.maxpagesize")
    if mps and mps.isdigit() and int(mps) > 0:
        n = min(int(mps), MAX_PAGE)
        applied.append("odata.maxpagesize=%d" % n)
        return n
    return default


def zone_of(call, applied):
    z = resolve_zone(gu.prefer(call.headers).get("outlook.timezone"))
    if z is None:
        return UTC_ZONE
    applied.append('outlook.timezone="%s"' % z[0])
    return z


def view_in_window(cal, lo, hi):
    """calendarView: occurrences, exceptions and singles that end after lo and start before hi."""
    return cal.occurrences(lo, hi, inclusive_start=False)


def stored_views(cal):
    """The events resource: the stored items (singles and series masters), by start."""
    items = sorted(cal.items.values(), key=lambda it: (it.start, it.created_seq))
    return [calmod.View(it, it.kind) for it in items]


def collection(call, path, views, query_keep, default_page, context):
    """A paged collection answer over views ($skip paging, as Graph's calendarView does)."""
    if call.query.get("$filter"):
        raise GraphError(400, "ErrorInvalidUrlQueryFilter", "The simulator does not evaluate $filter.")
    applied = []
    zone = zone_of(call, applied)
    props = select_props(call)
    views = order_views(views, call)
    size = page_size(call, default_page, applied)
    skip = call.query.get("$skip", "0")
    if not skip.isdigit():
        raise GraphError(400, "BadRequest", "Invalid $skip value '%s'." % skip)
    skip = int(skip)
    page = views[skip:skip + size]
    doc = {"@odata.context": context, "value": [apply_select(event_json(v, zone), props) for v in page]}
    if skip + size < len(views):
        q = [(k, call.query[k]) for k in query_keep if k in call.query]
        q = [kv for kv in q if kv[0] != "$skip"] + [("$skip", skip + size)]
        doc["@odata.nextLink"] = call.link(path, q)
    headers = {"Preference-Applied": ", ".join(applied)} if applied else {}
    return doc, headers


# -- delta sync states --------------------------------------------------------------------------------


class Chain:
    """The sync states of one calendarView/delta round trip chain: mailbox, window, and per
    generation the view's snapshot (id -> changeKey) and the round's frozen entries."""

    __slots__ = ("id", "smtp", "epoch", "lo", "hi", "gen", "snapshots", "rounds")

    def __init__(self, cid, smtp, epoch, lo, hi):
        self.id = cid
        self.smtp = smtp
        self.epoch = epoch
        self.lo = lo
        self.hi = hi
        self.gen = 0
        self.snapshots = collections.OrderedDict()  # gen -> {rest id: changeKey}
        self.rounds = {}  # gen -> [entries]


class DeltaStore:
    """calendarView/delta state tokens (sim.graph.deltas).

    Tokens are opaque base64url strings naming a chain, a generation, a page position and a
    kind (skip or delta), with a keyed checksum. A chain keeps its last `keep` generations;
    an older token, an unknown or altered one, or one of a mailbox that moved since, gets
    410 Gone with SyncStateNotFound, as Exchange Online answers a sync state it no longer
    has. The first page of a new round is empty with a nextLink (Exchange Online's habit)
    when `empty_first_page` is set."""

    MAGIC = b"GSd1"

    def __init__(self, sim, keep=4, max_chains=20000, empty_first_page=True, page_size=10):
        self.sim = sim
        self.keep = keep
        self.max_chains = max_chains
        self.empty_first_page = empty_first_page
        self.page_size = page_size
        self.chains = collections.OrderedDict()
        self.epochs = collections.Counter()  # smtp -> moves between premises so far
        self._key = secrets.token_bytes(16)

    # -- tokens -------------------------------------------------------------------------

    def _token(self, chain, gen, pos, kind):
        raw = self.MAGIC + bytes.fromhex(chain.id) + struct.pack(">IIc", gen, pos, kind)
        return gu.b64url(raw + hmac.new(self._key, raw, hashlib.sha256).digest()[:10])

    def _parse(self, text):
        try:
            raw = gu.b64url_decode(text)
        except ValueError:
            return None
        if len(raw) != 4 + 16 + 9 + 10 or not raw.startswith(self.MAGIC):
            return None
        body, mac = raw[:-10], raw[-10:]
        if not hmac.compare_digest(hmac.new(self._key, body, hashlib.sha256).digest()[:10], mac):
            return None
        gen, pos, kind = struct.unpack(">IIc", body[20:29])
        return body[4:20].hex(), gen, pos, kind

    def _gone(self, gen=0, chain=None):
        gens = list(chain.snapshots) if chain is not None else []
        hi = chain.gen if chain is not None else 0
        return GraphError(410, "SyncStateNotFound", "The sync state generation is not found; generation=%d;"
                          "[highest=%d]%s." % (gen, hi, "".join("[%d]" % g for g in reversed(gens))))

    # -- control ------------------------------------------------------------------------

    def expire(self, smtp=None):
        """Forget the sync states of one mailbox (or all): their tokens then get 410."""
        dead = [c for c in self.chains.values() if smtp is None or c.smtp == smtp]
        for c in dead:
            del self.chains[c.id]
        return len(dead)

    def mailbox_moved(self, smtp):
        self.epochs[smtp] += 1
        self.expire(smtp)

    def describe(self):
        return {"chains": len(self.chains), "generations_kept": self.keep, "empty_first_page": self.empty_first_page,
                "page_size": self.page_size}

    # -- the delta function -------------------------------------------------------------

    def request(self, call, mb, path):
        """Answer GET users/{id}/calendarView/delta: (doc, headers)."""
        for opt in ("$filter", "$orderby", "$search", "$expand"):
            if call.query.get(opt):
                raise GraphError(400, "ErrorInvalidUrlQuery",
                                 "The following parameters are not supported with change tracking over the "
                                 "'CalendarView' resource: '$orderby, $filter, $search, $expand'.")
        applied = ["odata.track-changes"]
        size = self.page_size
        mps = gu.prefer(call.headers).get("odata.maxpagesize")
        if mps and mps.isdigit() and int(mps) > 0:
            size = min(int(mps), MAX_PAGE)
            applied.append("odata.maxpagesize=%d" % size)
        zone = zone_of(call, applied)
        dtok, stok = call.query.get("$deltatoken"), call.query.get("$skiptoken")
        if dtok or stok:
            parsed = self._parse(dtok or stok)
            if parsed is None:
                raise self._gone()
            cid, gen, pos, kind = parsed
            chain = self.chains.get(cid)
            if chain is None or chain.smtp != mb.smtp or chain.epoch != self.epochs[mb.smtp]:
                raise self._gone(gen)
            self.chains.move_to_end(cid)
            if kind == b"d":
                if gen not in chain.snapshots:
                    raise self._gone(gen, chain)
                gen, pos = self._round(chain, mb, zone, chain.snapshots[gen]), 0
            elif gen not in chain.rounds:
                raise self._gone(gen, chain)
        else:
            lo, hi = window(call)
            chain = self._new_chain(mb, lo, hi)
            gen, pos = self._round(chain, mb, zone, {}), 0
            if self.empty_first_page:
                doc = {"@odata.context": call.link("$metadata#Collection(event)", []),
                       "@odata.nextLink": call.link(path, [("$skiptoken", self._token(chain, gen, 0, b"s"))]),
                       "value": []}
                return doc, {"Preference-Applied": ", ".join(applied)}
        entries = chain.rounds[gen]
        page = entries[pos:pos + size]
        doc = {"@odata.context": call.link("$metadata#Collection(event)", []), "value": page}
        if pos + size < len(entries):
            doc["@odata.nextLink"] = call.link(path, [("$skiptoken", self._token(chain, gen, pos + size, b"s"))])
        else:
            doc["@odata.deltaLink"] = call.link(path, [("$deltatoken", self._token(chain, gen, 0, b"d"))])
        return doc, {"Preference-Applied": ", ".join(applied)}

    def _new_chain(self, mb, lo, hi):
        while len(self.chains) >= self.max_chains:
            self.chains.popitem(last=False)
        chain = Chain(secrets.token_hex(16), mb.smtp, self.epochs[mb.smtp], lo, hi)
        self.chains[chain.id] = chain
        return chain

    def _round(self, chain, mb, zone, before):
        """A new generation: the entries that bring a client holding `before` up to now."""
        views = view_in_window(mb.calendar, chain.lo, chain.hi)
        now = {}
        entries = []
        for v in views:
            rid = gu.rest_id(v.id)
            ck = v.change_key
            now[rid] = ck
            if before.get(rid) != ck:
                entries.append(event_json(v, zone))
        for rid in before:
            if rid not in now:
                entries.append(removed_json(rid))
        chain.gen += 1
        chain.snapshots[chain.gen] = now
        chain.rounds[chain.gen] = entries
        while len(chain.snapshots) > self.keep:
            old, _ = chain.snapshots.popitem(last=False)
            chain.rounds.pop(old, None)
        return chain.gen
