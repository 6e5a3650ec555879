"""Presence flips at the start and end of appointments on the calendar clock (calsync's test
clock, moved together with ews-sim's): singles, recurring occurrences, exceptions, deleted
occurrences, all-day events, overlaps and private items, with a running (shifted) clock and
with a frozen one. Each mailbox's whole sequence of presence lines is checked, so a missing,
early, late or repeated flip fails."""

import time
from datetime import date, datetime, timedelta, timezone

import pytest

from calsyncproc import clear_calendar, create_item, iso, parse_iso, user
from simharness import wait_for

LEAD = 3  # seconds: the clock is set this long before a boundary, then the timer must fire
LATE = 2  # seconds: how late after the boundary (calendar time) a flip may be written
H = 3600
M = 60


@pytest.fixture(scope="module")
def sim(module_sim_factory):
    return module_sim_factory("--mailboxes", "20")


def day_start(d):
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp())


def occurrence(sim, smtp, master_id, n, method, body=None):
    import urllib.parse
    path = "/mailboxes/%s/items/%s/occurrences/%d" % (smtp, urllib.parse.quote(master_id, safe=""), n)
    return sim.control(method, path, body, expect=200)[1]


def test_flips_at_boundaries_on_shifted_clock(sim, calsync_factory):
    D = date.fromtimestamp(time.time() + 3 * 86400)  # a day three days from now (UTC)
    B0 = day_start(D)
    mb = {k: user(i) for i, k in enumerate(["single", "daily", "allday", "overlap", "private",
                                            "deleted", "exception"], 1)}
    for m in mb.values():
        clear_calendar(sim, m)
    create_item(sim, mb["single"], subject="Single", start=B0, end=B0 + 30 * M)
    create_item(sim, mb["daily"], subject="Daily", start=B0 - 3 * 86400, end=B0 - 3 * 86400 + 30 * M,
                recurrence={"pattern": "daily", "interval": 1, "count": 10})
    create_item(sim, mb["allday"], subject="Holiday", all_day=True, status="OOF", time_zone="UTC",
                start=D.isoformat(), end=(D + timedelta(days=1)).isoformat())
    create_item(sim, mb["overlap"], subject="Long", start=B0, end=B0 + 60 * M)
    create_item(sim, mb["overlap"], subject="Out", status="OOF", start=B0 + 15 * M, end=B0 + 30 * M)
    create_item(sim, mb["private"], subject="Divorce lawyer", sensitivity="Private", start=B0, end=B0 + 30 * M)
    s = create_item(sim, mb["deleted"], subject="Deleted daily", start=B0 - 3 * 86400,
                    end=B0 - 3 * 86400 + 30 * M, recurrence={"pattern": "daily", "interval": 1, "count": 10})
    occurrence(sim, mb["deleted"], s["id"], 4, "DELETE")  # the one on day D
    s = create_item(sim, mb["exception"], subject="Moved daily", start=B0 - 3 * 86400 + 45 * M,
                    end=B0 - 3 * 86400 + 60 * M, recurrence={"pattern": "daily", "interval": 1, "count": 10})
    occurrence(sim, mb["exception"], s["id"], 4, "PATCH", {"start": iso(B0), "end": iso(B0 + 30 * M)})

    cs = calsync_factory(sim, list(mb.values()), mode="stream")
    cs.set_clock(at=B0 - H)  # before the calsync starts: the clock file is read at start
    cs.start()
    cs.wait_live()
    cs.wait_streaming()  # idle streaming subscriptions would expire when the clock jumps
    for m in mb.values():
        cs.wait_line(m, 10, reason="initial", state="free")
    cs.wait_mirrors_equal()

    busy = ("busy", "In a meeting")
    oof = ("oof", "Out of office")
    free = ("free", None)
    # boundary -> {mailbox: (state, profile, subject, reason)}
    steps = [
        (B0, {"single": busy + ("Single", "appointment-start"),
              "daily": busy + ("Daily", "appointment-start"),
              "allday": oof + ("Holiday", "appointment-start"),
              "overlap": busy + ("Long", "appointment-start"),
              "private": busy + ("private", "appointment-start"),
              "exception": busy + ("Moved daily", "appointment-start")}),
        (B0 + 15 * M, {"overlap": oof + ("Out", "appointment-start")}),
        (B0 + 30 * M, {"single": free + (None, "appointment-end"),
                       "daily": free + (None, "appointment-end"),
                       # the OOF inside "Long" ends and "Long" is in force again: an end
                       "overlap": busy + ("Long", "appointment-end"),
                       "private": free + (None, "appointment-end"),
                       "exception": free + (None, "appointment-end")}),
        (B0 + 60 * M, {"overlap": free + (None, "appointment-end")}),
        # The next day: the all-day event ends as the series' next occurrences start (the
        # "deleted" series has one again).
        (B0 + 86400, {"allday": free + (None, "appointment-end"),
                      "daily": busy + ("Daily", "appointment-start"),
                      "deleted": busy + ("Deleted daily", "appointment-start")}),
    ]
    expected = {k: [("free", None, None, "initial")] for k in mb}
    for boundary, flips in steps:
        after = cs.max_id()
        cs.set_clock(at=boundary - LEAD)
        for k, (state, profile, subject, reason) in flips.items():
            ln = cs.wait_line(mb[k], LEAD + 10, after_id=after, what="%s flips at %s" % (k, iso(boundary)),
                              state=state, profile=profile, subject=subject, reason=reason)
            t = parse_iso(ln["time"])
            assert boundary <= t <= boundary + LATE, "%s flipped at %s, boundary %s" % (k, ln["time"], iso(boundary))
            expected[k].append((state, profile, subject, reason))
    # The private item never shows its subject, anywhere.
    assert "Divorce" not in open(cs.out_path).read()
    # Nothing else happened: per mailbox exactly the expected lines, in order ("deleted" did
    # not go busy on day D, whose occurrence is deleted; "exception" did not flip at 00:45).
    for k, m in mb.items():
        got = [(ln["state"], ln["profile"], ln["subject"], ln["reason"]) for ln in cs.lines_for(m)]
        assert got == expected[k], (k, got)
    # since/until of a flip are the merged span: the overlap's OOF ran 00:15-00:30 inside 00:00-01:00.
    ln = [ln for ln in cs.lines_for(mb["overlap"]) if ln["state"] == "oof"][0]
    assert (ln["since"], ln["until"]) == (iso(B0 + 15 * M), iso(B0 + 30 * M)), ln
    ln = [ln for ln in cs.lines_for(mb["allday"]) if ln["state"] == "oof"][0]
    assert (ln["since"], ln["until"]) == (iso(B0), iso(B0 + 86400)), ln
    assert cs.stop() == 0


def test_frozen_clock(sim, calsync_factory):
    D = date.fromtimestamp(time.time() + 5 * 86400)
    B0 = day_start(D) + 9 * H
    h, w = user(11), user(12)
    for m in (h, w):
        clear_calendar(sim, m)
    create_item(sim, h, subject="Frozen", start=B0, end=B0 + 30 * M)
    create_item(sim, w, subject="Witness", start=B0 + 30 * M - 1, end=B0 + 31 * M)

    cs = calsync_factory(sim, [h, w], mode="pull")
    cs.set_clock(frozen=B0 - 1)
    cs.start()
    cs.wait_live()
    ln = cs.wait_line(h, 10, reason="initial", state="free", until=iso(B0))
    assert ln["time"] == iso(B0 - 1)  # the frozen instant is calsync's "now"
    cs.wait_mirrors_equal()

    # Exactly at the start: busy (an appointment covers [start, end)).
    cs.set_clock(frozen=B0)
    ln = cs.wait_state(h, 10, state="busy", subject="Frozen", reason="clock")
    assert (ln["time"], ln["since"], ln["until"]) == (iso(B0), iso(B0), iso(B0 + 30 * M)), ln
    # A frozen clock does not move: no timer fires, even well past a real second.
    n = len(cs.lines())
    after = cs.max_id()
    # One second before the end: h is unchanged, the witness starts (and proves the clock
    # change was applied before h is checked).
    cs.set_clock(frozen=B0 + 30 * M - 1)
    cs.wait_line(w, 10, after_id=after, state="busy", subject="Witness", reason="clock")
    assert [ln for ln in cs.lines_for(h) if ln["id"] > after] == []
    assert len(cs.lines()) == n + 1
    # Exactly at the end: free.
    cs.set_clock(frozen=B0 + 30 * M)
    ln = cs.wait_state(h, 10, state="free", reason="clock")
    assert (ln["time"], ln["since"]) == (iso(B0 + 30 * M), iso(B0 + 30 * M)), ln
    # Far ahead: everything is over, the witness turns free too.
    cs.set_clock(frozen=B0 + 2 * H)
    cs.wait_state(w, 10, state="free", reason="clock")
    wait_for(lambda: cs.stored_presence()[w]["state"] == "free", timeout=5, what="stored presence")
    assert cs.stop() == 0
