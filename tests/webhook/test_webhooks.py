"""Webhook delivery end to end: calsync against ews-sim, presence changes caused by appointments
that span now, and an aiohttp receiver (receiver.py) that can fail. Every change reaches the
receiver in log order with the body of its presence line and a valid signature; a receiver that
answers 500 or refuses connections for a while gets everything afterwards without a gap; a
kill -9 loses nothing; an event older than retry_for is dropped and logged."""

import hashlib
import hmac
import time

import pytest

from calsyncproc import clear_calendar, create_item, delete_item, patch_item, user
from simharness import wait_for

SECRET = "s3cret webhook key"
SECRET_ENV = "CALSYNC_TEST_WEBHOOK_SECRET"
DEADLINE = 15.0  # seconds for deliveries after the receiver is back (back-off is at most 8 s here)


@pytest.fixture(scope="module")
def sim(module_sim_factory):
    return module_sim_factory("--mailboxes", "20")


def webhook_xml(url, **attrs):
    a = "".join(' %s="%s"' % kv for kv in attrs.items())
    return '<webhooks><webhook url="%s"%s/></webhooks>' % (url, a)


def start(calsync_factory, sim, receiver, mbs, **attrs):
    for m in mbs:
        clear_calendar(sim, m)
    attrs.setdefault("secret_env", SECRET_ENV)
    cs = calsync_factory(sim, mbs, env={SECRET_ENV: SECRET}, extra=webhook_xml(receiver.url, **attrs))
    cs.start()
    cs.wait_live()
    for m in mbs:
        cs.wait_line(m, 10, reason="initial")
    return cs


def busy_now(sim, smtp, subject):
    t = int(time.time())
    return create_item(sim, smtp, subject=subject, start=t - 600, end=t + 3600)["id"]


def changes(cs, sim, smtp, n_before, item_id=None):
    """Makes three changes for smtp (busy, renamed, free), each waited for in the output."""
    iid = item_id or busy_now(sim, smtp, "First")
    cs.wait_state(smtp, 10, state="busy", subject="First")
    patch_item(sim, smtp, iid, subject="Second")
    cs.wait_state(smtp, 10, state="busy", subject="Second")
    delete_item(sim, smtp, iid)
    cs.wait_state(smtp, 10, state="free")
    assert len(cs.lines_for(smtp)) >= n_before + 3


def check_request(r, line):
    """r is the POST of the presence line `line`: same object, headers, valid signature."""
    assert r.json == line, (r.json, line)
    h = {k.lower(): v for k, v in r.headers.items()}
    assert h["content-type"] == "application/json"
    assert h["x-calsync-event-id"] == str(line["id"])
    want = "sha256=" + hmac.new(SECRET.encode(), r.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(h["x-calsync-signature"], want), (h["x-calsync-signature"], want)


def wait_delivered(cs, receiver, timeout=DEADLINE):
    """Until the receiver accepted every event in the output; returns the accepted requests."""
    def ok():
        cs.assert_running()
        want = {ln["id"] for ln in cs.lines()}
        got = {r.id for r in receiver.accepted()}
        return want and want <= got
    try:
        wait_for(ok, timeout=timeout, interval=0.05, what="every change delivered")
    except AssertionError as e:
        want = sorted(ln["id"] for ln in cs.lines())
        raise AssertionError("%s; output ids %s, accepted %s" % (e, want, [r.id for r in receiver.accepted()]))
    return receiver.accepted()


def restart(cs):
    """Starts cs again and waits until it runs (signal handlers installed, webhooks started)."""
    cs.start()
    wait_for(lambda: "calsync running" in cs.stderr_text(), timeout=10, what="calsync running again")


def log_count(cs, text, run=None):
    return cs.stderr_text(run).count(text)


def test_every_change_in_order_signed(sim, calsync_factory, receiver):
    mbs = [user(1), user(2)]
    cs = start(calsync_factory, sim, receiver, mbs)
    for m in mbs:
        changes(cs, sim, m, 1)
    acc = wait_delivered(cs, receiver)
    lines = {ln["id"]: ln for ln in cs.lines()}
    ids = [r.id for r in acc]
    # In log order, each once (nothing failed, so nothing was repeated).
    assert ids == sorted(lines), ids
    for r in acc:
        check_request(r, lines[r.id])
    assert receiver.failed() == []
    # Per user, the changes come in the order they were made.
    for m in mbs:
        states = [(r.json["state"], r.json["subject"]) for r in acc if r.json["user"] == m]
        assert states == [("free", None), ("busy", "First"), ("busy", "Second"), ("free", None)], states
    assert cs.stop() == 0


def test_receiver_down_then_up_gets_everything_in_order(sim, calsync_factory, receiver):
    mbs = [user(3), user(4)]
    cs = start(calsync_factory, sim, receiver, mbs)
    wait_delivered(cs, receiver)
    # Down, answering 500: the changes queue up, the same event is retried.
    receiver.answer(500)
    changes(cs, sim, mbs[0], 1)
    wait_for(lambda: len(receiver.failed()) >= 2, timeout=10, what="two failed attempts")
    failed_ids = {r.id for r in receiver.failed()}
    assert len(failed_ids) == 1, failed_ids  # never skips ahead
    # Down, refusing connections.
    receiver.refuse()
    receiver.answer(200)
    refused = log_count(cs, "Connection refused") + log_count(cs, "Couldn't connect")
    changes(cs, sim, mbs[1], 1)
    wait_for(lambda: log_count(cs, "Connection refused") + log_count(cs, "Couldn't connect") > refused,
             timeout=10, what="a refused connection in calsync's log")
    assert log_count(cs, "not delivered, retrying") >= 1
    receiver.listen()
    acc = wait_delivered(cs, receiver)
    lines = {ln["id"]: ln for ln in cs.lines()}
    ids = [r.id for r in acc]
    assert ids == sorted(lines), ids  # every change, in order, no gap, no repeat
    for r in acc:
        check_request(r, lines[r.id])
    for m in mbs:
        mine = [ln["id"] for ln in cs.lines_for(m)]
        assert [i for i in ids if i in set(mine)] == mine
    wait_for(lambda: log_count(cs, "delivering again after") >= 1, timeout=5, what="the recovery logged")
    assert SECRET not in cs.stderr_text()
    assert cs.stop() == 0


def test_kill9_loses_nothing(sim, calsync_factory, receiver):
    mbs = [user(5), user(6)]
    cs = start(calsync_factory, sim, receiver, mbs)
    wait_delivered(cs, receiver)
    delivered_before = [r.id for r in receiver.accepted()]
    receiver.answer(500)
    for m in mbs:
        changes(cs, sim, m, 1)
    wait_for(lambda: len(receiver.failed()) >= 1, timeout=10, what="a failed attempt")
    pending = [ln["id"] for ln in cs.lines() if ln["id"] > max(delivered_before)]
    assert len(pending) == 6, pending
    cs.kill9()
    # The cursor in the store stayed at the last delivered event.
    assert cs.query("SELECT last_id FROM webhook_cursors") == [(max(delivered_before),)]
    receiver.answer(200)
    restart(cs)
    acc = wait_delivered(cs, receiver)
    ids = [r.id for r in acc]
    lines = {ln["id"]: ln for ln in cs.lines()}
    # Every id once, in order: the kill came between attempts, so nothing was in flight.
    assert ids == sorted(lines), ids
    for r in acc:
        check_request(r, lines[r.id])
    # Changes after the restart are delivered too.
    changes(cs, sim, mbs[0], len(cs.lines_for(mbs[0])))
    acc = wait_delivered(cs, receiver)
    assert [r.id for r in acc] == sorted(ln["id"] for ln in cs.lines())
    assert cs.stop() == 0


def test_kill9_during_delivery_repeats_at_most_the_event_in_flight(sim, calsync_factory, receiver):
    mbs = [user(7)]
    cs = start(calsync_factory, sim, receiver, mbs)
    wait_delivered(cs, receiver)
    # Queue changes while the receiver is down, then let them flow and kill calsync at once.
    receiver.refuse()
    changes(cs, sim, mbs[0], 1)
    wait_for(lambda: log_count(cs, "not delivered, retrying") >= 1, timeout=10, what="a failed attempt")
    receiver.listen()
    wait_for(lambda: len(receiver.accepted()) >= 2, timeout=DEADLINE, what="a delivery after the outage")
    cs.kill9()
    restart(cs)
    acc = wait_delivered(cs, receiver)
    ids = [r.id for r in acc]
    want = sorted(ln["id"] for ln in cs.lines())
    # Everything arrived in order; at most one event (the one in flight at the kill) twice.
    dedup = sorted(set(ids))
    assert dedup == want, (ids, want)
    assert ids == sorted(ids), ids
    assert len(ids) - len(dedup) <= 1, ids
    assert cs.stop() == 0


def test_retry_for_drops_old_events(sim, calsync_factory, receiver):
    mbs = [user(8)]
    receiver.refuse()
    cs = start(calsync_factory, sim, receiver, mbs, retry_for="3s")
    changes(cs, sim, mbs[0], 1)
    doomed = [ln["id"] for ln in cs.lines()]
    assert doomed
    # Each is given up once older than 3 s, and the log says so.
    wait_for(lambda: all("event %d (%s) dropped" % (i, mbs[0]) in cs.stderr_text() for i in doomed),
             timeout=15, what="events %s dropped" % doomed)
    assert "undelivered for more than 3s (retry_for)" in cs.stderr_text()
    receiver.listen()
    changes(cs, sim, mbs[0], len(doomed))
    fresh = [ln["id"] for ln in cs.lines() if ln["id"] > max(doomed)]
    assert fresh
    wait_for(lambda: [r.id for r in receiver.accepted()] == fresh, timeout=DEADLINE,
             what="the new events %s delivered" % fresh)
    lines = {ln["id"]: ln for ln in cs.lines()}
    for r in receiver.accepted():
        check_request(r, lines[r.id])
    assert not set(doomed) & {r.id for r in receiver.all()}
    assert cs.stop() == 0


def test_without_secret_no_signature_and_new_target_starts_now(sim, calsync_factory, receiver):
    mbs = [user(9)]
    for m in mbs:
        clear_calendar(sim, m)
    cs = calsync_factory(sim, mbs)
    cs.start()
    cs.wait_live()
    cs.wait_line(mbs[0], 10, reason="initial")
    assert cs.stop() == 0
    before = cs.max_id()
    # The target is added later: it gets the changes from then on, not the old ones.
    cs.write_config(extra=webhook_xml(receiver.url))
    restart(cs)
    wait_for(lambda: "new target, delivering the changes after event %d" % before in cs.stderr_text(),
             timeout=10, what="the new target logged")
    changes(cs, sim, mbs[0], 1)
    want = [ln["id"] for ln in cs.lines() if ln["id"] > before]
    assert want
    wait_for(lambda: [r.id for r in receiver.accepted()] == want, timeout=DEADLINE, what="changes delivered")
    for r in receiver.accepted():
        assert "x-calsync-signature" not in {k.lower() for k in r.headers}
    assert cs.stop() == 0
