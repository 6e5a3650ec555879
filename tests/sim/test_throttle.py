"""EWSMaxConcurrency, the EwsMaxBurst/EwsRechargeRate/EwsCutoffBalance time budget and the
limits control route, against a running ews-sim."""

import threading
import time

from lxml import etree

import ews
import ewsstream as es
from simharness import NS, wait_for

A = "user00001@contoso.example"
B = "user00002@contoso.example"


def fault_values(r):
    return {v.get("Name"): v.text for v in r.xpath("//s:Fault/detail/t:MessageXml/t:Value")}


def slow_calls(sim, n, impersonate):
    """Start n Subscribe calls that the delay fault keeps in flight; returns (threads, results)."""
    results = []

    def run():
        results.append(ews.call(sim, es.pull_body(), impersonate=impersonate))

    ts = [threading.Thread(target=run) for _ in range(n)]
    for t in ts:
        t.start()
    return ts, results


def test_max_concurrency_per_budget(sim_factory):
    s = sim_factory()
    s.control("POST", "/limits", {"ews_max_concurrency": 2}, expect=200)
    s.control("POST", "/faults", {"kind": "delay", "seconds": 1.5, "operation": "Subscribe", "count": 2},
              expect=201)
    ts, results = slow_calls(s, 2, A)
    wait_for(lambda: s.counters()["requests_in_flight"].get("mailbox:" + A) == 2, what="2 requests in flight")
    r = ews.call(s, es.pull_body(), impersonate=A)
    assert r.status == 500 and r.fault_code() == "ErrorExceededConnectionCount"
    assert r.xpath("//s:Fault/faultcode")[0].text == "a:ErrorExceededConnectionCount"
    assert fault_values(r) == {"Policy": "MaxConcurrency", "MaxConcurrencyLimit": "2"}
    # Another impersonated mailbox is another budget; so is the account itself.
    assert ews.call(s, es.pull_body(), impersonate=B).codes() == ["NoError"]
    assert ews.call(s, es.pull_body()).codes() == ["NoError"]
    for t in ts:
        t.join(30)
    assert [x.codes() for x in results] == [["NoError"], ["NoError"]]
    assert ews.call(s, es.pull_body(), impersonate=A).codes() == ["NoError"]
    c = s.counters()
    assert c["rejections"]["ErrorExceededConnectionCount:MaxConcurrency"] == 1
    assert c["requests_in_flight"] == {"total": 0}


def test_max_concurrency_unlimited(sim_factory):
    s = sim_factory()
    s.control("POST", "/limits", {"ews_max_concurrency": "unlimited"}, expect=200)
    assert s.control("GET", "/limits")[1]["ews_max_concurrency"] is None
    s.control("POST", "/faults", {"kind": "delay", "seconds": 0.5, "count": 40}, expect=201)
    ts, results = slow_calls(s, 40, A)
    for t in ts:
        t.join(30)
    assert all(x.codes() == ["NoError"] for x in results) and len(results) == 40


def test_default_limit_is_27(sim_factory):
    s = sim_factory()
    lim = s.control("GET", "/limits")[1]
    assert lim["ews_max_concurrency"] == 27 and lim["hanging_connection_limit"] == 10
    assert lim["ews_max_subscriptions"] == 5000
    assert lim["ews_cutoff_balance"] is None and lim["ews_request_cost_ms"] == 0
    s.control("POST", "/faults", {"kind": "delay", "seconds": 2, "count": 27}, expect=201)
    ts, results = slow_calls(s, 27, A)
    wait_for(lambda: s.counters()["requests_in_flight"].get("mailbox:" + A) == 27, what="27 in flight")
    r = ews.call(s, es.pull_body(), impersonate=A)
    assert r.fault_code() == "ErrorExceededConnectionCount"
    assert fault_values(r)["MaxConcurrencyLimit"] == "27"
    for t in ts:
        t.join(30)


def test_budget_overdraft_delay_then_server_busy(sim_factory):
    s = sim_factory("--time-scale", "100")
    # 1000 ms per request, a 1000 ms burst, 36 s/h recharge (10 ms per sim second), cut off at 0.
    s.control("POST", "/limits", {"ews_request_cost_ms": 1000, "ews_max_burst": 1000,
                                  "ews_recharge_rate": 36000, "ews_cutoff_balance": 0}, expect=200)
    assert ews.call(s, es.pull_body(), impersonate=A).codes() == ["NoError"]  # balance 1000 -> 0
    assert s.counters().get("throttle_delays", {}).get("", 0) == 0  # within the burst: no delay
    t1 = time.monotonic()
    assert ews.call(s, es.pull_body(), impersonate=A).codes() == ["NoError"]  # -> -1000: delayed
    t2 = time.monotonic()
    # Delayed by the time to earn the cost back, capped at 60 sim s = 0.6 s here. Only the
    # lower bound is asserted: a loaded machine can make a request slower, never faster.
    assert s.counters()["throttle_delays"][""] == 1 and t2 - t1 >= 0.5
    r = ews.call(s, es.pull_body(), impersonate=A)
    assert r.status == 500 and r.fault_code() == "ErrorServerBusy"
    assert r.xpath("//s:Fault/faultcode")[0].text == "a:ErrorServerBusy"
    backoff = int(fault_values(r)["BackOffMilliseconds"])
    assert 0 < backoff <= 100_000  # sim ms until the balance is back at 0
    # Another budget is unaffected.
    assert ews.call(s, es.pull_body(), impersonate=B).codes() == ["NoError"]
    # After the back-off (sim time: backoff / 100 real ms) requests pass again.
    wait_for(lambda: ews.call(s, es.pull_body(), impersonate=A).codes() == ["NoError"],
             timeout=backoff / 100 / 1000 + 5, interval=0.05, what="budget recharged")
    c = s.counters()
    assert c["rejections"]["ErrorServerBusy"] >= 1 and c["throttle_delays"][""] >= 1
    assert "mailbox:" + A in c["budget_balance_ms"]
    # Back to Exchange's defaults: unlimited cutoff never refuses.
    s.control("POST", "/limits", {"ews_cutoff_balance": "unlimited", "ews_request_cost_ms": 0}, expect=200)
    assert ews.call(s, es.pull_body(), impersonate=A).codes() == ["NoError"]


def test_budget_does_not_apply_to_streaming(sim_factory):
    s = sim_factory("--time-scale", "60", "--heartbeat", "30")
    _, sid, _ = es.subscribe(s, A)
    s.control("POST", "/limits", {"ews_request_cost_ms": 1000, "ews_max_burst": 0,
                                  "ews_recharge_rate": 0, "ews_cutoff_balance": 0}, expect=200)
    r = ews.call(s, es.pull_body(), impersonate=A)
    assert r.fault_code() == "ErrorServerBusy" or r.codes() == ["NoError"]
    st = es.Stream(s, [sid], timeout=1, impersonate=A)
    assert st.next(5).status == "OK"
    st.close()


def test_limits_route_validation(sim_factory):
    s = sim_factory()
    assert s.control("POST", "/limits", {"ews_max_burst": -1})[0] == 400
    assert s.control("POST", "/limits", {"no_such_limit": 1})[0] == 400
    assert s.control("POST", "/limits", {"hanging_connection_limit": "ten"})[0] == 400
    lim = s.control("POST", "/limits", {"hanging_connection_limit": "unlimited"}, expect=200)[1]
    assert lim["hanging_connection_limit"] is None
    for k in ("ews_max_burst", "ews_recharge_rate", "ews_cutoff_balance", "ews_request_cost_ms"):
        assert k in lim


def test_hanging_limit_unlimited(sim_factory):
    s = sim_factory("--time-scale", "60", "--heartbeat", "30", "--hanging-connection-limit", "unlimited")
    subs = [es.subscribe(s, A)[1] for _ in range(12)]
    streams = [es.Stream(s, [x], timeout=5) for x in subs]
    for st in streams:
        assert st.next(5).status == "OK"
    assert s.counters()["hanging_connections"]["account:svc@contoso.example"] == 12
    for st in streams:
        st.close()


def test_hanging_limit_default_10(sim_factory):
    s = sim_factory("--time-scale", "60", "--heartbeat", "30")
    subs = [es.subscribe(s, A)[1] for _ in range(11)]
    streams = [es.Stream(s, [x], timeout=5) for x in subs[:10]]
    for st in streams:
        assert st.next(5).status == "OK"
    r = es.Stream(s, [subs[10]], timeout=5)
    assert r.status == 500 and r.fault_code() == "ErrorExceededConnectionCount"
    doc = etree.fromstring(r.body)
    assert doc.xpath("//s:Fault/detail/t:MessageXml/t:Value[@Name='MaxConcurrencyLimit']/text()",
                     namespaces=NS) == ["10"]
    for st in streams:
        st.close()
