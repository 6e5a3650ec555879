"""Faults injected through ews-sim's control API. Each test ends with every mailbox's mirror
equal to ews-sim's calendar, item by item, and with no lost change: a change made during the
fault (when its notification is lost or cannot be delivered) and one made after it both
reach presence."""

import time

import pytest

from calsyncproc import (clear_calendar, counter, create_item, patch_item, sim_streams, sim_subscriptions,
                         user)
from simharness import PASSWORD, SVC, wait_for

RECOVER = 30.0  # seconds to recover from a fault: back-off starts at 1 s and doubles


class Env:
    def __init__(self, sim, cs, mbs):
        self.sim, self.cs, self.mbs = sim, cs, mbs
        self.probe = mbs[0]
        self.now = int(time.time())

    def change(self, subject, smtp=None, timeout=RECOVER):
        """Makes smtp busy with an appointment called subject, and returns a function that
        waits until calsync shows it."""
        smtp = smtp or self.probe
        item = create_item(self.sim, smtp, subject=subject, start=self.now - 600, end=self.now + 7200)
        self.item = item["id"]

        def wait():
            self.cs.wait_state(smtp, timeout, state="busy", subject=subject)
            return item
        return wait

    def finish(self, subject="After the fault"):
        """The change made during the fault arrived (waited by the caller); one made now
        arrives too; every mirror equals ews-sim's calendar; SIGTERM still exits 0."""
        patch_item(self.sim, self.probe, self.item, subject=subject)
        self.cs.wait_state(self.probe, RECOVER, state="busy", subject=subject)
        self.cs.wait_mirrors_equal(self.mbs, timeout=RECOVER)
        self.cs.wait_live(self.mbs)
        assert self.cs.stop() == 0, self.cs.stderr_tail()


def start_env(sim_factory, calsync_factory, mode, n=4, sim_args=(), before_start=None, **config):
    sim = sim_factory("--mailboxes", "8", *sim_args)
    mbs = [user(i) for i in range(1, n + 1)]
    clear_calendar(sim, mbs[0])
    cs = calsync_factory(sim, mbs, mode=mode, **config)
    if before_start:
        before_start(sim)
    cs.start()
    cs.wait_live()
    if mode == "stream":
        cs.wait_streaming()
    cs.wait_mirrors_equal()
    cs.wait_line(mbs[0], 10, state="free")
    return Env(sim, cs, mbs)


def streaming_connected(sim):
    return sim.counters()["streaming_subscriptions_connected"].get("total", 0)


def injected(sim, kind):
    return counter(sim.counters(), "faults_injected", kind)


# -- streams -----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["reset", "eof", "closed"])
def test_dropped_stream_loses_nothing(sim_factory, calsync_factory, how):
    env = start_env(sim_factory, calsync_factory, "stream")
    sim, cs = env.sim, env.cs
    streams = sim_streams(sim)
    assert streams, "no stream open"
    # The open streams go silent, so the next change's notification is lost for good; then
    # they are dropped. Only a re-read after reconnecting can find the change.
    sim.control("POST", "/faults/streams/half-open", {}, expect=200)
    wait = env.change("During the drop")
    sim.control("POST", "/faults/streams/drop", {"how": how}, expect=200)
    wait()
    assert counter(sim.counters(), "streams_dropped", how) >= 1
    wait_for(lambda: streaming_connected(sim) == len(env.mbs), timeout=RECOVER,
             what="every subscription streaming again")
    env.finish()


# A silent stream is noticed by calsync's watchdog (<sync stream_watchdog>, 90 s by default,
# twice Exchange's 45 s heartbeat); here 5 s against ews-sim heartbeats every second.
QUICK_WATCHDOG = dict(sim_args=("--heartbeat", "1"), sync={"stream_watchdog": "5s"})


def test_half_open_stream(sim_factory, calsync_factory):
    """A stream that stops sending anything (not even heartbeats) while its TCP connection
    stays open is taken for dead and replaced, and the change it swallowed is read."""
    env = start_env(sim_factory, calsync_factory, "stream", **QUICK_WATCHDOG)
    sim = env.sim
    streams = {st["id"] for st in sim_streams(sim)}
    sim.control("POST", "/faults/streams/half-open", {}, expect=200)
    env.change("During the silence")()
    wait_for(lambda: streaming_connected(sim) == len(env.mbs) and not streams & {st["id"] for st in sim_streams(sim)},
             timeout=RECOVER, what="a new stream in place of the silent one")
    env.finish()


def test_new_stream_half_open(sim_factory, calsync_factory):
    """The reconnect after a drop gets the HTTP head and then nothing."""
    env = start_env(sim_factory, calsync_factory, "stream", **QUICK_WATCHDOG)
    sim = env.sim
    sim.control("POST", "/faults", {"kind": "stream_half_open", "count": 1}, expect=201)
    sim.control("POST", "/faults/streams/drop", {"how": "reset"}, expect=200)
    wait_for(lambda: injected(sim, "stream_half_open") == 1, timeout=RECOVER, what="the half-open reconnect")
    env.change("After a half-open reconnect")()
    wait_for(lambda: streaming_connected(sim) == len(env.mbs) and
             not any(st["half_open"] for st in sim_streams(sim)), timeout=RECOVER,
             what="a working stream again")
    env.finish()


# -- subscriptions and backends ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stream", "pull"])
def test_backend_restart(sim_factory, calsync_factory, mode):
    env = start_env(sim_factory, calsync_factory, mode)
    sim = env.sim
    backend = sim.control("GET", "/mailboxes/%s" % env.probe, expect=200)[1]["backend"]
    created = counter(sim.counters(), "subscriptions_created")
    sim.control("POST", "/faults/backends/%s/restart" % backend, {}, expect=200)
    # Made at once: no subscription on that backend exists to report it.
    env.change("After the restart")()
    lost = [m for m in env.mbs if sim.control("GET", "/mailboxes/%s" % m, expect=200)[1]["backend"] == backend]
    wait_for(lambda: all(len(sim_subscriptions(sim, m)) == 1 for m in env.mbs), timeout=RECOVER,
             what="every mailbox subscribed again")
    assert counter(sim.counters(), "subscriptions_created") - created >= len(lost)
    env.finish()


@pytest.mark.parametrize("mid_deletion", [False, True], ids=["expired", "mid-deletion"])
@pytest.mark.parametrize("mode", ["stream", "pull"])
def test_expired_subscriptions(sim_factory, calsync_factory, mode, mid_deletion):
    env = start_env(sim_factory, calsync_factory, mode)
    sim = env.sim
    sim.control("POST", "/faults/subscriptions/expire", {"all": True, "mid_deletion": mid_deletion}, expect=200)
    env.change("After the expiry")()
    wait_for(lambda: all(len(sim_subscriptions(sim, m)) == 1 for m in env.mbs), timeout=RECOVER,
             what="every mailbox subscribed again")
    env.finish()


@pytest.mark.parametrize("mode", ["stream", "pull"])
def test_missed_events(sim_factory, calsync_factory, mode):
    env = start_env(sim_factory, calsync_factory, mode)
    sim = env.sim
    if mode == "stream":
        # The stream ends normally (Closed, as at its ConnectionTimeout) and its reconnects are
        # refused three times, so the subscription has no connection for a few seconds: the change's
        # events queue up, and are lost. The next connection gets ErrorMissedNotificationEvents,
        # the only sign of the lost change.
        sim.control("POST", "/faults", {"kind": "http_503", "operation": "GetStreamingEvents", "count": 3},
                    expect=201)
        sim.control("POST", "/faults/streams/drop", {"how": "closed"}, expect=200)
        wait_for(lambda: streaming_connected(sim) == 0, timeout=5, what="the stream closed")
        wait = env.change("Missed")
        sim.control("POST", "/faults/missed-events", {"mailbox": env.probe}, expect=200)
    else:
        # The change's events are queued until the next poll; they are lost before it.
        wait = env.change("Missed")
        sim.control("POST", "/faults/missed-events", {"mailbox": env.probe}, expect=200)
    wait()
    assert injected(sim, "missed_events") >= 1
    if mode == "stream":
        # (ews-sim does not count the injected error a GetEvents answers with, only streams')
        assert counter(sim.counters(), "events", "missed_reported") >= 1
    env.finish()


# -- failing requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http_503", "http_500"])
@pytest.mark.parametrize("mode", ["stream", "pull"])
def test_http_errors(sim_factory, calsync_factory, mode, kind):
    env = start_env(sim_factory, calsync_factory, mode)
    sim = env.sim
    notify_op = "GetStreamingEvents" if mode == "stream" else "GetEvents"
    fault = {"kind": kind, "count": 3, "operation": ["FindItem", notify_op, "Subscribe"]}
    if kind == "http_503":
        fault["retry_after"] = 1
    sim.control("POST", "/faults", fault, expect=201)
    if mode == "stream":
        sim.control("POST", "/faults/streams/drop", {"how": "reset"}, expect=200)  # reconnects hit it
    env.change("Through the errors")()
    wait_for(lambda: injected(sim, kind) == 3, timeout=RECOVER, what="all three %s faults hit" % kind)
    env.finish()


@pytest.mark.parametrize("mode", ["stream", "pull"])
def test_server_busy_storm(sim_factory, calsync_factory, mode):
    """ErrorServerBusy with BackOffMilliseconds on 40 requests from the start, then a change."""
    storm = {"kind": "ews_fault", "code": "ErrorServerBusy", "back_off_ms": 500, "count": 40}
    env = start_env(sim_factory, calsync_factory, mode,
                before_start=lambda sim: sim.control("POST", "/faults", storm, expect=201))
    sim = env.sim
    wait_for(lambda: injected(sim, "ews_fault") == 40, timeout=RECOVER, what="the whole storm")
    sim.control("POST", "/faults", dict(storm, count=10), expect=201)
    env.change("Through the storm")()
    env.finish()


def test_impersonation_denied_for_one_mailbox(sim_factory, calsync_factory):
    denied = user(3)

    def deny(sim):
        allowed = [user(i) for i in range(1, 9) if user(i) != denied]
        sim.control("POST", "/accounts", {"smtp": SVC, "password": PASSWORD, "impersonation": allowed}, expect=201)

    sim = sim_factory("--mailboxes", "8")
    mbs = [user(i) for i in range(1, 5)]
    clear_calendar(sim, mbs[0])
    cs = calsync_factory(sim, mbs, mode="stream")
    deny(sim)
    cs.start()
    others = [m for m in mbs if m != denied]
    cs.wait_live(others)
    wait_for(lambda: cs.mailbox_rows()[denied]["state"] == "parked", timeout=RECOVER, what="%s parked" % denied)
    reason = cs.mailbox_rows()[denied]["parked_reason"]
    assert reason and "ImpersonateUserDenied" in reason, reason
    assert sim_subscriptions(sim, denied) == []
    env = Env(sim, cs, mbs)
    cs.wait_mirrors_equal(others)
    env.change("Others unaffected")()
    # Still parked, still live for the rest.
    assert cs.mailbox_rows()[denied]["state"] == "parked"
    env.mbs = others
    env.finish()


@pytest.mark.parametrize("discovery", ["ews-url", "autodiscover"])
@pytest.mark.parametrize("mode", ["stream", "pull"])
def test_mailbox_moved_to_another_backend(sim_factory, calsync_factory, mode, discovery):
    env = start_env(sim_factory, calsync_factory, mode, autodiscover=discovery == "autodiscover")
    sim = env.sim
    old = sim.control("GET", "/mailboxes/%s" % env.probe, expect=200)[1]["backend"]
    sim.control("POST", "/faults/mailboxes/move", {"mailbox": env.probe, "window_seconds": 3}, expect=200)
    new = sim.control("GET", "/mailboxes/%s" % env.probe, expect=200)[1]["backend"]
    assert new != old
    env.change("After the move")()
    wait_for(lambda: len(sim_subscriptions(sim, env.probe)) == 1, timeout=RECOVER,
             what="%s subscribed again" % env.probe)
    if mode == "stream":
        # (The subscription may live on either backend: with X-BackEndOverrideCookie affinity a
        # group's subscriptions live on the group's backend.)
        env.cs.wait_streaming()
    env.finish()
