"""Affinity (Exchange 2013+): subscriptions live on the backend the Subscribe was routed to;
X-AnchorMailbox, X-PreferServerAffinity and X-BackEndOverrideCookie decide where later
requests go, and a request routed elsewhere gets ErrorSubscriptionNotFound."""

import base64

import pytest

import ews
import ewsstream as es

A = "user00001@contoso.example"  # anchor, on EXCH02
B = "user00002@contoso.example"  # member, on EXCH01
D = "user00004@contoso.example"  # member, on EXCH01


@pytest.fixture
def fast(sim_factory):
    return sim_factory("--time-scale", "60", "--heartbeat", "30")


def hdr(r, name):
    return dict((k.lower(), v) for k, v in r.headers)[name.lower()]


def affinity(cookie=None, anchor=A):
    h = {"X-AnchorMailbox": anchor, "X-PreferServerAffinity": "true"}
    if cookie:
        h["Cookie"] = "X-BackEndOverrideCookie=" + cookie
    return h


def fqdn_of(sid):
    raw = base64.b64decode(sid)
    return raw[2:raw.index(b"\x10\x00\x00\x00")].decode()


def group(sim, kind="streaming"):
    """Subscribe A (anchor) and B, D (members) the way Microsoft's recipe says."""
    r, sa, wa = es.subscribe(sim, A, kind=kind, headers=affinity())
    cookie = r.cookie("X-BackEndOverrideCookie")
    assert cookie and cookie.startswith("exch02.contoso.example~")
    out = {A: (sa, wa)}
    for m in (B, D):
        r, sid, wm = es.subscribe(sim, m, kind=kind, headers=affinity(cookie))
        assert r.codes() == ["NoError"] and hdr(r, "X-BEServer") == "EXCH02"
        out[m] = (sid, wm)
    return cookie, out


def test_group_subscriptions_live_on_the_anchor_backend(fast):
    cookie, subs = group(fast)
    assert {fqdn_of(s) for s, _ in subs.values()} == {"exch02.contoso.example"}
    ids = [s for s, _ in subs.values()]
    st = es.Stream(fast, ids, timeout=1, impersonate=A, headers=affinity(cookie))
    assert st.status == 200 and hdr_stream(st, "x-beserver") == "EXCH02"
    assert st.next(5).status == "OK"
    es.emit(fast, B, "CreatedEvent")
    es.emit(fast, D, "ModifiedEvent")
    got = {}
    while len(got) < 2:
        m = st.until(lambda m: m.notifications(), what="group events")
        got.update(m.notifications())
    assert set(got) == {subs[B][0], subs[D][0]}
    assert st.rest(5)[-1].status == "Closed"
    by_backend = fast.counters()["subscriptions_by_backend"]
    assert by_backend == {"EXCH02": 3}


def hdr_stream(st, name):
    return st.headers[name.lower()]


def test_without_affinity_member_routes_elsewhere(fast):
    cookie, subs = group(fast)
    ids = [subs[B][0], subs[D][0]]
    # No headers: the request goes to the impersonated member's own backend (EXCH01).
    st = es.Stream(fast, ids, timeout=1, impersonate=B)
    assert hdr_stream(st, "x-beserver") == "EXCH01"
    msgs = st.rest(5)
    assert [(m.code, m.status) for m in msgs] == [("ErrorSubscriptionNotFound", "Closed")]
    assert msgs[0].error_ids == ids
    # The cookie without X-PreferServerAffinity is not used either.
    st = es.Stream(fast, ids, timeout=1, impersonate=B,
                   headers={"Cookie": "X-BackEndOverrideCookie=" + cookie})
    assert st.rest(5)[0].code == "ErrorSubscriptionNotFound"
    # X-AnchorMailbox alone routes to the anchor's backend.
    st = es.Stream(fast, ids, timeout=1, impersonate=B, headers={"X-AnchorMailbox": A})
    assert st.next(5).status == "OK"
    st.close()


def test_pull_and_unsubscribe_need_affinity(fast):
    cookie, subs = group(fast, kind="pull")
    sid, wm = subs[B]
    r = ews.call(fast, es.getevents_body(sid, wm), impersonate=B)
    assert r.codes() == ["ErrorSubscriptionNotFound"]
    r = ews.call(fast, es.getevents_body(sid, wm), impersonate=B, headers=affinity(cookie))
    assert r.codes() == ["NoError"]
    assert ews.call(fast, es.unsubscribe_body(sid), impersonate=B).codes() == ["ErrorSubscriptionNotFound"]
    r = ews.call(fast, es.unsubscribe_body(sid), impersonate=B, headers=affinity(cookie))
    assert r.codes() == ["NoError"]


def test_cookie_only_on_anchor_subscribe(fast):
    r, _, _ = es.subscribe(fast, A, headers=affinity())
    cookie = r.cookie("X-BackEndOverrideCookie")
    assert cookie
    r, _, _ = es.subscribe(fast, B, headers=affinity(cookie))
    assert r.cookie("X-BackEndOverrideCookie") is None  # the client already has it


def test_hanging_connections_per_impersonated_mailbox(fast):
    fast.control("POST", "/limits", {"hanging_connection_limit": 1}, expect=200)
    cookie, subs = group(fast)
    ids = [s for s, _ in subs.values()]
    s1 = es.Stream(fast, ids[:1], timeout=5, impersonate=A, headers=affinity(cookie))
    assert s1.next(5).status == "OK"
    s2 = es.Stream(fast, ids[1:2], timeout=5, impersonate=B, headers=affinity(cookie))
    assert s2.next(5).status == "OK"
    s3 = es.Stream(fast, ids[2:], timeout=5, impersonate=A, headers=affinity(cookie))
    assert s3.status == 500 and s3.fault_code() == "ErrorExceededConnectionCount"
    s4 = es.Stream(fast, ids[2:], timeout=5, impersonate=D, headers=affinity(cookie))
    assert s4.next(5).status == "OK"
    assert fast.counters()["streaming_connections_by_budget"] == {
        "mailbox:" + A: 1, "mailbox:" + B: 1, "mailbox:" + D: 1}
    for s in (s1, s2, s4):
        s.close()


def test_anchor_move_keeps_group_routing(fast):
    cookie, subs = group(fast)
    fast.control("POST", "/faults/mailboxes/move", {"mailbox": A, "backend": 0}, expect=200)
    ids = [subs[A][0], subs[B][0], subs[D][0]]
    st = es.Stream(fast, ids, timeout=1, impersonate=B, headers=affinity(cookie))
    assert hdr_stream(st, "x-beserver") == "EXCH02"  # the cookie still decides
    assert st.next(5).status == "OK"
    m = st.next(5)
    assert (m.code, m.error_ids) == ("ErrorSubscriptionNotFound", [subs[A][0]])  # the moved anchor's
    es.emit(fast, B, "CreatedEvent")
    assert subs[B][0] in st.until(lambda m: m.notifications()).notifications()
    st.close()


def test_backend_restart_loses_group_even_with_cookie(fast):
    cookie, subs = group(fast)
    fast.control("POST", "/faults/backends/1/restart", {}, expect=200)
    ids = [s for s, _ in subs.values()]
    st = es.Stream(fast, ids, timeout=1, impersonate=A, headers=affinity(cookie))
    msgs = st.rest(5)
    assert [(m.code, m.status) for m in msgs] == [("ErrorSubscriptionNotFound", "Closed")]
    # Resubscribing works and yields ids of the new generation.
    r, sid, _ = es.subscribe(fast, A, headers=affinity(cookie))
    assert r.codes() == ["NoError"]
    assert base64.b64decode(sid)[-8:] != base64.b64decode(ids[0])[-8:]
