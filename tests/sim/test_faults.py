"""Faults on demand (POST /faults and the /faults/... actions) against a running ews-sim."""

import time

import pytest
from lxml import etree

import ews
import ewsstream as es
from simharness import NS, wait_for

A = "user00001@contoso.example"  # EXCH02
B = "user00002@contoso.example"  # EXCH01
C = "user00003@contoso.example"  # EXCH02


@pytest.fixture
def fast(sim_factory):
    return sim_factory("--time-scale", "60", "--heartbeat", "30")


def inject(sim, **kw):
    return sim.control("POST", "/faults", kw, expect=201)[1]


def ok_call(sim, mailbox=A):
    return ews.call(sim, es.pull_body(), impersonate=mailbox)


# -- request faults -------------------------------------------------------------------------


def test_http_503_next_n_requests(fast):
    inject(fast, kind="http_503", count=2, retry_after=5)
    for _ in range(2):
        r = ok_call(fast)
        assert r.status == 503 and b"Service Unavailable" in r.body
        assert dict((k.lower(), v) for k, v in r.headers)["retry-after"] == "5"
    assert ok_call(fast).codes() == ["NoError"]
    assert fast.control("GET", "/faults")[1]["faults"] == []
    assert fast.counters()["faults_injected"]["http_503"] == 2


def test_http_500_without_xml(fast):
    inject(fast, kind="http_500")
    r = ok_call(fast)
    assert r.status == 500
    assert dict((k.lower(), v) for k, v in r.headers)["content-type"].startswith("text/html")
    assert b"Envelope" not in r.body
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(r.body)


def test_ews_fault_server_busy(fast):
    inject(fast, kind="ews_fault", code="ErrorServerBusy", back_off_ms=30000)
    r = ok_call(fast)
    assert r.status == 500 and r.fault_code() == "ErrorServerBusy"
    vals = {v.get("Name"): v.text for v in r.xpath("//s:Fault/detail/t:MessageXml/t:Value")}
    assert vals == {"BackOffMilliseconds": "30000"}


def test_ews_fault_internal_error_wrapping_inner_code(fast):
    inject(fast, kind="ews_fault", code="ErrorInternalServerError", inner_code="ErrorServerBusy")
    r = ok_call(fast)
    assert r.fault_code() == "ErrorInternalServerError"
    vals = {v.get("Name"): v.text for v in r.xpath("//s:Fault/detail/t:MessageXml/t:Value")}
    assert vals["InnerErrorResponseCode"] == "ErrorServerBusy" and vals["InnerErrorMessageText"]


def test_ews_error_in_200_response_message(fast):
    _, sid, wm = es.subscribe(fast, A, kind="pull")
    inject(fast, kind="ews_error", code="ErrorInternalServerError", inner_code="ErrorServerBusy",
           operation="GetEvents")
    r = ews.call(fast, es.getevents_body(sid, wm), impersonate=A)
    assert r.status == 200 and r.codes() == ["ErrorInternalServerError"]
    assert r.xpath("//m:GetEventsResponseMessage/@ResponseClass") == ["Error"]
    vals = {v.get("Name"): v.text for v in r.xpath("//m:MessageXml/t:Value")}
    assert vals["InnerErrorResponseCode"] == "ErrorServerBusy"
    assert ews.call(fast, es.getevents_body(sid, wm), impersonate=A).codes() == ["NoError"]


def test_ews_error_on_streaming_is_error_then_closed(fast):
    _, sid, _ = es.subscribe(fast, A)
    inject(fast, kind="ews_error", code="ErrorServerBusy", back_off_ms=1000, operation="GetStreamingEvents")
    st = es.Stream(fast, [sid], timeout=1, impersonate=A)
    msgs = st.rest(5)
    assert len(msgs) == 1 and msgs[0].code == "ErrorServerBusy" and msgs[0].status == "Closed"
    assert msgs[0].error_ids == []
    assert [v.text for v in msgs[0].x("m:MessageXml/t:Value")] == ["1000"]


def test_fault_filters(fast):
    inject(fast, kind="http_503", count=None, mailbox=B)
    inject(fast, kind="http_500", count=None, operation="Unsubscribe")
    assert ok_call(fast, A).codes() == ["NoError"]
    assert ok_call(fast, B).status == 503
    assert ok_call(fast, B).status == 503  # until cleared
    assert ews.call(fast, es.unsubscribe_body("x"), impersonate=A).status == 500
    f = fast.control("GET", "/faults")[1]["faults"]
    assert [x["kind"] for x in f] == ["http_503", "http_500"] and f[0]["hits"] == 2
    fast.control("DELETE", "/faults/%d" % f[0]["id"], expect=200)
    assert ok_call(fast, B).codes() == ["NoError"]
    fast.control("DELETE", "/faults", expect=200)
    assert ews.call(fast, es.unsubscribe_body("x"), impersonate=A).status == 200
    # budget and backend filters
    inject(fast, kind="http_503", budget="account:svc@contoso.example")
    assert ok_call(fast, A).codes() == ["NoError"]
    assert ews.call(fast, es.pull_body()).status == 503
    inject(fast, kind="http_503", backend="EXCH01")
    assert ok_call(fast, A).codes() == ["NoError"]  # routed to EXCH02
    assert ok_call(fast, B).status == 503


def test_delay_fault(fast):
    inject(fast, kind="delay", seconds=60)  # 60 sim s = 1 real s at --time-scale 60
    t = time.monotonic()
    assert ok_call(fast).codes() == ["NoError"]
    assert time.monotonic() - t >= 0.9
    # count 1: the fault is used up, so the next call is not delayed (checked by state, not
    # by timing, which a loaded machine would make flaky)
    assert fast.control("GET", "/faults", expect=200)[1]["faults"] == []
    assert ok_call(fast).codes() == ["NoError"]


def test_fault_route_validation(fast):
    assert fast.control("POST", "/faults", {"kind": "nope"})[0] == 400
    assert fast.control("POST", "/faults", {"kind": "ews_fault"})[0] == 400
    assert fast.control("POST", "/faults", {"kind": "delay"})[0] == 400
    assert fast.control("POST", "/faults", {"kind": "http_503", "count": 0})[0] == 400
    assert fast.control("POST", "/faults", {"kind": "http_503", "backend": 7})[0] == 400
    assert fast.control("POST", "/faults", {"kind": "stream_write", "batch": 0})[0] == 400
    assert fast.control("DELETE", "/faults/99")[0] == 404
    assert fast.control("POST", "/faults/streams/drop", {"how": "gently"})[0] == 400


# -- stream faults --------------------------------------------------------------------------


def open_stream(sim, mailbox=A, n=1, timeout=5):
    ids = [es.subscribe(sim, mailbox)[1] for _ in range(n)]
    st = es.Stream(sim, ids, timeout=timeout, impersonate=mailbox)
    assert st.next(5).status == "OK"
    return st, ids


def test_drop_streams_reset(fast):
    st, _ = open_stream(fast)
    other, _ = open_stream(fast, B)
    assert fast.control("POST", "/faults/streams/drop", {"backend": 1}, expect=200)[1] == {"dropped": 1}
    assert st.rest(5) == [] and st.reset and not st.eof
    es.emit(fast, B, "CreatedEvent")
    assert other.until(lambda m: m.notifications())  # the other backend's stream lives on
    other.close()


def test_drop_streams_eof_and_closed(fast):
    st1, ids1 = open_stream(fast)
    st2, ids2 = open_stream(fast)
    fast.control("POST", "/faults/streams/drop", {"subscription": ids1[0], "how": "eof"}, expect=200)
    assert st1.rest(5) == [] and st1.eof  # body ended properly, but without Closed
    fast.control("POST", "/faults/streams/drop", {"subscription": ids2[0], "how": "closed"}, expect=200)
    rest = st2.rest(5)
    assert [m.status for m in rest] == ["Closed"] and st2.eof
    # The subscriptions survive a dropped connection.
    st3 = es.Stream(fast, ids1 + ids2, timeout=1, impersonate=A)
    assert st3.next(5).status == "OK"
    assert st3.rest(5)[-1].status == "Closed"
    assert fast.counters()["streams_dropped"] == {"eof": 1, "closed": 1}


def test_half_open_stops_writing(fast):
    st, ids = open_stream(fast)
    assert st.next(5).is_heartbeat  # heartbeats every 0.5 s real
    assert fast.control("POST", "/faults/streams/half-open", {"subscription": ids[0]}, expect=200)[1] == {
        "half_open": 1}
    # Drain what was already on its way, then silence: no heartbeats, no events, no EOF.
    while st.next(0.3) is not None:
        pass
    es.emit(fast, A, "CreatedEvent")
    assert st.next(2.0) is None and not st.eof and not st.reset
    # The client gives up and reconnects: the new connection takes the subscription over.
    st2 = es.Stream(fast, ids, timeout=1, impersonate=A)
    assert st2.next(5).status == "OK"
    es.emit(fast, A, "ModifiedEvent")
    m = st2.until(lambda m: m.notifications())
    assert es.event_kinds(m.notifications()[ids[0]]) == ["ModifiedEvent"]  # the Created was lost
    st.close()
    wait_for(lambda: fast.counters()["streaming_connections"]["total"] <= 1, what="half-open stream gone")


def test_half_open_next_stream(fast):
    inject(fast, kind="stream_half_open", mailbox=A)
    _, sid, _ = es.subscribe(fast, A)
    st = es.Stream(fast, [sid], timeout=1, impersonate=A)
    assert st.status == 200 and st.next(2.5) is None and not st.eof
    st2 = es.Stream(fast, [sid], timeout=1, impersonate=A)  # the fault was for one stream
    assert st2.next(5).status == "OK"
    st.close()


def test_batch_writes_several_envelopes_per_chunk(fast):
    inject(fast, kind="stream_write", batch=2)
    _, sid, _ = es.subscribe(fast, A)
    es.emit(fast, A, "CreatedEvent")  # queued: status OK + notification are written together
    st = es.Stream(fast, [sid], timeout=1, impersonate=A)
    msgs = [st.next(5), st.next(5)]
    assert msgs[0].status == "OK" and msgs[1].notifications()
    assert len(st.chunks) == 1 and st.body.count(b"</Envelope>") == 2
    rest = st.rest(10)
    assert rest[-1].status == "Closed"
    # Every chunk but possibly the last holds two envelopes.
    assert len(st.chunks) == (2 + len(rest) + 1) // 2


def test_split_every_n_bytes(fast):
    inject(fast, kind="stream_write", split_every=7)
    _, sid, _ = es.subscribe(fast, A)
    st = es.Stream(fast, [sid], timeout=1, impersonate=A)
    es.emit(fast, A, "CreatedEvent")
    msgs = st.rest(10)
    assert msgs[-1].status == "Closed" and any(m.notifications() for m in msgs)
    # Each write (here one envelope) is cut into 7-byte chunks, the last one shorter.
    sizes = list(st.chunks)
    for m in msgs:
        n = len(m.raw)
        want = [7] * (n // 7) + ([n % 7] if n % 7 else [])
        assert sizes[:len(want)] == want
        del sizes[:len(want)]
    assert sizes == []


def test_split_random_offsets_reproducible(fast):
    inject(fast, kind="stream_write", split_seed=42, split_max=50)
    _, sid, _ = es.subscribe(fast, A)
    runs = []
    for _ in range(2):
        st = es.Stream(fast, [sid], timeout=1, impersonate=A)
        msgs = st.rest(10)
        assert msgs[0].status == "OK" and msgs[-1].status == "Closed"
        runs.append(st.chunks[:20])
        assert max(st.chunks) <= 50
    assert runs[0] == runs[1]


def test_restart_backend(fast):
    st, ids = open_stream(fast)  # on EXCH02
    _, pull_a, wm_a = es.subscribe(fast, C, kind="pull")  # EXCH02
    _, pull_b, wm_b = es.subscribe(fast, B, kind="pull")  # EXCH01
    r = fast.control("POST", "/faults/backends/EXCH02/restart", {}, expect=200)[1]
    assert r == {"backend": "EXCH02", "generation": 2, "subscriptions_lost": 2, "streams_cut": 1}
    assert st.rest(5) == [] and st.reset
    assert ews.call(fast, es.getevents_body(pull_a, wm_a), impersonate=C).codes() == ["ErrorSubscriptionNotFound"]
    assert ews.call(fast, es.getevents_body(pull_b, wm_b), impersonate=B).codes() == ["NoError"]
    m = es.Stream(fast, ids, timeout=1, impersonate=A).rest(5)[0]
    assert m.code == "ErrorSubscriptionNotFound" and m.status == "Closed"
    # The event table survives the restart: resuming from the watermark works.
    r, sid, _ = es.subscribe(fast, C, kind="pull", watermark=wm_a)
    assert r.codes() == ["NoError"]
    assert fast.control("GET", "/backends")[1][1]["generation"] == 2
    assert fast.control("POST", "/faults/backends/9/restart", {})[0] == 404


def test_expire_subscriptions(fast):
    _, p1, wm1 = es.subscribe(fast, A, kind="pull")
    _, p2, wm2 = es.subscribe(fast, A, kind="pull")
    st, (s1, s2) = open_stream(fast, n=2)
    fast.control("POST", "/faults/subscriptions/expire", {"ids": [p1, s1]}, expect=200)
    assert ews.call(fast, es.getevents_body(p1, wm1), impersonate=A).codes() == ["ErrorSubscriptionNotFound"]
    m = st.until(lambda m: m.response_class == "Error")
    assert (m.code, m.error_ids, m.status) == ("ErrorSubscriptionNotFound", [s1], "OK")
    # Caught mid-deletion: ErrorExpiredSubscription once, then not found.
    fast.control("POST", "/faults/subscriptions/expire", {"ids": [p2], "mid_deletion": True}, expect=200)
    assert ews.call(fast, es.getevents_body(p2, wm2), impersonate=A).codes() == ["ErrorExpiredSubscription"]
    assert ews.call(fast, es.getevents_body(p2, wm2), impersonate=A).codes() == ["ErrorSubscriptionNotFound"]
    # The last subscription of a stream: error with Closed.
    fast.control("POST", "/faults/subscriptions/expire", {"ids": [s2], "stream_code": "ErrorInvalidSubscription"},
                 expect=200)
    m = st.until(lambda m: m.response_class == "Error")
    assert (m.code, m.error_ids, m.status) == ("ErrorInvalidSubscription", [s2], "Closed")
    assert st.rest(5) == [] and st.eof


def test_missed_events_pull(fast):
    _, sid, wm = es.subscribe(fast, A, kind="pull")
    es.emit(fast, A, "CreatedEvent")
    fast.control("POST", "/faults/missed-events", {"subscription": sid}, expect=200)
    before = fast.counters()["events"].get("missed_reported", 0)
    r = ews.call(fast, es.getevents_body(sid, wm), impersonate=A)
    assert r.codes() == ["ErrorMissedNotificationEvents"]
    assert fast.counters()["events"].get("missed_reported", 0) == before + 1
    es.emit(fast, A, "ModifiedEvent")
    r = ews.call(fast, es.getevents_body(sid, wm), impersonate=A)
    n = r.xpath("//m:Notification")[0]
    assert [etree.QName(e).localname for e in n][3:] == ["ModifiedEvent"]  # the Created was lost


def test_missed_events_streaming(fast):
    st, (sid,) = open_stream(fast)
    _, idle, _ = es.subscribe(fast, A)
    assert fast.control("POST", "/faults/missed-events", {"mailbox": A}, expect=200)[1] == {"affected": 2}
    m = st.until(lambda m: m.response_class == "Error")
    assert (m.code, m.error_ids, m.status) == ("ErrorMissedNotificationEvents", [sid], "OK")
    es.emit(fast, A, "CreatedEvent")
    assert st.until(lambda m: m.notifications()).notifications()[sid]
    st.close()
    st2 = es.Stream(fast, [idle], timeout=1, impersonate=A)
    assert st2.next(5).status == "OK"
    m = st2.next(5)
    assert (m.code, m.error_ids) == ("ErrorMissedNotificationEvents", [idle])


def test_move_mailbox(fast):
    _, pull, wm = es.subscribe(fast, A, kind="pull")
    st, (sid,) = open_stream(fast)
    r = fast.control("POST", "/faults/mailboxes/move", {"mailbox": A, "backend": 0, "window_seconds": 120},
                     expect=200)[1]
    assert r["from"] == "EXCH02" and r["to"] == "EXCH01" and r["subscriptions_lost"] == 2
    m = st.until(lambda m: m.response_class == "Error")
    assert (m.code, m.error_ids, m.status) == ("ErrorSubscriptionNotFound", [sid], "Closed")
    # During the move window, requests acting on the mailbox fail.
    r = ews.call(fast, es.pull_body(), impersonate=A)
    assert r.codes() == ["ErrorMailboxMoveInProgress"]
    st2 = es.Stream(fast, [sid], timeout=1, impersonate=A)
    assert [(x.code, x.status) for x in st2.rest(5)] == [("ErrorMailboxMoveInProgress", "Closed")]
    assert ok_call(fast, B).codes() == ["NoError"]
    fast.control("POST", "/clock", {"shift": 121}, expect=200)
    # Afterwards: old subscription gone, old watermark invalid, new home backend.
    assert ews.call(fast, es.getevents_body(pull, wm), impersonate=A).codes() == ["ErrorSubscriptionNotFound"]
    assert es.subscribe(fast, A, kind="pull", watermark=wm)[0].codes() == ["ErrorInvalidWatermark"]
    r, new, _ = es.subscribe(fast, A, kind="pull")
    assert r.codes() == ["NoError"]
    assert dict((k.lower(), v) for k, v in r.headers)["x-beserver"] == "EXCH01"
    assert fast.control("GET", "/mailboxes/" + A)[1]["backend"] == "EXCH01"


def test_fault_keys_checked(fast):
    st, err = fast.control("POST", "/faults", {"kind": "http_503", "opertion": "GetEvents"})
    assert st == 400 and "opertion" in err["error"]
    st, err = fast.control("POST", "/faults", {"kind": "ews_fault", "code": "ErrorServerBusy", "op": "Subscribe"})
    assert st == 400 and "op" in err["error"]
    f = inject(fast, kind="ews_fault", code="ErrorServerBusy", back_off_ms=2000, operation="Subscribe")
    assert f["filters"] == {"operation": ["Subscribe"]} and f["message_xml"] == [["BackOffMilliseconds", 2000]]
    r = ok_call(fast)
    assert r.fault_code() == "ErrorServerBusy"
    assert r.xpath("//t:MessageXml/t:Value[@Name='BackOffMilliseconds']/text()") == ["2000"]


def _calendar_view(sim, max_entries=None):
    mx = ' MaxEntriesReturned="%d"' % max_entries if max_entries is not None else ""
    body = ('<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>'
            '<m:CalendarView%s StartDate="2025-03-03T00:00:00Z" EndDate="2025-03-10T00:00:00Z"/>'
            '<m:ParentFolderIds><t:DistinguishedFolderId Id="calendar"/></m:ParentFolderIds></m:FindItem>' % mx)
    return ews.call(sim, body, impersonate=A)


def test_max_entries_over_filter(fast):
    """A fault for FindItems that ask for more than N items (or name no limit), as a server
    whose EWSFindCountLimit a whole window passes would answer them."""
    inject(fast, kind="ews_error", code="ErrorExceededFindCountLimit", count=None, max_entries_over=100)
    assert _calendar_view(fast).codes() == ["ErrorExceededFindCountLimit"]
    assert _calendar_view(fast, 101).codes() == ["ErrorExceededFindCountLimit"]
    assert _calendar_view(fast, 100).codes() == ["NoError"]
    assert ok_call(fast).codes() == ["NoError"]  # not a FindItem
    f = fast.control("GET", "/faults", expect=200)[1]["faults"]
    assert f[0]["filters"] == {"max_entries_over": 100} and f[0]["hits"] == 2
    for bad in (-1, "10", True):
        assert fast.control("POST", "/faults", {"kind": "http_503", "max_entries_over": bad})[0] == 400
