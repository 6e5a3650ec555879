"""Signals: SIGTERM unsubscribes every subscription and exits 0; SIGHUP reloads the
configuration, so mailboxes added to or removed from the mailbox file take effect without a
restart."""

import signal
import time

import pytest

from calsyncproc import clear_calendar, counter, create_item, sim_subscriptions, user
from simharness import wait_for


@pytest.fixture(scope="module")
def sim(module_sim_factory):
    return module_sim_factory("--mailboxes", "40")


def sim_subs(sim, smtp):
    return len(sim_subscriptions(sim, smtp))


@pytest.mark.parametrize("mode", ["stream", "pull"])
def test_sigterm_unsubscribes_and_exits_0(sim, calsync_factory, mode):
    mbs = [user(n) for n in ((1, 2, 3, 4, 5) if mode == "stream" else (6, 7, 8, 9, 10))]
    cs = calsync_factory(sim, mbs, mode=mode)
    cs.start()
    cs.wait_live()
    for m in mbs:
        assert sim_subs(sim, m) == 1, m
    removed = counter(sim.counters(), "subscriptions_removed", "unsubscribe")
    t = time.monotonic()
    rc = cs.stop()
    took = time.monotonic() - t
    assert rc == 0, cs.stderr_tail()
    assert took < 15, "SIGTERM took %.1fs (bound: ~10 s)" % took
    for m in mbs:
        assert sim_subs(sim, m) == 0, m
    assert counter(sim.counters(), "subscriptions_removed", "unsubscribe") - removed == len(mbs)
    # No streaming connection is left open (a closed connection is noticed within ~1 s).
    wait_for(lambda: sim.counters()["streaming_connections"]["total"] == 0, timeout=5,
             what="no streaming connection")
    # Nothing calsync subscribed is left on the server. The store forgets streaming
    # subscriptions; a pull row stays for its watermark (a restart resumes from it).
    if mode == "stream":
        assert cs.subscriptions() == {}


def test_sigint_exits_0(sim, calsync_factory):
    mbs = [user(11), user(12)]
    cs = calsync_factory(sim, mbs)
    cs.start()
    cs.wait_live()
    cs.signal(signal.SIGINT)
    assert cs.proc.wait(20) == 0, cs.stderr_tail()
    for m in mbs:
        assert sim_subs(sim, m) == 0, m


@pytest.mark.parametrize("mode", ["stream", "pull"])
def test_sighup_adds_and_removes_mailboxes(sim, calsync_factory, mode):
    base = 20 if mode == "stream" else 30
    a, b, c = user(base + 1), user(base + 2), user(base + 3)
    for m in (a, b, c):
        clear_calendar(sim, m)
    cs = calsync_factory(sim, [a, b], mode=mode)
    cs.start()
    cs.wait_live()
    pid = cs.proc.pid
    created_before = counter(sim.counters(), "subscriptions_created")
    assert sim_subs(sim, a) == 1 and sim_subs(sim, c) == 0

    cs.set_mailboxes([b, c])
    cs.signal(signal.SIGHUP)
    cs.wait_live([b, c])
    wait_for(lambda: cs.mailbox_rows()[a]["enabled"] == 0, timeout=15, what="%s disabled" % a)
    wait_for(lambda: sim_subs(sim, a) == 0, timeout=15, what="%s unsubscribed" % a)
    assert sim_subs(sim, c) == 1 and sim_subs(sim, b) == 1
    assert cs.proc.pid == pid and cs.running()  # no restart
    assert counter(sim.counters(), "subscriptions_created") - created_before == 1
    cs.wait_line(c, 10, reason="initial", state="free")
    cs.wait_mirrors_equal([b, c])

    # The added mailbox follows its calendar; the removed one is not followed any more.
    now = int(time.time())
    create_item(sim, a, subject="Ignored", start=now - 600, end=now + 3600)
    create_item(sim, c, subject="Seen", start=now - 600, end=now + 3600)
    cs.wait_state(c, 15, state="busy", subject="Seen", reason="calendar-changed")
    n_a = len(cs.lines_for(a))
    # Also b, still configured, follows its calendar after the reload.
    create_item(sim, b, subject="Still here", start=now - 600, end=now + 3600)
    cs.wait_state(b, 15, state="busy", subject="Still here")
    assert len(cs.lines_for(a)) == n_a, cs.lines_for(a)

    # Adding a back resumes it from its stored state: no second "initial" line.
    cs.set_mailboxes([a, b, c])
    cs.signal(signal.SIGHUP)
    cs.wait_live([a, b, c])
    wait_for(lambda: sim_subs(sim, a) == 1, timeout=15, what="%s subscribed again" % a)
    cs.wait_state(a, 15, state="busy", subject="Ignored", reason="calendar-changed")
    assert [ln["reason"] for ln in cs.lines_for(a)].count("initial") == 1
    cs.wait_mirrors_equal([a, b, c])
    assert cs.stop() == 0
