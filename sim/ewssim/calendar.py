"""The calendar model of ews-sim: stored calendar items per mailbox, recurrence expansion,
ids and change keys shaped like Exchange's, a change log for SyncFolderItems, and the
mutations (create / update / delete / occurrence edits) that report notification events.

What is modelled, and which Exchange behaviour each piece imitates:

* A mailbox's Calendar folder holds *stored* items only: single appointments and
  recurring masters. Occurrences and exceptions are not items of their own; as in the
  Exchange store they live inside the master (exceptions as attachments), and the
  CalendarView expansion (`Calendar.occurrences`) produces them on demand.
* Ids: an EWS ItemId is the base64 of a small header (id type 0x03 = mailbox-guid based,
  the mailbox GUID as ASCII) plus the 70-byte MAPI entry id (provider uid, folder and
  message global counters), so ids start "AAMkAD". A move to another folder makes a new
  entry id, hence a NEW ItemId (Exchange: "ItemIds are not stable across folder moves").
  Occurrence ids carry the master's entry id plus the original start, so they are distinct
  per instance and stable. ChangeKeys are the base64 of a 30-byte PCL-style value
  (0x0F type, 0x16 length, replica GUID, change number) starting "DwAAABYAAAA" and change
  on every modification.
* The change log (one entry per change of a stored item) is what SyncFolderItems reads;
  the folder keeps PR_LOCAL_COMMIT_TIME_MAX (time of the last change) and
  PR_DELETED_COUNT_TOTAL (items that left the folder).
* Every generated calendar comes from random.Random seeded with (sim.seed, mailbox.index)
  and is anchored at the start of the sim day (UTC) on which it is first touched, so the
  same seed gives the same calendar; 50,000 mailboxes cost nothing until touched.

folder_id() is shared by other modules and must keep its exact form.

The calendar imports nothing of ews-sim: it publishes every change through the hook list
sim.calendar_hooks (state.Sim), on which notify registers its event queue feeder.
"""

import base64
import binascii
import gzip
import hashlib
import logging
import random
import struct
from datetime import date, datetime, time, timedelta, timezone

from zoneinfo import ZoneInfo

log = logging.getLogger("ews-sim")

UTC = timezone.utc


def folder_id(mailbox, name="calendar"):
    """The stable FolderId (Id, ChangeKey) of a distinguished folder of mailbox, shaped like
    Exchange's (base64 of an entry id that starts AQMkAD...)."""
    raw = b"\x01\x03\x24\x00" + hashlib.sha256(("%s/%s" % (mailbox.guid, name)).encode()).digest()[:40]
    return base64.b64encode(raw).decode(), "AQAAAA=="


# ---------------------------------------------------------------------------------------
# Time zones
# ---------------------------------------------------------------------------------------

# Windows time-zone id -> (IANA zone, display name as Exchange 2019 writes it in
# TimeZoneDefinition/@Name and t:TimeZone). The ids are what TimeZoneContext and
# StartTimeZone carry; zoneinfo does the arithmetic.
ZONES = {
    "UTC": ("UTC", "(UTC) Coordinated Universal Time"),
    "GMT Standard Time": ("Europe/London", "(UTC+00:00) Dublin, Edinburgh, Lisbon, London"),
    "Greenwich Standard Time": ("Atlantic/Reykjavik", "(UTC+00:00) Monrovia, Reykjavik"),
    "W. Europe Standard Time": ("Europe/Berlin", "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"),
    "Central Europe Standard Time": ("Europe/Budapest",
                                     "(UTC+01:00) Belgrade, Bratislava, Budapest, Ljubljana, Prague"),
    "Romance Standard Time": ("Europe/Paris", "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris"),
    "Central European Standard Time": ("Europe/Warsaw", "(UTC+01:00) Sarajevo, Skopje, Warsaw, Zagreb"),
    "GTB Standard Time": ("Europe/Bucharest", "(UTC+02:00) Athens, Bucharest"),
    "FLE Standard Time": ("Europe/Kiev", "(UTC+02:00) Helsinki, Kyiv, Riga, Sofia, Tallinn, Vilnius"),
    "E. Europe Standard Time": ("Europe/Chisinau", "(UTC+02:00) Chisinau"),
    "Israel Standard Time": ("Asia/Jerusalem", "(UTC+02:00) Jerusalem"),
    "South Africa Standard Time": ("Africa/Johannesburg", "(UTC+02:00) Harare, Pretoria"),
    "Russian Standard Time": ("Europe/Moscow", "(UTC+03:00) Moscow, St. Petersburg"),
    "Turkey Standard Time": ("Europe/Istanbul", "(UTC+03:00) Istanbul"),
    "Arabian Standard Time": ("Asia/Dubai", "(UTC+04:00) Abu Dhabi, Muscat"),
    "India Standard Time": ("Asia/Kolkata", "(UTC+05:30) Chennai, Kolkata, Mumbai, New Delhi"),
    "SE Asia Standard Time": ("Asia/Bangkok", "(UTC+07:00) Bangkok, Hanoi, Jakarta"),
    "China Standard Time": ("Asia/Shanghai", "(UTC+08:00) Beijing, Chongqing, Hong Kong, Urumqi"),
    "Singapore Standard Time": ("Asia/Singapore", "(UTC+08:00) Kuala Lumpur, Singapore"),
    "Tokyo Standard Time": ("Asia/Tokyo", "(UTC+09:00) Osaka, Sapporo, Tokyo"),
    "Korea Standard Time": ("Asia/Seoul", "(UTC+09:00) Seoul"),
    "AUS Eastern Standard Time": ("Australia/Sydney", "(UTC+10:00) Canberra, Melbourne, Sydney"),
    "New Zealand Standard Time": ("Pacific/Auckland", "(UTC+12:00) Auckland, Wellington"),
    "Atlantic Standard Time": ("America/Halifax", "(UTC-04:00) Atlantic Time (Canada)"),
    "Eastern Standard Time": ("America/New_York", "(UTC-05:00) Eastern Time (US & Canada)"),
    "Central Standard Time": ("America/Chicago", "(UTC-06:00) Central Time (US & Canada)"),
    "Mountain Standard Time": ("America/Denver", "(UTC-07:00) Mountain Time (US & Canada)"),
    "US Mountain Standard Time": ("America/Phoenix", "(UTC-07:00) Arizona"),
    "Pacific Standard Time": ("America/Los_Angeles", "(UTC-08:00) Pacific Time (US & Canada)"),
    "Alaskan Standard Time": ("America/Anchorage", "(UTC-09:00) Alaska"),
    "Hawaiian Standard Time": ("Pacific/Honolulu", "(UTC-10:00) Hawaii"),
    "E. South America Standard Time": ("America/Sao_Paulo", "(UTC-03:00) Brasilia"),
}

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# The full Windows -> IANA table (CLDR windowsZones) from Debian's python3-tzlocal when it
# is installed, so every zone id Exchange accepts in TimeZoneContext works; ZONES above
# adds the display names for the common ones.
try:
    from tzlocal.windows_tz import win_tz as _WIN_TZ
except ImportError:  # pragma: no cover - tzlocal comes with python3-exchangelib
    _WIN_TZ = {}

_zone_cache = {}


def known_zone(tz_id):
    return tz_id in ZONES or tz_id in _WIN_TZ


def zone(tz_id):
    """zoneinfo for a Windows time-zone id; KeyError for ids we do not know."""
    z = _zone_cache.get(tz_id)
    if z is None:
        iana = ZONES[tz_id][0] if tz_id in ZONES else _WIN_TZ[tz_id]
        z = _zone_cache[tz_id] = ZoneInfo(iana)
    return z


def zone_name(tz_id):
    """The display name Exchange uses; for zones without one in ZONES, "(UTC+hh:mm) <id>"."""
    if tz_id in ZONES:
        return ZONES[tz_id][1]
    off = zone(tz_id).utcoffset(datetime(2001, 1, 15))
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    return "(UTC%s%02d:%02d) %s" % (sign, abs(mins) // 60, abs(mins) % 60, tz_id)


def local_to_utc(naive, tz_id):
    return naive.replace(tzinfo=zone(tz_id)).astimezone(UTC)


def utc_to_local(aware, tz_id):
    return aware.astimezone(zone(tz_id)).replace(tzinfo=None)


_rules_cache = {}


def zone_rules(tz_id, year=2025):
    """The standard/daylight rules of a zone as Windows describes them, derived from
    zoneinfo by scanning one year: {"std": offset minutes, "dst": offset minutes or None,
    "to_dst"/"to_std": (month, weekday name, occurrence (-1 = last), "hh:mm:ss" wall-clock
    time in the offset before the change)}."""
    key = (tz_id, year)
    r = _rules_cache.get(key)
    if r is not None:
        return r
    z = zone(tz_id)
    t = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    prev = t.astimezone(z).utcoffset()
    changes = []
    while t < end:
        t += timedelta(minutes=30)
        off = t.astimezone(z).utcoffset()
        if off != prev:
            changes.append((t, prev, off))
            prev = off
    offsets = [int(o.total_seconds() // 60) for _t, a, b in changes for o in (a, b)]
    if len(changes) < 2 or len(set(offsets)) < 2:
        mins = int(prev.total_seconds() // 60)
        r = {"std": mins, "dst": None, "to_dst": None, "to_std": None}
    else:
        std, dst = min(offsets), max(offsets)
        r = {"std": std, "dst": dst}
        for when, before, after in changes[:2]:
            wall = when + before
            d = wall.day
            last = (wall + timedelta(days=7)).month != wall.month
            rule = (wall.month, WEEKDAYS[wall.weekday()], -1 if last else (d - 1) // 7 + 1,
                    wall.strftime("%H:%M:%S"))
            r["to_dst" if int(after.total_seconds() // 60) == dst else "to_std"] = rule
    _rules_cache[key] = r
    return r


def legacy_rules(tz_id):
    """(Bias, StandardTime, DaylightTime) in the legacy form GetUserAvailability uses
    (minutes, UTC = local + bias; each rule (bias, time, DayOrder (5 = last), month,
    weekday)). Zones without DST repeat a January rule in both, as Exchange does."""
    r = zone_rules(tz_id)
    if r["dst"] is None:
        no = (0, "00:00:00", 1, 1, "Sunday")
        return (-r["std"], no, no)

    def rule(x, bias):
        month, dow, occ, t = x
        return (bias, t, 5 if occ == -1 else occ, month, dow)

    return (-r["std"], rule(r["to_std"], 0), rule(r["to_dst"], -(r["dst"] - r["std"])))


class LegacyZone:
    """A bias-based time zone as GetUserAvailability's t:TimeZone describes it (minutes:
    UTC = local + Bias + (StandardTime|DaylightTime)/Bias; transitions on the DayOrder-th
    DayOfWeek of Month at Time, DayOrder 5 meaning the last)."""

    def __init__(self, bias, std, dst):
        self.bias = bias
        self.std = std  # (bias, "hh:mm:ss", dayorder, month, dayofweek name)
        self.dst = dst

    @classmethod
    def for_windows_id(cls, tz_id):
        b, s, d = legacy_rules(tz_id)
        return cls(b, s, d)

    @staticmethod
    def _transition(year, rule):
        _b, t, order, month, dow = rule
        hh, mm, ss = (int(x) for x in (t.split(":") + ["0", "0"])[:3])
        wd = WEEKDAYS.index(dow) if dow in WEEKDAYS else 6
        if order >= 5:  # last such weekday of the month
            nxt = date(year + (month == 12), month % 12 + 1, 1)
            d = nxt - timedelta(days=1)
            d -= timedelta(days=(d.weekday() - wd) % 7)
        else:
            d = date(year, month, 1)
            d += timedelta(days=(wd - d.weekday()) % 7 + 7 * (order - 1))
        return datetime.combine(d, time(hh, mm, ss))

    def _has_dst(self):
        return not (self.std[3] == self.dst[3] and self.std[2] == self.dst[2]) and 1 <= self.std[3] <= 12 \
            and 1 <= self.dst[3] <= 12 and self.std[0] != self.dst[0]

    def in_dst(self, local):
        if not self._has_dst():
            return False
        ds = self._transition(local.year, self.dst)
        ss = self._transition(local.year, self.std)
        if ds < ss:  # northern hemisphere
            return ds <= local < ss
        return not (ss <= local < ds)

    def to_utc(self, local):
        extra = self.dst[0] if self.in_dst(local) else self.std[0]
        return (local + timedelta(minutes=self.bias + extra)).replace(tzinfo=UTC)

    def from_utc(self, aware):
        u = aware.astimezone(UTC).replace(tzinfo=None)
        cand = u - timedelta(minutes=self.bias + self.dst[0])
        if self.in_dst(cand):
            return cand
        return u - timedelta(minutes=self.bias + self.std[0])


class WindowsZone:
    """Uniform 'request zone' interface over a Windows id (TimeZoneContext)."""

    def __init__(self, tz_id):
        zone(tz_id)
        self.tz_id = tz_id

    def to_utc(self, local):
        return local_to_utc(local, self.tz_id)

    def from_utc(self, aware):
        return utc_to_local(aware, self.tz_id)


def parse_dt(text, default_zone=None):
    """xs:dateTime -> aware UTC datetime. A value without offset is read in default_zone
    (an object with to_utc(naive)), else as UTC -- Exchange reads offset-less request times
    in the TimeZoneContext zone, else UTC. Raises ValueError."""
    s = text.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    # Python 3.9/3.10 fromisoformat: at most 6 fractional digits and no lone date.
    if "." in s:
        head, frac = s.split(".", 1)
        digits = ""
        rest = ""
        for i, ch in enumerate(frac):
            if ch.isdigit():
                digits += ch
            else:
                rest = frac[i:]
                break
        s = head + ("." + (digits + "000000")[:6] if digits else "") + rest
    if "T" not in s:
        s += "T00:00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        if default_zone is not None:
            return default_zone.to_utc(dt)
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def iso(dt):
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def xs_duration(td):
    """timedelta -> xs:duration as .NET's XmlConvert writes a TimeSpan (PT30M, P1D, P1DT2H)."""
    secs = int(td.total_seconds())
    neg = secs < 0
    secs = abs(secs)
    d, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    out = "-P" if neg else "P"
    if d:
        out += "%dD" % d
    if h or m or s or not d:
        out += "T"
        if h:
            out += "%dH" % h
        if m:
            out += "%dM" % m
        if s or not (h or m):
            out += "%dS" % s
    return out


def _filetime(dt):
    return int((dt - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds() * 10_000_000)


def _from_filetime(ft):
    return datetime(1601, 1, 1, tzinfo=UTC) + timedelta(microseconds=ft // 10)


# ---------------------------------------------------------------------------------------
# Enumerations
# ---------------------------------------------------------------------------------------

STATUSES = ("Free", "Tentative", "Busy", "OOF", "WorkingElsewhere", "NoData")
SENSITIVITIES = ("Normal", "Personal", "Private", "Confidential")
RESPONSES = ("Unknown", "Organizer", "Tentative", "Accept", "Decline", "NoResponseReceived")
FB_ACCESS = ("None", "AvailabilityOnly", "LimitedDetails", "Reviewer")

# Outlook's GlobalObjectId prefix: iCalendar UIDs of Exchange-created items are hex strings
# starting with this.
UID_PREFIX = "040000008200E00074C5B7101A82E00800000000"
EXCEPTION_CLASS = "IPM.OLE.CLASS.{00061055-0000-0000-C000-000000000046}"


# ---------------------------------------------------------------------------------------
# Items
# ---------------------------------------------------------------------------------------


class Recurrence:
    """A daily or weekly pattern (Exchange's DailyRecurrence / WeeklyRecurrence) with a
    NumberedRecurrence (count), EndDateRecurrence (until, a local date, inclusive) or
    NoEndRecurrence range. days: weekday numbers 0=Monday..6=Sunday (weekly only)."""

    __slots__ = ("pattern", "interval", "days", "count", "until", "first_day")

    def __init__(self, pattern, interval=1, days=(), count=None, until=None):
        self.pattern = pattern
        self.interval = interval
        self.days = tuple(sorted(set(days)))
        self.count = count
        self.until = until
        self.first_day = 6  # FirstDayOfWeek Sunday, Exchange's default

    def describe(self):
        d = {"pattern": self.pattern, "interval": self.interval}
        if self.pattern == "weekly":
            d["days"] = [WEEKDAYS[w] for w in self.days]
        if self.count:
            d["count"] = self.count
        if self.until:
            d["until"] = self.until.isoformat()
        return d


class Exc:
    """A modified occurrence (exception). None fields inherit the master's value."""

    __slots__ = ("orig", "index", "start", "end", "subject", "status", "location", "sensitivity", "cancelled",
                 "cn", "modified")

    def __init__(self, orig, index, start, end):
        self.orig = orig
        self.index = index
        self.start = start
        self.end = end
        self.subject = None
        self.status = None
        self.location = None
        self.sensitivity = None
        self.cancelled = None
        self.cn = 0
        self.modified = None


class Item:
    """A stored calendar item: a single appointment or a recurring master."""

    __slots__ = ("cal", "gc", "id", "folder", "cn", "subject", "start", "end", "tz", "all_day", "status",
                 "sensitivity", "categories", "location", "organizer", "is_meeting", "cancelled", "uid",
                 "created", "modified", "rec", "exceptions", "deleted", "response", "reminder", "seq",
                 "created_seq", "body")

    def __init__(self, cal):
        self.cal = cal
        self.gc = 0
        self.id = None
        self.folder = "calendar"
        self.cn = 0
        self.subject = ""
        self.start = self.end = None
        self.tz = "UTC"
        self.all_day = False
        self.status = "Busy"
        self.sensitivity = "Normal"
        self.categories = ()
        self.location = None
        self.organizer = None  # (name, smtp) of another organizer; None = the mailbox owner
        self.is_meeting = False
        self.cancelled = False
        self.uid = ""
        self.created = self.modified = None
        self.rec = None
        self.exceptions = {}  # original start (UTC) -> Exc
        self.deleted = {}  # original start (UTC) -> instance index
        self.response = "Organizer"
        self.reminder = 15  # minutes; None = no reminder
        self.seq = 0  # AppointmentSequenceNumber
        self.created_seq = 0  # change-log sequence number of the creation
        self.body = None

    # -- identity -------------------------------------------------------------------------

    @property
    def change_key(self):
        return self.cal.change_key(self.cn)

    @property
    def kind(self):
        return "RecurringMaster" if self.rec is not None else "Single"

    def organizer_mailbox(self):
        if self.organizer:
            return self.organizer
        mb = self.cal.mailbox
        return (mb.display_name, mb.smtp)

    # -- recurrence -------------------------------------------------------------------------

    def _local_start(self):
        return utc_to_local(self.start, self.tz)

    def series(self, limit=20000):
        """(index, original start UTC, original end UTC) of every instance of the pattern
        in order (1-based index, deleted and modified instances included), bounded by the
        range's count/until, and by `limit` instances for NoEnd series."""
        rec = self.rec
        loc = self._local_start()
        d0, t0 = loc.date(), loc.time()
        if self.all_day:
            ndays = max(1, (utc_to_local(self.end, self.tz).date() - d0).days)
        dur = self.end - self.start
        idx = 0

        def times(d):
            s = local_to_utc(datetime.combine(d, t0), self.tz)
            if self.all_day:
                e = local_to_utc(datetime.combine(d + timedelta(days=ndays), t0), self.tz)
            else:
                e = s + dur
            return s, e

        if rec.pattern == "daily":
            d = d0
            while idx < limit:
                if rec.until and d > rec.until:
                    return
                idx += 1
                s, e = times(d)
                yield idx, s, e
                if rec.count and idx >= rec.count:
                    return
                d += timedelta(days=rec.interval)
        else:
            ws = d0 - timedelta(days=(d0.weekday() - rec.first_day) % 7)
            order = sorted(rec.days, key=lambda w: (w - rec.first_day) % 7)
            while idx < limit:
                for w in order:
                    d = ws + timedelta(days=(w - rec.first_day) % 7)
                    if d < d0:
                        continue
                    if rec.until and d > rec.until:
                        return
                    idx += 1
                    s, e = times(d)
                    yield idx, s, e
                    if rec.count and idx >= rec.count:
                        return
                ws += timedelta(weeks=rec.interval)

    def instance(self, index):
        """(original start, original end) of the index-th instance, or None if out of range."""
        if index < 1:
            return None
        for i, s, e in self.series(limit=index):
            if i == index:
                return s, e
        return None

    def index_of(self, orig):
        for i, s, _e in self.series():
            if s == orig:
                return i
            if s > orig:
                return None
        return None

    # -- JSON (control API) -------------------------------------------------------------------

    def describe(self):
        org = self.organizer_mailbox()
        d = {
            "id": self.id,
            "change_key": self.change_key,
            "folder": self.folder,
            "type": self.kind,
            "subject": self.subject,
            "start": iso(self.start),
            "end": iso(self.end),
            "time_zone": self.tz,
            "all_day": self.all_day,
            "status": self.status,
            "sensitivity": self.sensitivity,
            "categories": list(self.categories),
            "location": self.location,
            "organizer": {"name": org[0], "email": org[1]},
            "is_meeting": self.is_meeting,
            "cancelled": self.cancelled,
            "my_response": self.response,
            "uid": self.uid,
            "created": iso(self.created),
            "modified": iso(self.modified),
        }
        if self.rec is not None:
            d["recurrence"] = self.rec.describe()
            d["exceptions"] = [View(self, "Exception", ex.index, ex.orig, ex).describe()
                               for ex in sorted(self.exceptions.values(), key=lambda x: x.orig)]
            d["deleted_occurrences"] = [{"index": i, "original_start": iso(o)}
                                        for o, i in sorted(self.deleted.items())]
        return d


class View:
    """One entry of a calendar as a client sees it: a single, a recurring master, an
    occurrence or an exception (the last two computed from the master)."""

    __slots__ = ("item", "kind", "index", "orig", "exc", "start", "end")

    def __init__(self, item, kind, index=None, orig=None, exc=None, start=None, end=None):
        self.item = item
        self.kind = kind  # Single | RecurringMaster | Occurrence | Exception
        self.index = index
        self.orig = orig
        self.exc = exc
        if exc is not None:
            self.start, self.end = exc.start, exc.end
        elif start is not None:
            self.start, self.end = start, end
        else:
            self.start, self.end = item.start, item.end

    @property
    def is_instance(self):
        return self.kind in ("Occurrence", "Exception")

    @property
    def id(self):
        if self.is_instance:
            return self.item.cal.occurrence_id(self.item, self.orig)
        return self.item.id

    @property
    def change_key(self):
        if self.exc is not None:
            return self.item.cal.change_key(self.exc.cn)
        return self.item.change_key

    def _get(self, name):
        if self.exc is not None:
            v = getattr(self.exc, name)
            if v is not None:
                return v
        return getattr(self.item, name)

    subject = property(lambda self: self._get("subject"))
    status = property(lambda self: self._get("status"))
    location = property(lambda self: self._get("location"))
    sensitivity = property(lambda self: self._get("sensitivity"))
    cancelled = property(lambda self: self._get("cancelled"))

    @property
    def modified(self):
        if self.exc is not None and self.exc.modified is not None:
            return self.exc.modified
        return self.item.modified

    def describe(self):
        d = {
            "id": self.id,
            "change_key": self.change_key,
            "type": self.kind,
            "subject": self.subject,
            "start": iso(self.start),
            "end": iso(self.end),
            "all_day": self.item.all_day,
            "time_zone": self.item.tz,
            "status": self.status,
            "sensitivity": self.sensitivity,
            "location": self.location,
            "cancelled": self.cancelled,
            "uid": self.item.uid,
        }
        if self.is_instance:
            d["master_id"] = self.item.id
            d["instance_index"] = self.index
            d["original_start"] = iso(self.orig)
        return d


# ---------------------------------------------------------------------------------------
# Generation data
# ---------------------------------------------------------------------------------------

SUBJECTS = [
    "Team standup", "1:1 with manager", "Project sync", "Customer call: Contoso", "Budget review Q3",
    "Lunch", "Dentist", "Besprechung: Überprüfung", "Réunion d'équipe", "会议", "週次ミーティング",
    "Planning 🚀", "Café ☕ chat", "Sprint-Retrospektive", "Interview – candidate", "Focus time",
    "Training: EWS & C", "Architecture review", "Quarterly business review", "Doctor appointment",
    "Flight to Zürich ✈", "Общее собрание", "Offsite prep", "Reunión de ventas", "Code review",
    "<Design> & \"quotes\" 'review'", "Release go/no-go", "Security briefing",
]
ALLDAY_SUBJECTS = ["Vacation 🌴", "Conference day", "Urlaub", "Public holiday", "Working from home",
                   "Training (all day)", "出張", "Out of office"]
LOCATIONS = [None, None, "Room 1.01", "Konferenzraum Süd", "Microsoft Teams Meeting", "Building 4 / Room 210",
             "会议室 A", "Café", "Zürich HQ"]
CATEGORIES = ["Red category", "Blue category", "Green category", "Yellow category", "Kunde", "Privat"]
ORGANIZERS = [("Alex Wilber", "alexw@contoso.example"), ("Jürgen Groß", "juergen.gross@fabrikam.example"),
              ("李娜", "li.na@contoso.example"), ("Megan Bowen", "meganb@contoso.example")]
MAILBOX_ZONES = [("W. Europe Standard Time", 40), ("Pacific Standard Time", 20), ("UTC", 15),
                 ("Eastern Standard Time", 10), ("GMT Standard Time", 5), ("Tokyo Standard Time", 5),
                 ("India Standard Time", 5)]


def _weighted(rng, pairs):
    total = sum(w for _v, w in pairs)
    x = rng.uniform(0, total)
    for v, w in pairs:
        x -= w
        if x <= 0:
            return v
    return pairs[-1][0]


# ---------------------------------------------------------------------------------------
# The calendar
# ---------------------------------------------------------------------------------------


class Calendar:
    """The Calendar folder of one mailbox (plus the calendar items it moved to Deleted Items)."""

    __slots__ = ("mailbox", "items", "trash", "log", "counter", "replica", "provider", "idguid", "commit_time",
                 "deleted_count", "tz", "fb_access", "generation", "__weakref__")

    def __init__(self, mailbox, tz="UTC"):
        self.mailbox = mailbox
        self.items = {}  # ItemId -> Item, in the Calendar folder
        self.trash = {}  # ItemId -> Item, moved to Deleted Items
        # The change log of the Calendar folder, read by SyncFolderItems: entries
        # (item id, op 'c'|'m'|'d', change-log seq at which that item was created).
        self.log = []
        guid = mailbox.guid
        h = hashlib.md5(("replica:" + guid).encode()).digest()
        # A replica GUID whose first byte is 0 and second < 0x40 makes every ChangeKey
        # start "DwAAABYAAAA", as the brief's examples from real servers do.
        self.replica = b"\x00" + bytes([h[1] & 0x3F]) + h[2:]
        self.provider = hashlib.md5(("provider:" + guid).encode()).digest()
        # The mailbox GUID as it appears (ASCII, dashed) in every EWS id; first character
        # forced to a digit so ids begin "AAMkAD" like the examples we imitate.
        hx = hashlib.md5(("mbx-guid:" + guid).encode()).hexdigest()
        hx = str(int(hx[0], 16) % 10) + hx[1:]
        self.idguid = ("%s-%s-%s-%s-%s" % (hx[:8], hx[8:12], hx[12:16], hx[16:20], hx[20:32])).encode()
        self.counter = 0x100000
        self.commit_time = None
        self.deleted_count = 0
        self.tz = tz
        self.fb_access = "AvailabilityOnly"  # Exchange 2013+ default calendar permission
        self.generation = 0

    @property
    def sim(self):
        return self.mailbox.sim

    # -- ids and change keys -------------------------------------------------------------------

    def _next(self):
        self.counter += 1
        return self.counter

    # Folder global counters as in the wire fixture (Calendar ...010D, Deleted Items ...010A).
    FOLDER_GC = {"calendar": 0x10D, "deleteditems": 0x10A}

    def entry_id(self, gc, folder):
        return (b"\x00\x00\x00\x00" + self.provider + b"\x07\x00" + self.replica
                + self.FOLDER_GC.get(folder, 0x10D).to_bytes(6, "big") + b"\x00\x00" + self.replica
                + gc.to_bytes(6, "big") + b"\x00\x00")

    def _ews_id(self, entry, instruction=0, suffix=b""):
        raw = (b"\x00\x03" + struct.pack("<H", len(self.idguid)) + self.idguid + bytes([instruction])
               + struct.pack("<H", len(entry)) + entry + suffix)
        return base64.b64encode(raw).decode()

    def item_id(self, gc, folder):
        return self._ews_id(self.entry_id(gc, folder))

    def occurrence_id(self, master, orig):
        """Occurrence ids: id-processing instruction 1 (recurrence) + the master's entry id
        + the occurrence's original start as a FILETIME: distinct per instance, stable."""
        return self._ews_id(self.entry_id(master.gc, master.folder), 1, struct.pack("<Q", _filetime(orig)))

    def change_key(self, cn):
        return base64.b64encode(b"\x0f\x00\x00\x00\x16\x00\x00\x00" + self.replica + cn.to_bytes(6, "big")).decode()

    def parse_id(self, text):
        """Decode an EWS item id of this mailbox. Returns (kind, item, orig) where kind is
        'item' (orig None) or 'occurrence'; item is None for well-formed ids we do not hold.
        Raises ValueError for ids that are not EWS item ids at all (ErrorInvalidIdMalformed)."""
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not base64")
        if len(raw) < 8 or raw[0] != 0 or raw[1] not in (1, 2, 3, 4, 5, 6, 7):
            raise ValueError("bad header")
        glen = struct.unpack("<H", raw[2:4])[0]
        p = 4 + glen
        if len(raw) < p + 3:
            raise ValueError("truncated")
        guid = raw[4:p]
        instr = raw[p]
        elen = struct.unpack("<H", raw[p + 1:p + 3])[0]
        entry = raw[p + 3:p + 3 + elen]
        rest = raw[p + 3 + elen:]
        if len(entry) != elen or elen < 46:
            raise ValueError("truncated entry id")
        if guid != self.idguid:
            return ("item", None, None)
        master_id = self._ews_id(entry)
        item = self.items.get(master_id) or self.trash.get(master_id)
        if instr == 1:
            if len(rest) != 8:
                raise ValueError("bad occurrence id")
            return ("occurrence", item, _from_filetime(struct.unpack("<Q", rest)[0]))
        if rest:
            raise ValueError("trailing bytes")
        return ("item", item, None)

    def resolve(self, text):
        """An EWS id -> View, or None when not found. Raises ValueError if malformed."""
        kind, item, orig = self.parse_id(text)
        if item is None:
            return None
        if kind == "item":
            return View(item, item.kind)
        return self.instance_view(item, orig=orig)

    def instance_view(self, master, orig=None, index=None):
        """The occurrence/exception view of a master by original start or 1-based index.
        Returns None when there is no such instance; raises LookupError('deleted') for a
        deleted occurrence and LookupError('range') for an index outside the series."""
        if master.rec is None:
            return None
        if index is not None:
            inst = master.instance(index)
            if inst is None:
                raise LookupError("range")
            orig, oend = inst
        else:
            index = master.index_of(orig)
            if index is None:
                return None
            oend = orig + (master.end - master.start)
            inst = master.instance(index)
            if inst:
                oend = inst[1]
        if orig in master.deleted:
            raise LookupError("deleted")
        ex = master.exceptions.get(orig)
        if ex is not None:
            return View(master, "Exception", index, orig, ex)
        return View(master, "Occurrence", index, orig, None, orig, oend)

    # -- folder -----------------------------------------------------------------------------------

    def folder(self, name="calendar"):
        return folder_id(self.mailbox, name)

    def get(self, item_id):
        return self.items.get(item_id) or self.trash.get(item_id)

    # -- expansion ------------------------------------------------------------------------------

    def occurrences(self, lo, hi, inclusive_start=True):
        """Views overlapping [lo, hi) as CalendarView returns them: singles, occurrences and
        exceptions whose End is not before lo (items ending exactly at lo are included, as
        real Exchange does: inclusive_start=True) and whose Start is before hi. Sorted by
        start. With inclusive_start=False the test is End > lo (free/busy overlap)."""
        out = []

        def hit(s, e):
            return s < hi and (e >= lo if inclusive_start else e > lo)

        for it in self.items.values():
            if it.rec is None:
                if hit(it.start, it.end):
                    out.append(View(it, "Single"))
                continue
            for i, s, e in it.series():
                if s >= hi:
                    break
                if s in it.deleted or s in it.exceptions:
                    continue
                if hit(s, e):
                    out.append(View(it, "Occurrence", i, s, None, s, e))
            for ex in it.exceptions.values():
                if hit(ex.start, ex.end):
                    out.append(View(it, "Exception", ex.index, ex.orig, ex))
        out.sort(key=lambda v: (v.start, v.end, v.item.created_seq, v.orig or v.start))
        return out

    # -- change log --------------------------------------------------------------------------------

    def _touch(self, item, op):
        """Record a change of a stored item of the Calendar folder."""
        now = self.sim.clock.now()
        if op == "c":
            item.created_seq = len(self.log) + 1
        self.log.append((item.id, op, item.created_seq))
        self.commit_time = now
        if op == "d":
            self.deleted_count += 1

    def changes_since(self, pos):
        """Net changes after change-log position pos, one per item, ordered by the item's
        first change after pos: a list of (op, item id, item or None, first seq), op being
        'create', 'update' or 'delete'."""
        first = {}
        order = []
        for seq in range(pos + 1, len(self.log) + 1):
            iid, _op, cseq = self.log[seq - 1]
            if iid not in first:
                first[iid] = (seq, cseq)
                order.append(iid)
        out = []
        for iid in order:
            seq, cseq = first[iid]
            existed = cseq <= pos
            now = self.items.get(iid)
            if now is not None:
                out.append(("update" if existed else "create", iid, now, seq))
            elif existed:
                out.append(("delete", iid, None, seq))
        return out

    # -- events ---------------------------------------------------------------------------------------

    def _emit(self, events):
        """Publish a change: every hook on sim.calendar_hooks gets (mailbox, events)
        (notify's event queue feeder is one)."""
        for hook in self.sim.calendar_hooks:
            try:
                hook(self.mailbox, events)
            except Exception:  # a notification bug must not undo a calendar change
                log.exception("calendar hook %r failed", hook)

    def _item_event(self, etype, item, **extra):
        fid, fck = self.folder(item.folder)
        ev = {"type": etype, "item_id": item.id, "change_key": item.change_key, "parent_folder_id": fid,
              "parent_change_key": fck, "timestamp": iso(self.sim.clock.now())}
        ev.update(extra)
        return ev

    def _folder_event(self, name="calendar"):
        fid, fck = self.folder(name)
        pid, pck = self.folder("msgfolderroot")
        return {"type": "ModifiedEvent", "item_id": fid, "change_key": fck, "parent_folder_id": pid,
                "parent_change_key": pck, "folder_event": True, "timestamp": iso(self.sim.clock.now())}

    # -- mutations -------------------------------------------------------------------------------------

    def _new_item(self, f, created=None):
        it = Item(self)
        it.gc = self._next()
        it.id = self.item_id(it.gc, "calendar")
        it.cn = self._next()
        now = created or self.sim.clock.now()
        it.created = it.modified = now
        it.uid = f.pop("uid", None) or self._uid()
        _apply(it, f, creating=True)
        return it

    def _uid(self):
        h = hashlib.md5(("uid:%s:%d:%d" % (self.mailbox.guid, self.counter, self.generation)).encode())
        return UID_PREFIX + "0" * 32 + "10000000" + h.hexdigest().upper()

    def create(self, fields, created=None, emit=True):
        """Create a stored item. Exchange (CreateItem of an appointment) reports
        CreatedEvent + ModifiedEvent for the item and a ModifiedEvent for the folder."""
        it = self._new_item(dict(fields), created)
        self.items[it.id] = it
        self._touch(it, "c")
        if emit:
            self._emit([self._item_event("CreatedEvent", it), self._item_event("ModifiedEvent", it),
                        self._folder_event(), self._item_event("FreeBusyChangedEvent", it)])
        return it

    def _modified(self, it):
        it.cn = self._next()
        it.modified = self.sim.clock.now()

    def update(self, item_id, fields):
        """Change a stored item (UpdateItem): ModifiedEvent(item) + ModifiedEvent(folder)."""
        it = self.items.get(item_id)
        if it is None:
            raise KeyError(item_id)
        _apply(it, dict(fields), creating=False)
        self._modified(it)
        self._touch(it, "m")
        self._emit([self._item_event("ModifiedEvent", it), self._folder_event(),
                    self._item_event("FreeBusyChangedEvent", it)])
        return it

    def delete(self, item_id, hard=False):
        """Delete a stored item. Default: move to Deleted Items as Outlook does
        (DeleteType MoveToDeletedItems) -> the item gets a NEW id and ChangeKey; a
        MovedEvent (new id, OldItemId, OldParentFolderId) and a ModifiedEvent for the
        folder are reported. hard: HardDelete -> DeletedEvent + ModifiedEvent(folder).
        Returns the moved item, or None after a hard delete."""
        it = self.items.get(item_id)
        if it is None:
            if hard and item_id in self.trash:
                gone = self.trash.pop(item_id)
                self._emit([self._item_event("DeletedEvent", gone), self._folder_event("deleteditems")])
                return None
            raise KeyError(item_id)
        del self.items[item_id]
        self.log.append((item_id, "d", it.created_seq))
        self.commit_time = self.sim.clock.now()
        self.deleted_count += 1
        if hard:
            self._emit([self._item_event("DeletedEvent", it), self._folder_event(),
                        self._item_event("FreeBusyChangedEvent", it)])
            return None
        old_id = it.id
        old_ck = it.change_key
        old_parent = self.folder("calendar")
        it.folder = "deleteditems"
        it.gc = self._next()
        it.id = self.item_id(it.gc, "deleteditems")
        self._modified(it)
        self.trash[it.id] = it
        self._emit([self._item_event("MovedEvent", it, old_item_id=old_id, old_change_key=old_ck,
                                     old_parent_folder_id=old_parent[0], old_parent_change_key=old_parent[1]),
                    self._folder_event(),
                    {"type": "FreeBusyChangedEvent", "item_id": old_id, "change_key": it.change_key,
                     "parent_folder_id": old_parent[0], "parent_change_key": old_parent[1],
                     "timestamp": iso(self.sim.clock.now())}])
        return it

    def _master(self, item_id):
        it = self.items.get(item_id)
        if it is None:
            raise KeyError(item_id)
        if it.rec is None:
            raise ValueError("item %s is not a recurring master" % item_id)
        return it

    def modify_occurrence(self, master_id, index, fields):
        """Turn an occurrence into an exception (or change an exception). The master is
        what changes in the store: ModifiedEvent(master) + ModifiedEvent(folder), and
        SyncFolderItems later reports an Update of the master."""
        it = self._master(master_id)
        inst = it.instance(index)
        if inst is None:
            raise LookupError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange")
        orig, oend = inst
        if orig in it.deleted:
            raise LookupError("ErrorCalendarOccurrenceIsDeletedFromRecurrence")
        ex = it.exceptions.get(orig)
        f = dict(fields)
        start = _as_instant(f.pop("start", None), it.tz)
        end = _as_instant(f.pop("end", None), it.tz)
        cur_s = ex.start if ex else orig
        cur_e = ex.end if ex else oend
        ns = start if start is not None else cur_s
        ne = end if end is not None else (ns + (cur_e - cur_s) if start is not None else cur_e)
        if ne < ns:
            raise ValueError("ErrorCalendarEndDateIsEarlierThanStartDate: end is before start")
        if it.all_day:
            ns, ne = _midnights(ns, ne, it.tz)
        self._check_boundary(it, index, ns)
        unknown = set(f) - {"subject", "status", "location", "sensitivity", "cancelled"}
        if unknown:
            raise ValueError("unknown occurrence field(s): %s" % ", ".join(sorted(unknown)))
        _validate_enums(f)
        if ex is None:
            ex = Exc(orig, index, ns, ne)
            it.exceptions[orig] = ex
        ex.start, ex.end = ns, ne
        for k, v in f.items():
            setattr(ex, k, v)
        ex.cn = self._next()
        ex.modified = self.sim.clock.now()
        self._modified(it)
        self._touch(it, "m")
        self._emit([self._item_event("ModifiedEvent", it), self._folder_event(),
                    self._item_event("FreeBusyChangedEvent", it)])
        return View(it, "Exception", index, orig, ex)

    def _check_boundary(self, it, index, new_start):
        """Exchange refuses to move an occurrence to or past the day of the previous or
        next occurrence (ErrorOccurrenceCrossingBoundary)."""
        nd = utc_to_local(new_start, it.tz).date()
        prev = it.instance(index - 1) if index > 1 else None
        nxt = it.instance(index + 1)
        if prev is not None and nd <= utc_to_local(prev[0], it.tz).date():
            raise ValueError("ErrorOccurrenceCrossingBoundary: an occurrence can't be moved to or before the day "
                             "of the previous occurrence")
        if nxt is not None and nd >= utc_to_local(nxt[0], it.tz).date():
            raise ValueError("ErrorOccurrenceCrossingBoundary: an occurrence can't be moved to or after the day "
                             "of the next occurrence")

    def delete_occurrence(self, master_id, index):
        """Delete one occurrence (an exception is deleted with it): the master changes."""
        it = self._master(master_id)
        inst = it.instance(index)
        if inst is None:
            raise LookupError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange")
        orig = inst[0]
        if orig in it.deleted:
            raise LookupError("ErrorCalendarOccurrenceIsDeletedFromRecurrence")
        it.exceptions.pop(orig, None)
        it.deleted[orig] = index
        self._modified(it)
        self._touch(it, "m")
        self._emit([self._item_event("ModifiedEvent", it), self._folder_event(),
                    self._item_event("FreeBusyChangedEvent", it)])
        return it

    def clear(self, emit=True):
        """Hard-delete every item of the folder (each is a logged delete, so old sync
        states stay valid and report the deletions)."""
        gone = list(self.items.values())
        for it in gone:
            del self.items[it.id]
            self.log.append((it.id, "d", it.created_seq))
            self.deleted_count += 1
        self.trash.clear()
        if gone:
            self.commit_time = self.sim.clock.now()
            if emit:
                evs = [self._item_event("DeletedEvent", it) for it in gone]
                self._emit(evs + [self._folder_event()])
        return len(gone)

    def regenerate(self, seed=None):
        """Replace the calendar by a freshly generated one (new ids; logged as deletes and
        creates). seed: the generation seed (default: the sim's seed and a new variant)."""
        self.clear(emit=True)
        self.generation += 1
        _populate(self, seed if seed is not None else "%s/%d" % (self.sim.seed, self.generation))
        self._emit([self._folder_event()])
        return len(self.items)

    # -- generation ---------------------------------------------------------------------------------------

    @classmethod
    def generate(cls, mailbox, seed, anchor=None):
        """The generated calendar of mailbox; see _populate()."""
        cal = cls(mailbox)
        _populate(cal, seed, anchor)
        return cal

    def pristine(self, generated_log_length):
        """True while nothing changed this calendar since it was generated, so that it can
        be dropped and generated again, identical, from its seed and anchor."""
        return (self.generation == 0 and len(self.log) == generated_log_length and not self.trash
                and self.fb_access == "AvailabilityOnly")

    def describe(self):
        fid, fck = self.folder()
        return {
            "folder_id": fid,
            "folder_change_key": fck,
            "total_count": len(self.items),
            "deleted_items": len(self.trash),
            "time_zone": self.tz,
            "free_busy_access": self.fb_access,
            "change_log_length": len(self.log),
            "local_commit_time_max": iso(self.commit_time) if self.commit_time else None,
            "deleted_count_total": self.deleted_count,
        }


# ---------------------------------------------------------------------------------------
# Field validation / application (shared by generation and the control API)
# ---------------------------------------------------------------------------------------

FIELDS = {"subject", "start", "end", "all_day", "status", "sensitivity", "categories", "location", "recurrence",
          "cancelled", "time_zone", "is_meeting", "organizer", "my_response", "reminder", "uid", "body"}


def _validate_enums(f):
    if "status" in f and f["status"] not in STATUSES:
        raise ValueError("status must be one of %s" % ", ".join(STATUSES))
    if "sensitivity" in f and f["sensitivity"] not in SENSITIVITIES:
        raise ValueError("sensitivity must be one of %s" % ", ".join(SENSITIVITIES))
    if "subject" in f and not isinstance(f["subject"], str):
        raise ValueError("subject must be a string")
    if "location" in f and f["location"] is not None and not isinstance(f["location"], str):
        raise ValueError("location must be a string or null")
    if "cancelled" in f and not isinstance(f["cancelled"], bool):
        raise ValueError("cancelled must be true or false")


def make_recurrence(d, start_local_date):
    """Build a Recurrence from the control API's JSON form."""
    if not isinstance(d, dict):
        raise ValueError("recurrence must be an object")
    pat = d.get("pattern")
    if pat not in ("daily", "weekly"):
        raise ValueError("recurrence.pattern must be 'daily' or 'weekly'")
    interval = d.get("interval", 1)
    if not isinstance(interval, int) or not 1 <= interval <= 999:
        raise ValueError("recurrence.interval must be an integer 1..999")
    days = ()
    if pat == "weekly":
        names = d.get("days") or [WEEKDAYS[start_local_date.weekday()]]
        if not isinstance(names, list):
            raise ValueError("recurrence.days must be a list of weekday names")
        try:
            days = tuple(WEEKDAYS.index(str(n).capitalize()) for n in names)
        except ValueError:
            raise ValueError("recurrence.days: weekday names are %s" % ", ".join(WEEKDAYS))
    count = d.get("count")
    until = d.get("until")
    if count is not None and until is not None:
        raise ValueError("recurrence takes 'count' or 'until', not both")
    if count is not None and (not isinstance(count, int) or not 1 <= count <= 999):
        raise ValueError("recurrence.count must be an integer 1..999")
    if until is not None:
        try:
            until = date.fromisoformat(str(until)[:10])
        except ValueError:
            raise ValueError("recurrence.until must be a date YYYY-MM-DD")
    unknown = set(d) - {"pattern", "interval", "days", "count", "until"}
    if unknown:
        raise ValueError("unknown recurrence key(s): %s" % ", ".join(sorted(unknown)))
    return Recurrence(pat, interval, days, count, until)


def _as_instant(v, tz):
    """A date (all-day input) means local midnight in the item's zone."""
    if isinstance(v, date) and not isinstance(v, datetime):
        return local_to_utc(datetime.combine(v, time()), tz)
    return v


def _midnights(start, end, tz):
    """Exchange moves non-midnight times of an all-day event outward to midnight in the
    item's time zone (at least one day)."""
    ls = utc_to_local(start, tz)
    le = utc_to_local(end, tz)
    sd = ls.date()
    ed = le.date() if le.time() == time() else le.date() + timedelta(days=1)
    if ed <= sd:
        ed = sd + timedelta(days=1)
    return local_to_utc(datetime.combine(sd, time()), tz), local_to_utc(datetime.combine(ed, time()), tz)


def _apply(it, f, creating):
    """Validate and apply fields to an item. Times are aware datetimes (or, for all-day
    items, dates); the control API parses JSON before calling."""
    unknown = set(f) - FIELDS
    if unknown:
        raise ValueError("unknown field(s): %s" % ", ".join(sorted(unknown)))
    _validate_enums(f)
    if "time_zone" in f:
        if not known_zone(f["time_zone"]):
            raise ValueError("time_zone %r is not a known Windows time-zone id (e.g. 'W. Europe Standard Time')"
                             % f["time_zone"])
        it.tz = f["time_zone"]
    if creating and ("start" not in f or "end" not in f):
        raise ValueError("an item needs 'start' and 'end'")
    times_changed = any(k in f for k in ("start", "end", "all_day", "recurrence", "time_zone"))
    start = f.get("start", it.start)
    end = f.get("end", it.end)
    if "start" in f and "end" not in f and not creating:
        end = start + (it.end - it.start)
    all_day = f.get("all_day", it.all_day)
    if not isinstance(all_day, bool):
        raise ValueError("all_day must be true or false")
    start, end = _as_instant(start, it.tz), _as_instant(end, it.tz)
    if end < start:
        raise ValueError("ErrorCalendarEndDateIsEarlierThanStartDate: end is before start")
    if all_day:
        start, end = _midnights(start, end, it.tz)
    if end - start > timedelta(days=1825):
        raise ValueError("ErrorCalendarDurationIsTooLong: an item may last at most 5 years")
    it.all_day = all_day
    it.start, it.end = start, end
    if "recurrence" in f:
        r = f["recurrence"]
        if r is None:
            it.rec = None
        elif isinstance(r, Recurrence):
            it.rec = r
        else:
            it.rec = make_recurrence(r, utc_to_local(start, it.tz).date())
    if it.rec is not None and times_changed:
        # Changing the pattern or the series times discards exceptions and deleted
        # occurrences (Outlook: "all exceptions associated with this recurring
        # appointment will be lost"), and the master's Start/End become the first
        # instance of the pattern.
        it.exceptions = {}
        it.deleted = {}
        if it.rec.pattern == "weekly" and not it.rec.days:
            it.rec.days = (utc_to_local(start, it.tz).weekday(),)
        first = next(iter(it.series(limit=1)), None)
        if first is None:
            raise ValueError("ErrorRecurrenceHasNoOccurrence: the recurrence has no occurrence")
        it.start, it.end = first[1], first[2]
        if it.rec.pattern == "daily" and it.end - it.start > timedelta(days=it.rec.interval):
            raise ValueError("ErrorOccurrenceTimeSpanTooBig: an occurrence is longer than the recurrence interval")
    for k in ("subject", "status", "sensitivity", "location", "cancelled", "is_meeting", "body"):
        if k in f:
            setattr(it, k, f[k])
    if "categories" in f:
        c = f["categories"] or []
        if not isinstance(c, list) or not all(isinstance(x, str) for x in c):
            raise ValueError("categories must be a list of strings")
        it.categories = tuple(c)
    if "organizer" in f:
        o = f["organizer"]
        if o is None:
            it.organizer = None
        elif isinstance(o, (tuple, list)) and len(o) == 2:
            it.organizer = (str(o[0]), str(o[1]))
        elif isinstance(o, dict) and isinstance(o.get("email"), str):
            it.organizer = (str(o.get("name") or o["email"]), o["email"])
        else:
            raise ValueError("organizer must be {\"name\": ..., \"email\": ...} or null")
        if it.organizer and it.organizer[1].lower() == it.cal.mailbox.smtp:
            it.organizer = None
    if "my_response" in f:
        if f["my_response"] not in RESPONSES:
            raise ValueError("my_response must be one of %s" % ", ".join(RESPONSES))
        it.response = f["my_response"]
    elif "organizer" in f or creating:
        it.response = "Organizer" if it.organizer is None else ("Tentative" if it.status == "Tentative"
                                                                else "Accept")
    if it.organizer is not None:
        it.is_meeting = True
    if "reminder" in f:
        r = f["reminder"]
        if r is not None and (not isinstance(r, int) or r < 0):
            raise ValueError("reminder must be minutes (integer) or null")
        it.reminder = r
    if not isinstance(it.subject, str):
        raise ValueError("subject must be a string")


# ---------------------------------------------------------------------------------------
# Deterministic generation
# ---------------------------------------------------------------------------------------


def _populate(cal, seed, anchor=None):
    """Fill cal from (seed, mailbox index, anchor day): the same three give the same
    calendar, ids included. anchor defaults to the start of the current sim day."""
    mb = cal.mailbox
    rng = random.Random("ews-sim:%s:%d" % (seed, mb.index))
    if anchor is None:
        now = mb.sim.clock.now()
        anchor = datetime(now.year, now.month, now.day, tzinfo=UTC)
    if cal.generation == 0:
        cal.tz = _weighted(rng, MAILBOX_ZONES)
        cal.counter = 0x100000 + rng.randrange(0x8000) * 16
    tz = cal.tz
    anchor_local = utc_to_local(anchor, tz).date()
    n = rng.randint(10, 30)

    def created_at():
        return anchor - timedelta(days=rng.randint(1, 45), minutes=rng.randint(0, 1439))

    def status():
        return _weighted(rng, [("Busy", 60), ("Tentative", 12), ("Free", 10), ("OOF", 6), ("WorkingElsewhere", 12)])

    def sensitivity():
        return _weighted(rng, [("Normal", 80), ("Private", 12), ("Personal", 4), ("Confidential", 4)])

    def at(day_offset, hour, minute):
        return local_to_utc(datetime.combine(anchor_local + timedelta(days=day_offset), time(hour, minute)), tz)

    specs = []
    # 1. A daily stand-up series that started in the past.
    first = rng.randint(-12, -3)
    h = rng.choice([8, 9, 10])
    specs.append(dict(subject=rng.choice(["Team standup", "Daily sync", "Tägliches Stand-up"]),
                      start=at(first, h, 30), end=at(first, h, 45), status="Busy",
                      recurrence=Recurrence("daily", rng.choice([1, 1, 2]), (), rng.randint(12, 30), None),
                      is_meeting=True))
    # 2. A weekly series on one to three weekdays.
    first = rng.randint(-14, 0)
    days = tuple(sorted(rng.sample(range(5), rng.randint(1, 3))))
    h = rng.randint(10, 16)
    until = anchor_local + timedelta(days=rng.randint(14, 40))
    weekly = Recurrence("weekly", rng.choice([1, 1, 2]), days, None if rng.random() < 0.5 else rng.randint(4, 12),
                        None)
    if weekly.count is None:
        weekly.until = until
    specs.append(dict(subject=rng.choice(["Weekly review", "Jour fixe", "Sprint planning", "1:1 with manager"]),
                      start=at(first, h, 0), end=at(first, h + 1, 0), status=rng.choice(["Busy", "Busy", "Tentative"]),
                      recurrence=weekly, is_meeting=rng.random() < 0.7))
    # 3. An all-day event (midnight to midnight in the mailbox's zone).
    d = rng.randint(-5, 20)
    specs.append(dict(subject=rng.choice(ALLDAY_SUBJECTS), start=anchor_local + timedelta(days=d),
                      end=anchor_local + timedelta(days=d + rng.choice([1, 1, 2, 3])), all_day=True,
                      status=rng.choice(["OOF", "Free", "WorkingElsewhere", "Busy"])))
    # The rest: mostly singles, a few more series and all-day events.
    while len(specs) < n:
        r = rng.random()
        dayoff = rng.randint(-14, 30)
        hour = rng.randint(7, 18)
        minute = rng.choice([0, 0, 15, 30, 30, 45])
        dur = rng.choice([15, 30, 30, 45, 60, 60, 60, 90, 120])
        s = at(dayoff, hour, minute)
        spec = dict(subject=rng.choice(SUBJECTS), start=s, end=s + timedelta(minutes=dur), status=status())
        if r < 0.08:
            spec = dict(subject=rng.choice(ALLDAY_SUBJECTS), start=anchor_local + timedelta(days=dayoff),
                        end=anchor_local + timedelta(days=dayoff + 1), all_day=True,
                        status=rng.choice(["OOF", "Free", "WorkingElsewhere"]))
        elif r < 0.24 and dayoff > 22:
            pass  # keep series inside the generated span: late ones stay singles
        elif r < 0.16:
            spec["recurrence"] = Recurrence("daily", rng.choice([1, 2, 3]), (), rng.randint(3, 10), None)
        elif r < 0.24:
            spec["recurrence"] = Recurrence("weekly", 1, tuple(sorted(rng.sample(range(5), rng.randint(1, 2)))),
                                            None, anchor_local + timedelta(days=dayoff + rng.randint(7, 35)))
        specs.append(spec)

    for spec in specs:
        spec.setdefault("sensitivity", sensitivity())
        spec["time_zone"] = tz
        if rng.random() < 0.5:
            spec["location"] = rng.choice(LOCATIONS)
        if rng.random() < 0.25:
            spec["categories"] = rng.sample(CATEGORIES, rng.randint(1, 2))
        if rng.random() < 0.35 and not spec.get("all_day"):
            spec["is_meeting"] = True
            if rng.random() < 0.6:
                spec["organizer"] = rng.choice(ORGANIZERS)
                if rng.random() < 0.12:
                    # A meeting the organizer cancelled, still on the attendee's calendar:
                    # Exchange prefixes the subject and marks the time Free.
                    spec["cancelled"] = True
                    spec["subject"] = "Canceled: " + spec["subject"]
                    spec["status"] = "Free"
                elif rng.random() < 0.3:
                    spec["my_response"] = rng.choice(["NoResponseReceived", "Tentative"])
                    spec["status"] = "Tentative"
        if rng.random() < 0.2:
            spec["reminder"] = None
        it = cal.create(spec, created=created_at(), emit=False)
        if it.rec is not None:
            _decorate_series(cal, it, rng)
    cal.commit_time = max(it.modified for it in cal.items.values()) if cal.items else anchor


def _decorate_series(cal, it, rng):
    """Give a generated series exceptions (moved time, changed subject or status) and a
    deleted occurrence, without events (the calendar is being generated)."""
    inst = list(it.series(limit=40))
    if len(inst) < 4:
        return
    if rng.random() < 0.7:
        for _ in range(rng.randint(1, 2)):
            idx, s, e = rng.choice(inst[1:-1])
            if s in it.exceptions or s in it.deleted:
                continue
            ex = Exc(s, idx, s, e)
            what = rng.random()
            if what < 0.4:
                shift = timedelta(minutes=rng.choice([-60, -30, 30, 60, 90]))
                if it.all_day:
                    shift = timedelta(0)
                ex.start, ex.end = s + shift, e + shift
            elif what < 0.7:
                ex.subject = it.subject + " (moved agenda)"
            else:
                ex.status = rng.choice(["Tentative", "Free", "OOF"])
            if rng.random() < 0.3:
                ex.location = rng.choice(["Room 2.17", "Online", "会议室 B"])
            ex.cn = cal._next()
            ex.modified = it.modified
            it.exceptions[s] = ex
    if rng.random() < 0.5:
        idx, s, _e = rng.choice(inst[1:])
        if s not in it.exceptions:
            it.deleted[s] = idx
    it.cn = cal._next()


# ---------------------------------------------------------------------------------------
# SyncState
# ---------------------------------------------------------------------------------------

_SYNC_MAGIC = b"EWSSIMsync1"


def encode_sync_state(mailbox, folder, pos):
    """The opaque SyncState: gzip (so it starts "H4sI" like Exchange's) of a magic, the
    mailbox GUID, the folder and the change-log position, with a keyed checksum."""
    payload = _SYNC_MAGIC + bytes.fromhex(mailbox.guid) + folder.encode()[:16].ljust(16, b"\0") + struct.pack(
        "<Q", pos)
    mac = hashlib.sha256(b"ews-sim sync state" + payload).digest()[:12]
    return base64.b64encode(gzip.compress(payload + mac, mtime=0)).decode()


def decode_sync_state(mailbox, folder, text):
    """The change-log position in a SyncState; ValueError if it is not one of ours for
    this mailbox and folder (ErrorInvalidSyncStateData)."""
    try:
        raw = gzip.decompress(base64.b64decode(text.strip(), validate=True))
    except Exception:
        raise ValueError("not a sync state")
    n = len(_SYNC_MAGIC)
    if len(raw) != n + 16 + 16 + 8 + 12 or not raw.startswith(_SYNC_MAGIC):
        raise ValueError("not a sync state")
    payload, mac = raw[:-12], raw[-12:]
    if hashlib.sha256(b"ews-sim sync state" + payload).digest()[:12] != mac:
        raise ValueError("corrupt sync state")
    if payload[n:n + 16] != bytes.fromhex(mailbox.guid):
        raise ValueError("sync state of another mailbox")
    if payload[n + 16:n + 32].rstrip(b"\0") != folder.encode()[:16]:
        raise ValueError("sync state of another folder")
    return struct.unpack("<Q", payload[n + 32:n + 40])[0]
