"""GET /v1/events: presence changes as Server-Sent Events, pushed the moment they are stored,
resumable with Last-Event-ID (or ?after=) so that a reconnecting consumer gets exactly what it
missed, with keep-alive comments, a cap on streams, and prompt ends when calsync stops."""

import signal
import time

import pytest

from apiclient import sample, start_calsync
from calsyncproc import clear_calendar, create_item, patch_item, user
from simharness import wait_for

KEEPALIVE_MS = 300  # CALSYNC_TEST_SSE_KEEPALIVE_MS: the 15 s default, shortened for tests


@pytest.fixture(scope="module")
def sim(module_sim_factory):
    return module_sim_factory("--mailboxes", "200")


def daemon(sim, factory, mbs, **kw):
    for m in mbs:
        clear_calendar(sim, m)
    cs, api = start_calsync(factory, sim, mbs, env={"CALSYNC_TEST_SSE_KEEPALIVE_MS": str(KEEPALIVE_MS)}, **kw)
    cs.wait_live()
    for m in mbs:
        cs.wait_line(m, 10, reason="initial")
    return cs, api


def line_by_id(cs, i):
    return next(ln for ln in cs.lines() if ln["id"] == i)


def store_events_after(cs, after):
    return [r[0] for r in cs.query("SELECT id FROM presence_events WHERE id > ? ORDER BY id", (after,))]


def test_live_change_then_resume_gets_exactly_the_missed_events(sim, calsync_factory):
    a, b = user(1), user(2)
    cs, api = daemon(sim, calsync_factory, [a, b])
    now = int(time.time())

    s = api.events()
    assert s.status == 200
    assert s.resp.getheader("Content-Type") == "text/event-stream"
    assert s.next() == {"comment": "calsync presence events"}
    # Nothing old: a stream without Last-Event-ID starts at the newest stored event.
    t0 = time.monotonic()
    create_item(sim, a, subject="Live", start=now - 60, end=now + 3600)
    ev = s.next_event()
    assert time.monotonic() - t0 < 5, "the change took %.1f s" % (time.monotonic() - t0)
    assert ev["event"] == "presence"
    data = ev["json"]
    assert int(ev["id"]) == data["id"]
    assert data["user"] == a and data["state"] == "busy" and data["subject"] == "Live"
    assert data["reason"] == "calendar-changed"
    # The same object as the output line of that change.
    cs.wait_line(a, 5, after_id=data["id"] - 1)
    assert data == line_by_id(cs, data["id"])
    seen = data["id"]
    s.close()

    # Two changes while disconnected.
    item = create_item(sim, b, subject="Missed 1", start=now - 60, end=now + 3600)
    cs.wait_line(b, 10, after_id=seen, state="busy")
    patch_item(sim, b, item["id"], subject="Missed 2")
    cs.wait_state(b, 10, subject="Missed 2")
    missed = store_events_after(cs, seen)
    assert len(missed) == 2, missed

    for how in ("header", "query"):
        s = api.events(last_event_id=seen) if how == "header" else api.events(after=seen)
        assert s.status == 200
        got = []
        while True:
            ev = s.next()
            if "comment" in ev:
                if ev["comment"] == "keepalive":
                    break  # idle: everything stored was sent
                continue
            got.append(ev)
        s.close()
        assert [int(e["id"]) for e in got] == missed, (how, got)
        assert [e["json"]["subject"] for e in got] == ["Missed 1", "Missed 2"]
        assert all(e["json"] == line_by_id(cs, int(e["id"])) for e in got)

    # after=0 replays the whole log, in id order.
    s = api.events(after=0)
    ids = []
    while len(ids) < len(store_events_after(cs, 0)):
        ids.append(int(s.next_event()["id"]))
    s.close()
    assert ids == store_events_after(cs, 0)


def test_keepalive_and_client_count(sim, calsync_factory):
    cs, api = daemon(sim, calsync_factory, [user(10)])
    streams = [api.events(), api.events()]
    for s in streams:
        assert s.next()["comment"] == "calsync presence events"
        assert s.next() == {"comment": "keepalive"}
        assert s.next() == {"comment": "keepalive"}
    assert sample(api.metrics(), "calsync_sse_clients") == 2
    for s in streams:
        s.close()
    wait_for(lambda: sample(api.metrics(), "calsync_sse_clients") == 0, timeout=5, what="SSE clients back to 0")


def test_stream_cap(sim, calsync_factory):
    cs, api = daemon(sim, calsync_factory, [user(20)])
    streams = []
    try:
        for _ in range(32):
            s = api.events()
            assert s.status == 200
            streams.append(s)
        r = api.get("/v1/events")
        assert r.status == 503 and "too many" in r.json["error"], r
        # Other requests still get through while every stream is open.
        assert api.get("/v1/users").status == 200
        assert sample(api.metrics(), "calsync_sse_clients") == 32
    finally:
        for s in streams:
            s.close()
    wait_for(lambda: sample(api.metrics(), "calsync_sse_clients") == 0, timeout=5, what="SSE clients back to 0")
    s = api.events()
    assert s.status == 200
    s.close()


def test_stop_ends_streams_promptly(sim, calsync_factory):
    # The default 15 s keep-alive: stopping must not wait for it.
    mbs = [user(30)]
    for m in mbs:
        clear_calendar(sim, m)
    cs, api = start_calsync(calsync_factory, sim, mbs)
    cs.wait_live()
    s = api.events()
    assert s.next()["comment"] == "calsync presence events"
    t0 = time.monotonic()
    cs.signal(signal.SIGTERM)
    with pytest.raises(EOFError):
        s.next()
    assert time.monotonic() - t0 < 5
    assert cs.proc.wait(20) == 0  # no second SIGTERM: that one would mean "exit at once"
    s.close()
