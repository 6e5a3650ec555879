"""Unit tests of sim/ewssim/calendar.py (no server): generation, recurrence expansion,
ids and change keys, the change log, sync states and the events mutations report."""

import base64
import os
import sys
from datetime import date, datetime, timedelta, timezone

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "sim"))

from ewssim import calendar as cal  # noqa: E402
from ewssim import notify, state  # noqa: E402
from ewssim.clock import Clock  # noqa: E402

UTC = timezone.utc
NOW = datetime(2025, 3, 5, 10, 0, tzinfo=UTC)  # a Wednesday, before both DST changes
DAY = datetime(2025, 3, 5, tzinfo=UTC)


def make_sim(seed=1, mailboxes=20, now=NOW):
    return state.Sim(mailboxes=mailboxes, seed=seed, clock=Clock(frozen=now.timestamp()))


def utc(*a):
    return datetime(*a, tzinfo=UTC)


@pytest.fixture
def events(monkeypatch):
    got = []
    monkeypatch.setattr(notify, "emit", lambda sim, mb, evs: got.append(list(evs)))
    return got


def empty_calendar(sim, smtp="user00002@contoso.example"):
    mb = sim.mailbox(smtp)
    c = mb.calendar
    c.clear(emit=False)
    return mb, c


# -- generation ------------------------------------------------------------------------


def test_generation_is_deterministic_per_seed_and_mailbox():
    a = make_sim(seed=5).mailbox("user00003@contoso.example").calendar
    b = make_sim(seed=5).mailbox("user00003@contoso.example").calendar
    c = make_sim(seed=6).mailbox("user00003@contoso.example").calendar
    d = make_sim(seed=5).mailbox("user00004@contoso.example").calendar
    da = [it.describe() for it in a.items.values()]
    assert da == [it.describe() for it in b.items.values()]
    assert da != [it.describe() for it in c.items.values()]
    assert [x["subject"] for x in da] != [it.subject for it in d.items.values()]


def test_generated_calendar_shape():
    sim = make_sim(seed=3)
    kinds = set()
    for i in range(1, 21):
        c = sim.mailbox("user%05d@contoso.example" % i).calendar
        assert 10 <= len(c.items) <= 30
        items = list(c.items.values())
        assert any(it.rec is not None and it.rec.pattern == "daily" for it in items)
        assert any(it.rec is not None and it.rec.pattern == "weekly" for it in items)
        assert any(it.all_day for it in items)
        for it in items:
            kinds.add((it.status, it.sensitivity, it.cancelled, it.is_meeting))
            assert it.id.startswith("AAMkAD")
            assert it.change_key.startswith("DwAAABYAAAA")
            assert len(base64.b64decode(it.id)) == 113
            assert DAY - timedelta(days=15) <= it.start <= DAY + timedelta(days=31)
            assert it.end >= it.start
            assert it.tz in cal.ZONES
            if it.all_day:
                loc = cal.utc_to_local(it.start, it.tz)
                assert (loc.hour, loc.minute) == (0, 0)
    statuses = {k[0] for k in kinds}
    assert {"Busy", "Tentative", "Free", "OOF", "WorkingElsewhere"} <= statuses
    assert {"Normal", "Private"} <= {k[1] for k in kinds}
    assert any(k[2] for k in kinds)  # cancelled meetings exist
    assert any(k[3] for k in kinds)


def test_generation_is_lazy_for_50000_mailboxes():
    sim = make_sim(mailboxes=50000)
    mb = sim.mailbox("user50000@contoso.example")
    assert mb is not None and mb._calendar is None
    assert len(mb.calendar.items) >= 10
    assert len(sim.materialised()) == 1
    # Small per-item memory: items, views, exceptions and recurrences use __slots__.
    master = next(it for it in mb.calendar.items.values() if it.rec is not None)
    view = mb.calendar.occurrences(DAY - timedelta(days=15), DAY + timedelta(days=31))[0]
    for obj in (master, master.rec, view, mb.calendar, cal.Exc(DAY, 1, DAY, DAY)):
        assert not hasattr(obj, "__dict__"), type(obj)


def test_non_ascii_subjects_are_generated():
    sim = make_sim(seed=2)
    subjects = set()
    for i in range(1, 21):
        subjects |= {it.subject for it in sim.mailbox("user%05d@contoso.example" % i).calendar.items.values()}
    assert any(any(ord(ch) > 0x7F for ch in s) for s in subjects)


# -- recurrence and CalendarView semantics ---------------------------------------------------


def test_daily_and_weekly_expansion():
    sim = make_sim()
    mb, c = empty_calendar(sim)
    d = c.create({"subject": "daily", "start": utc(2025, 3, 3, 9), "end": utc(2025, 3, 3, 9, 30),
                  "recurrence": {"pattern": "daily", "interval": 2, "count": 4}})
    w = c.create({"subject": "weekly", "start": utc(2025, 3, 3, 14), "end": utc(2025, 3, 3, 15),
                  "recurrence": {"pattern": "weekly", "days": ["Monday", "Thursday"], "until": "2025-03-13"}})
    vs = c.occurrences(utc(2025, 3, 1), utc(2025, 4, 1))
    got = [(v.item.subject, cal.iso(v.start), v.kind, v.index) for v in vs]
    assert got == [
        ("daily", "2025-03-03T09:00:00Z", "Occurrence", 1),
        ("weekly", "2025-03-03T14:00:00Z", "Occurrence", 1),
        ("daily", "2025-03-05T09:00:00Z", "Occurrence", 2),
        ("weekly", "2025-03-06T14:00:00Z", "Occurrence", 2),
        ("daily", "2025-03-07T09:00:00Z", "Occurrence", 3),
        ("daily", "2025-03-09T09:00:00Z", "Occurrence", 4),
        ("weekly", "2025-03-10T14:00:00Z", "Occurrence", 3),
        ("weekly", "2025-03-13T14:00:00Z", "Occurrence", 4),
    ]
    assert d.kind == "RecurringMaster" and w.kind == "RecurringMaster"
    ids = [v.id for v in vs]
    assert len(set(ids)) == len(ids)
    assert ids == [v.id for v in c.occurrences(utc(2025, 3, 1), utc(2025, 4, 1))]  # stable
    for v in vs:
        r = c.resolve(v.id)
        assert (r.kind, r.index, r.start) == (v.kind, v.index, v.start)


def test_weekly_master_start_moves_to_first_pattern_day():
    sim = make_sim()
    mb, c = empty_calendar(sim)
    it = c.create({"subject": "w", "start": utc(2025, 3, 3, 14), "end": utc(2025, 3, 3, 15),  # a Monday
                   "recurrence": {"pattern": "weekly", "days": ["Wednesday"], "count": 2}})
    assert cal.iso(it.start) == "2025-03-05T14:00:00Z"


def test_exceptions_and_deleted_occurrences():
    sim = make_sim()
    mb, c = empty_calendar(sim)
    it = c.create({"subject": "standup", "start": utc(2025, 3, 3, 9), "end": utc(2025, 3, 3, 9, 15),
                   "recurrence": {"pattern": "daily", "count": 5}})
    c.modify_occurrence(it.id, 2, {"start": utc(2025, 3, 4, 16), "subject": "moved"})
    c.modify_occurrence(it.id, 3, {"status": "Tentative"})
    c.delete_occurrence(it.id, 4)
    vs = c.occurrences(utc(2025, 3, 1), utc(2025, 3, 10))
    got = [(cal.iso(v.start), cal.iso(v.end), v.kind, v.subject, v.status) for v in vs]
    assert got == [
        ("2025-03-03T09:00:00Z", "2025-03-03T09:15:00Z", "Occurrence", "standup", "Busy"),
        ("2025-03-04T16:00:00Z", "2025-03-04T16:15:00Z", "Exception", "moved", "Busy"),
        ("2025-03-05T09:00:00Z", "2025-03-05T09:15:00Z", "Exception", "standup", "Tentative"),
        ("2025-03-07T09:00:00Z", "2025-03-07T09:15:00Z", "Occurrence", "standup", "Busy"),
    ]
    # The moved exception is found by its new time, not its original one.
    w = c.occurrences(utc(2025, 3, 4, 8), utc(2025, 3, 4, 10))
    assert w == []
    with pytest.raises(LookupError):
        c.instance_view(it, index=4)
    with pytest.raises(LookupError):
        c.instance_view(it, index=6)
    # Moving past the next occurrence's day is refused, as Exchange does.
    with pytest.raises(ValueError, match="ErrorOccurrenceCrossingBoundary"):
        c.modify_occurrence(it.id, 1, {"start": utc(2025, 3, 5, 12)})


def test_boundary_item_ending_at_start_is_included():
    sim = make_sim()
    mb, c = empty_calendar(sim)
    c.create({"subject": "ends at start", "start": utc(2025, 3, 5, 8), "end": utc(2025, 3, 5, 9)})
    c.create({"subject": "starts at end", "start": utc(2025, 3, 5, 12), "end": utc(2025, 3, 5, 13)})
    vs = c.occurrences(utc(2025, 3, 5, 9), utc(2025, 3, 5, 12))
    assert [v.subject for v in vs] == ["ends at start"]
    # Free/busy overlap is strict.
    assert c.occurrences(utc(2025, 3, 5, 9), utc(2025, 3, 5, 12), inclusive_start=False) == []


def test_all_day_event_in_non_utc_zone():
    sim = make_sim()
    mb, c = empty_calendar(sim)
    it = c.create({"subject": "Urlaub", "start": utc(2025, 3, 6, 10), "end": utc(2025, 3, 6, 11), "all_day": True,
                   "time_zone": "W. Europe Standard Time"})
    assert (cal.iso(it.start), cal.iso(it.end)) == ("2025-03-05T23:00:00Z", "2025-03-06T23:00:00Z")
    summer = c.create({"subject": "Sommer", "start": date(2025, 7, 1), "end": date(2025, 7, 3), "all_day": True,
                       "time_zone": "W. Europe Standard Time"})
    assert (cal.iso(summer.start), cal.iso(summer.end)) == ("2025-06-30T22:00:00Z", "2025-07-02T22:00:00Z")
    pst = c.create({"subject": "PST", "start": date(2025, 3, 6), "end": date(2025, 3, 7), "all_day": True,
                    "time_zone": "Pacific Standard Time"})
    assert cal.iso(pst.start) == "2025-03-06T08:00:00Z"
    # Recurring all-day across the European DST change keeps local midnight.
    r = c.create({"subject": "daily all-day", "start": date(2025, 3, 29), "end": date(2025, 3, 30),
                  "all_day": True, "time_zone": "W. Europe Standard Time",
                  "recurrence": {"pattern": "daily", "count": 3}})
    got = [(cal.iso(s), cal.iso(e)) for _i, s, e in r.series()]
    assert got == [("2025-03-28T23:00:00Z", "2025-03-29T23:00:00Z"),
                   ("2025-03-29T23:00:00Z", "2025-03-30T22:00:00Z"),
                   ("2025-03-30T22:00:00Z", "2025-03-31T22:00:00Z")]


def test_validation_errors():
    sim = make_sim()
    mb, c = empty_calendar(sim)
    base = {"subject": "x", "start": utc(2025, 3, 5, 9), "end": utc(2025, 3, 5, 10)}
    for bad in ({"status": "Busyish"}, {"sensitivity": "Secret"}, {"time_zone": "Mars/Olympus"},
                {"end": utc(2025, 3, 5, 8)}, {"recurrence": {"pattern": "monthly"}},
                {"recurrence": {"pattern": "weekly", "days": ["Funday"]}}, {"colour": "red"},
                {"recurrence": {"pattern": "daily", "count": 2, "until": "2025-04-01"}}):
        with pytest.raises(ValueError):
            c.create(dict(base, **bad))
    assert len(c.items) == 0


# -- ids, change keys, change log ------------------------------------------------------------


def test_update_changes_change_key_and_delete_moves_with_new_id(events):
    sim = make_sim()
    mb, c = empty_calendar(sim)
    it = c.create({"subject": "a", "start": utc(2025, 3, 5, 9), "end": utc(2025, 3, 5, 10)})
    assert [e["type"] for e in events[-1]] == ["CreatedEvent", "ModifiedEvent", "ModifiedEvent",
                                               "FreeBusyChangedEvent"]
    assert events[-1][2]["folder_event"] and events[-1][2]["item_id"] == cal.folder_id(mb)[0]
    assert events[-1][0]["parent_folder_id"] == cal.folder_id(mb)[0]
    ck1 = it.change_key
    iid = it.id
    c.update(iid, {"subject": "b"})
    assert it.change_key != ck1 and it.id == iid
    assert [e["type"] for e in events[-1]][:2] == ["ModifiedEvent", "ModifiedEvent"]
    moved = c.delete(iid)
    assert moved.id != iid and moved.folder == "deleteditems"
    assert c.resolve(iid) is None and c.resolve(moved.id).item is moved
    ev = events[-1]
    assert ev[0]["type"] == "MovedEvent" and ev[0]["old_item_id"] == iid and ev[0]["item_id"] == moved.id
    assert ev[0]["old_parent_folder_id"] == cal.folder_id(mb)[0]
    assert ev[0]["parent_folder_id"] == cal.folder_id(mb, "deleteditems")[0]
    assert ev[1]["type"] == "ModifiedEvent" and ev[1]["folder_event"]
    it2 = c.create({"subject": "c", "start": utc(2025, 3, 5, 9), "end": utc(2025, 3, 5, 10)})
    assert c.delete(it2.id, hard=True) is None
    assert [e["type"] for e in events[-1]][:2] == ["DeletedEvent", "ModifiedEvent"]
    assert c.deleted_count >= 2


def test_occurrence_edits_report_master_modified(events):
    sim = make_sim()
    mb, c = empty_calendar(sim)
    it = c.create({"subject": "s", "start": utc(2025, 3, 3, 9), "end": utc(2025, 3, 3, 10),
                   "recurrence": {"pattern": "daily", "count": 5}})
    ck = it.change_key
    c.modify_occurrence(it.id, 2, {"subject": "x"})
    assert events[-1][0]["type"] == "ModifiedEvent" and events[-1][0]["item_id"] == it.id
    assert it.change_key != ck
    ck = it.change_key
    c.delete_occurrence(it.id, 3)
    assert events[-1][0]["item_id"] == it.id and it.change_key != ck


def test_changes_since_and_paging():
    sim = make_sim()
    mb, c = empty_calendar(sim)
    pos0 = len(c.log)
    a = c.create({"subject": "a", "start": utc(2025, 3, 5, 9), "end": utc(2025, 3, 5, 10)})
    b = c.create({"subject": "b", "start": utc(2025, 3, 5, 9), "end": utc(2025, 3, 5, 10)})
    pos1 = len(c.log)
    c.update(a.id, {"subject": "a2"})
    gone = c.create({"subject": "tmp", "start": utc(2025, 3, 5, 9), "end": utc(2025, 3, 5, 10)})
    c.delete(gone.id, hard=True)
    old_b = b.id
    c.delete(b.id)
    ch = c.changes_since(pos1)
    assert [(op, iid) for op, iid, _it, _s in ch] == [("update", a.id), ("delete", old_b)]
    ch0 = c.changes_since(pos0)
    assert [(op, iid) for op, iid, _it, _s in ch0] == [("create", a.id)]


def test_sync_state_roundtrip_and_rejects():
    sim = make_sim()
    mb = sim.mailbox("user00001@contoso.example")
    other = sim.mailbox("user00002@contoso.example")
    s = cal.encode_sync_state(mb, "calendar", 42)
    assert s.startswith("H4sI")
    assert cal.decode_sync_state(mb, "calendar", s) == 42
    for bad in ("", "garbage", base64.b64encode(b"x" * 40).decode(), s[:-8] + "AAAAAAA=", s[:20]):
        with pytest.raises(ValueError):
            cal.decode_sync_state(mb, "calendar", bad)
    with pytest.raises(ValueError):
        cal.decode_sync_state(other, "calendar", s)
    with pytest.raises(ValueError):
        cal.decode_sync_state(mb, "inbox", s)


def test_parse_id_rejects_malformed():
    sim = make_sim()
    c = sim.mailbox("user00001@contoso.example").calendar
    for bad in ("", "!!!", "AAAA", base64.b64encode(b"\x00\x03" + b"\xff" * 3).decode()):
        with pytest.raises(ValueError):
            c.parse_id(bad)
    # An id of another mailbox is well formed but not ours.
    other = sim.mailbox("user00002@contoso.example").calendar
    oid = next(iter(other.items))
    assert c.resolve(oid) is None


# -- time zones -------------------------------------------------------------------------------


def test_legacy_zone_rules():
    z = cal.LegacyZone.for_windows_id("W. Europe Standard Time")
    assert z.to_utc(datetime(2025, 3, 5, 10)) == utc(2025, 3, 5, 9)
    assert z.to_utc(datetime(2025, 7, 5, 10)) == utc(2025, 7, 5, 8)
    assert z.from_utc(utc(2025, 7, 5, 8)) == datetime(2025, 7, 5, 10)
    p = cal.LegacyZone.for_windows_id("Pacific Standard Time")
    assert p.to_utc(datetime(2025, 3, 8, 12)) == utc(2025, 3, 8, 20)
    assert p.to_utc(datetime(2025, 3, 10, 12)) == utc(2025, 3, 10, 19)
    u = cal.LegacyZone.for_windows_id("UTC")
    assert u.to_utc(datetime(2025, 7, 1)) == utc(2025, 7, 1)


def test_parse_dt():
    z = cal.WindowsZone("Tokyo Standard Time")
    assert cal.parse_dt("2025-03-05T09:00:00Z") == utc(2025, 3, 5, 9)
    assert cal.parse_dt("2025-03-05T09:00:00.1234567+01:00") == datetime(2025, 3, 5, 8, 0, 0, 123456, tzinfo=UTC)
    assert cal.parse_dt("2025-03-05T09:00:00") == utc(2025, 3, 5, 9)
    assert cal.parse_dt("2025-03-05T09:00:00", z) == utc(2025, 3, 5, 0)
    assert cal.xs_duration(timedelta(minutes=90)) == "PT1H30M"
    assert cal.xs_duration(timedelta(days=1)) == "P1D"
