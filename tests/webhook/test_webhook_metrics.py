"""Webhook delivery in GET /metrics and GET /v1/status: per target (labelled with its URL
without the query, which may hold a secret), the deliveries, failed attempts, dropped and
pending events match what the receiver saw, through an outage of the receiver."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))

from apiclient import sample, wait_api  # noqa: E402
from calsyncproc import clear_calendar, user  # noqa: E402
from simharness import wait_for  # noqa: E402
from test_webhooks import changes, wait_delivered  # noqa: E402

QUERY_SECRET = "q-s3cret"


@pytest.fixture(scope="module")
def sim(module_sim_factory):
    return module_sim_factory("--mailboxes", "20")


def counters(api, label):
    m = api.metrics()
    return {k: sample(m, "calsync_webhook_" + k, url=label)
            for k in ("delivered_total", "failures_total", "dropped_total", "pending")}


def test_counters_match_deliveries(sim, calsync_factory, receiver):
    mbs = [user(11), user(12)]
    for m in mbs:
        clear_calendar(sim, m)
    url = receiver.url + "?key=" + QUERY_SECRET
    cs = calsync_factory(sim, mbs, extra='<webhooks><webhook url="%s"/></webhooks>' % url)
    cs.start()
    api = wait_api(cs, None)
    cs.wait_live()
    for m in mbs:
        cs.wait_line(m, 10, reason="initial")
    wait_delivered(cs, receiver)
    label = receiver.url

    # Everything delivered: the counters say exactly what the receiver accepted.
    def settled(want_delivered, want_failures):
        c = counters(api, label)
        return c if (c["delivered_total"] == want_delivered and c["failures_total"] == want_failures
                     and c["pending"] == 0) else None
    c = wait_for(lambda: settled(len(receiver.accepted()), 0), timeout=10, interval=0.05,
                 what="the counters to match the deliveries")
    assert c["dropped_total"] == 0
    m = api.metrics()
    assert m["types"]["calsync_webhook_delivered_total"] == "counter"
    assert m["types"]["calsync_webhook_pending"] == "gauge"
    r = api.get("/metrics")
    assert QUERY_SECRET not in r.body

    # The receiver fails: attempts count as failures, the changes as pending.
    receiver.answer(500)
    changes(cs, sim, mbs[0], 1)
    wait_for(lambda: len(receiver.failed()) >= 2, timeout=10, what="two failed attempts")

    def failing():
        c = counters(api, label)
        return c if c["failures_total"] >= 2 and c["pending"] >= 1 else None
    c = wait_for(failing, timeout=10, interval=0.05, what="failures and pending in /metrics")
    assert c["delivered_total"] == len(receiver.accepted())
    # /v1/status says the same.
    st = api.ok("GET", "/v1/status")
    assert [w["url"] for w in st["webhooks"]] == [label], st["webhooks"]
    assert st["webhooks"][0]["failures"] >= 2 and st["webhooks"][0]["pending"] >= 1

    # Back: everything delivered, nothing pending, every failed attempt counted once.
    receiver.answer(200)
    wait_delivered(cs, receiver)
    c = wait_for(lambda: settled(len(receiver.accepted()), len(receiver.failed())), timeout=15,
                 interval=0.05, what="the counters to match after the outage")
    assert c["dropped_total"] == 0
    st = api.ok("GET", "/v1/status")
    w = st["webhooks"][0]
    assert (w["delivered"], w["failures"], w["dropped"], w["pending"]) == (
        len(receiver.accepted()), len(receiver.failed()), 0, 0), w
    assert QUERY_SECRET not in api.get("/v1/status").body
    assert cs.stop() == 0


def test_no_webhooks_no_webhook_metrics(sim, calsync_factory):
    cs = calsync_factory(sim, [user(13)])
    cs.start()
    api = wait_api(cs, None)
    cs.wait_live()
    m = api.metrics()
    assert not [k for k in m["types"] if "webhook" in k]
    assert api.ok("GET", "/v1/status")["webhooks"] == []
    assert cs.stop() == 0
