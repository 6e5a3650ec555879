"""What the error table's flags make calsync do, against ews-sim's injected faults (EWS-REFERENCE
1.6): SHRINK reads the window in smaller CalendarView pages, FIX_VERSION parks the mailbox with
the configuration to fix until a reload. Each test fails without the reaction it tests: the
mailbox would never go live (SHRINK), or would not be parked and would not name the fix
(FIX_VERSION)."""

import signal
import time

import pytest

from calsyncproc import clear_calendar, create_item, user
from simharness import wait_for

RECOVER = 30.0  # seconds: back-off starts at 1 s and doubles


def inject(sim, **fault):
    return sim.control("POST", "/faults", fault, expect=201)[1]


def fault_hits(sim, fid):
    for f in sim.control("GET", "/faults", expect=200)[1]["faults"]:
        if f["id"] == fid:
            return f["hits"]
    return None


# -- SHRINK ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,code", [("ews_error", "ErrorExceededFindCountLimit"),
                                       ("ews_fault", "ErrorTimeoutExpired")])
def test_too_big_a_read_comes_in_smaller_pages(sim_factory, calsync_factory, kind, code):
    """The server refuses every CalendarView that may return more than 200 items: calsync asks
    again with MaxEntriesReturned 250, then 125, and reads the whole window in pages of 125."""
    sim = sim_factory("--mailboxes", "8")
    big, other = user(1), user(2)
    now = int(time.time())
    # 12 daily series over the window (today and 14 days ahead): about 180 occurrences, more
    # than one page of 125, each series at its own hour.
    clear_calendar(sim, big)
    day0 = now - now % 86400
    for h in range(12):
        create_item(sim, big, subject="Series %02d" % h, start=day0 + (7 + h) * 3600, end=day0 + (7 + h) * 3600 + 1800,
                    recurrence={"pattern": "daily", "interval": 1, "count": 20})
    f = inject(sim, kind=kind, code=code, operation="FindItem", mailbox=big, count=None, max_entries_over=200)
    cs = calsync_factory(sim, [big, other], mode="stream")
    cs.start()
    cs.wait_live(timeout=RECOVER)
    cs.wait_mirrors_equal(timeout=RECOVER)
    assert len(cs.occurrences(big)) > 125, "the window must need more than one page"
    # No limit, then 250: both refused; 125 from then on, for every later read too.
    assert fault_hits(sim, f["id"]) == 2
    log = cs.stderr_text()
    assert "%s: read: %s; CalendarView pages of 250" % (big, code) in log, log[-3000:]
    assert "%s: read: %s; CalendarView pages of 125" % (big, code) in log
    item = create_item(sim, big, subject="After shrinking", start=now - 600, end=now + 7200)
    cs.wait_state(big, RECOVER, state="busy", subject="After shrinking")
    cs.wait_mirrors_equal(timeout=RECOVER)
    assert fault_hits(sim, f["id"]) == 2
    assert item["id"] in {o["item_id"] for o in cs.occurrences(big)}
    assert cs.stop() == 0, cs.stderr_tail()


# -- FIX_VERSION ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind,code", [("ews_fault", "ErrorInvalidServerVersion"),
                                       ("ews_fault", "ErrorInvalidSchemaVersionForMailboxVersion"),
                                       ("ews_error", "ErrorIncorrectSchemaVersion")])
def test_refused_version_parks_naming_the_fix(sim_factory, calsync_factory, kind, code):
    """A RequestServerVersion the server refuses for one mailbox parks it (no retry every few
    minutes with the same version) with a reason that names <ews version>; the others go live.
    A reload (SIGHUP, after fixing the configuration) retries it at once."""
    sim = sim_factory("--mailboxes", "8")
    refused, others = user(1), [user(2), user(3)]
    f = inject(sim, kind=kind, code=code, mailbox=refused, count=None)
    cs = calsync_factory(sim, [refused] + others, mode="stream")
    cs.start()
    cs.wait_live(others, timeout=RECOVER)
    wait_for(lambda: cs.mailbox_rows().get(refused, {}).get("state") == "parked", timeout=RECOVER,
             what="%s parked" % refused)
    reason = cs.mailbox_rows()[refused]["parked_reason"]
    assert code in reason and '<ews version="...">' in reason, reason
    assert "RequestServerVersion Exchange2013_SP1 refused" in reason and "reload" in reason, reason
    hits = fault_hits(sim, f["id"])
    assert hits == 1, "one refused request parks the mailbox, %d were sent" % hits
    # The operator fixes the configuration (here: the server accepts the version again) and
    # reloads: the parked mailbox is tried at once, not after the 15 minutes of parking.
    sim.control("DELETE", "/faults", expect=200)
    cs.signal(signal.SIGHUP)
    cs.wait_live(timeout=RECOVER)
    cs.wait_streaming(timeout=RECOVER)
    cs.wait_mirrors_equal(timeout=RECOVER)
    assert cs.mailbox_rows()[refused]["parked_reason"] is None
    assert cs.stop() == 0, cs.stderr_tail()
