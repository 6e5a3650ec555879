"""Subscribe / GetEvents / GetStreamingEvents / Unsubscribe against a running ews-sim.

Streams are read over a raw socket (ewsstream.Stream) so that the chunked body is seen as
Exchange would send it. Timers run at --time-scale 60 (1 sim minute = 1 real second)."""

import base64
import os
import threading
from urllib.parse import quote

import pytest
from lxml import etree

import ews
import ewsstream as es
from simharness import NS, SCHEMA_DIR, wait_for

A = "user00001@contoso.example"  # backend EXCH02 (index 1)
B = "user00002@contoso.example"  # backend EXCH01 (index 0)
C = "user00003@contoso.example"
D = "user00004@contoso.example"
SCALE = ["--time-scale", "60", "--heartbeat", "30"]

_schema = None
_schema_lock = threading.Lock()


def schema():
    global _schema
    with _schema_lock:
        if _schema is None:
            _schema = etree.XMLSchema(etree.parse(os.path.join(SCHEMA_DIR, "messages.xsd")))
    return _schema


def assert_schema_valid(resp, op):
    el = resp.xpath("//m:%sResponse" % op)[0]
    doc = etree.fromstring(etree.tostring(el))
    s = schema()
    assert s.validate(doc), s.error_log


def cal_id(mailbox):
    """The calendar folder id ews-sim uses for mailbox (the ParentFolderId of its events)."""
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "sim"))
    from ewssim import calendar, state

    sim = state.Sim(mailboxes=10)
    return calendar.folder_id(sim.mailbox(mailbox), "calendar")[0]


def folder(mailbox, name):
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "sim"))
    from ewssim import calendar, state

    sim = state.Sim(mailboxes=10)
    return calendar.folder_id(sim.mailbox(mailbox), name)[0]


def getevents(sim, sid, wm, mailbox=A, headers=None, user=None):
    kw = {}
    if user:
        return ews.post(sim.ews, ews.envelope(es.getevents_body(sid, wm), impersonate=mailbox), user=user[0],
                        password=user[1], headers=headers)
    return ews.call(sim, es.getevents_body(sid, wm), impersonate=mailbox, headers=headers, **kw)


def events_of(r):
    n = r.xpath("//m:Notification")[0]
    return [e for e in n if etree.QName(e).localname not in ("SubscriptionId", "PreviousWatermark", "MoreEvents")]


def last_watermark(r):
    return r.xpath("//m:Notification/*/t:Watermark")[-1].text


@pytest.fixture
def fast(sim_factory):
    return sim_factory(*SCALE)


# -- Subscribe ------------------------------------------------------------------------------


def test_subscribe_pull_shape_and_ids(fast):
    r, sid, wm = es.subscribe(fast, A, kind="pull")
    assert r.status == 200 and r.codes() == ["NoError"]
    assert wm
    assert_schema_valid(r, "Subscribe")
    raw = base64.b64decode(sid)
    # Exchange 2013+ shape: 0x26 0x00, backend FQDN, 16-byte length-prefixed GUID, 8 bytes.
    assert raw.startswith(b"\x26\x00exch02.contoso.example\x10\x00\x00\x00")
    assert len(raw) == 2 + len("exch02.contoso.example") + 4 + 16 + 8
    r2, sid2, _ = es.subscribe(fast, A, kind="pull")
    assert sid2 != sid and base64.b64decode(sid2)[-8:] == raw[-8:]


def test_subscribe_streaming_has_no_watermark(fast):
    r, sid, wm = es.subscribe(fast, A)
    assert r.codes() == ["NoError"] and sid and wm is None
    assert_schema_valid(r, "Subscribe")


def test_subscribe_streaming_needs_2010_sp1(fast):
    r = ews.call(fast, es.streaming_body(), impersonate=A, version="Exchange2010")
    assert r.status == 500 and r.fault_code() == "ErrorInvalidServerVersion"


def test_subscribe_delegate_mailbox_without_impersonation_refused(fast):
    r = ews.call(fast, es.streaming_body(fold=(("calendar", A),)))
    assert r.codes() == ["ErrorSubscriptionDelegateAccessNotSupported"]
    assert r.xpath("//m:SubscribeResponseMessage/@ResponseClass") == ["Error"]
    # The account's own mailbox named explicitly is fine.
    r = ews.call(fast, es.streaming_body(fold=(("calendar", "svc@contoso.example"),)))
    assert r.codes() == ["NoError"]
    # With impersonation, naming the impersonated mailbox is fine, another one is not.
    r = ews.call(fast, es.streaming_body(fold=(("calendar", A),)), impersonate=A)
    assert r.codes() == ["NoError"]
    r = ews.call(fast, es.streaming_body(fold=(("calendar", B),)), impersonate=A)
    assert r.codes() == ["ErrorSubscriptionDelegateAccessNotSupported"]


def test_subscribe_several_mailboxes_refused(fast):
    r = ews.call(fast, es.pull_body(fold=(("calendar", A), ("calendar", B))), impersonate=A)
    assert r.codes() == ["ErrorInvalidSubscriptionRequest"]
    r = ews.call(fast, es.pull_body(fold=("calendar", ("deleteditems", A))), impersonate=A)
    assert r.codes() == ["NoError"]  # several folders of one mailbox are fine


def test_subscribe_without_folders_refused(fast):
    body = ("<m:Subscribe><m:StreamingSubscriptionRequest>%s</m:StreamingSubscriptionRequest></m:Subscribe>"
            % es.event_types())
    r = ews.call(fast, body, impersonate=A)
    assert r.codes() == ["ErrorInvalidSubscriptionRequest"]


def test_pull_timeout_out_of_range_is_schema_error(fast):
    r = ews.call(fast, es.pull_body(timeout=0), impersonate=A)
    assert r.status == 500 and r.fault_code() == "ErrorSchemaValidation"
    r = ews.call(fast, es.pull_body(timeout=1441), impersonate=A)
    assert r.fault_code() == "ErrorSchemaValidation"


def test_subscription_count_charged_to_target_mailbox(fast):
    fast.control("POST", "/limits", {"ews_max_subscriptions": 2}, expect=200)
    assert es.subscribe(fast, A)[0].codes() == ["NoError"]
    assert es.subscribe(fast, A, kind="pull")[0].codes() == ["NoError"]
    r, sid, _ = es.subscribe(fast, A)
    assert r.codes() == ["ErrorExceededSubscriptionCount"] and sid is None
    # Another target mailbox has its own budget, although the same account subscribes.
    r, sid_b, _ = es.subscribe(fast, B)
    assert r.codes() == ["NoError"]
    # Without impersonation the account's own budget is charged.
    assert ews.call(fast, es.streaming_body()).codes() == ["NoError"]
    assert ews.call(fast, es.streaming_body()).codes() == ["NoError"]
    assert ews.call(fast, es.streaming_body()).codes() == ["ErrorExceededSubscriptionCount"]
    # Unsubscribing frees a slot.
    subs = fast.control("GET", "/notify/subscriptions?mailbox=" + A)[1]["subscriptions"]
    assert len(subs) == 2
    assert ews.call(fast, es.unsubscribe_body(subs[0]["id"]), impersonate=A).codes() == ["NoError"]
    assert es.subscribe(fast, A)[0].codes() == ["NoError"]
    assert fast.counters()["rejections"]["ErrorExceededSubscriptionCount"] == 2
    fast.control("POST", "/limits", {"ews_max_subscriptions": "unlimited"}, expect=200)
    for _ in range(3):
        assert es.subscribe(fast, A)[0].codes() == ["NoError"]


def test_push_subscription_accepted_but_not_pull(fast):
    body = ("<m:Subscribe><m:PushSubscriptionRequest>%s%s<t:StatusFrequency>1</t:StatusFrequency>"
            "<t:URL>http://127.0.0.1:9/nowhere</t:URL></m:PushSubscriptionRequest></m:Subscribe>"
            % (es.folders("calendar"), es.event_types()))
    r = ews.call(fast, body, impersonate=A)
    assert r.codes() == ["NoError"]
    sid = r.xpath("//m:SubscriptionId")[0].text
    wm = r.xpath("//m:Watermark")[0].text
    assert getevents(fast, sid, wm).codes() == ["ErrorInvalidPullSubscriptionId"]
    assert ews.call(fast, es.unsubscribe_body(sid), impersonate=A).codes() == ["ErrorInvalidPullSubscriptionId"]
    assert fast.counters()["subscriptions"]["push"] == 1
    # Never acknowledged: it lapses after StatusFrequency (1 sim minute).
    fast.control("POST", "/clock", {"shift": 120}, expect=200)
    assert "push" not in fast.counters()["subscriptions"]


# -- GetEvents ------------------------------------------------------------------------------


def test_getevents_idle_gives_status_event(fast):
    _, sid, wm = es.subscribe(fast, A, kind="pull")
    r = getevents(fast, sid, wm)
    assert r.codes() == ["NoError"]
    assert_schema_valid(r, "GetEvents")
    n = r.xpath("//m:Notification")[0]
    assert [etree.QName(e).localname for e in n] == ["SubscriptionId", "PreviousWatermark", "MoreEvents",
                                                     "StatusEvent"]
    assert r.xpath("//t:PreviousWatermark")[0].text == wm
    assert r.xpath("//t:MoreEvents")[0].text == "false"
    wm2 = r.xpath("//t:StatusEvent/t:Watermark")[0].text
    assert getevents(fast, sid, wm2).codes() == ["NoError"]


def test_getevents_delivers_events_with_watermarks(fast):
    _, sid, wm = es.subscribe(fast, A, kind="pull")
    cal = cal_id(A)
    deleted = folder(A, "deleteditems")
    fast.control("POST", "/notify/emit", {"mailbox": A, "events": [
        {"type": "CreatedEvent", "item_id": "ITEM1", "change_key": "CK1", "parent_folder_id": cal,
         "parent_change_key": "AQAAAA=="},
        {"type": "ModifiedEvent", "item_id": "ITEM1", "change_key": "CK2", "parent_folder_id": cal},
        {"type": "MovedEvent", "item_id": "ITEM1B", "parent_folder_id": deleted,
         "old_item_id": "ITEM1", "old_parent_folder_id": cal},
        {"type": "CreatedEvent", "item_id": "OTHER", "parent_folder_id": deleted},  # not watched
        {"type": "ModifiedEvent", "item_id": cal, "parent_folder_id": "ROOT", "folder_event": True},
    ]}, expect=200)
    r = getevents(fast, sid, wm)
    assert_schema_valid(r, "GetEvents")
    evs = events_of(r)
    assert es.event_kinds(evs) == ["CreatedEvent", "ModifiedEvent", "MovedEvent", "ModifiedEvent"]
    created = evs[0]
    assert [etree.QName(c).localname for c in created] == ["Watermark", "TimeStamp", "ItemId", "ParentFolderId"]
    assert created.xpath("t:ItemId/@Id", namespaces=NS) == ["ITEM1"]
    assert created.xpath("t:ItemId/@ChangeKey", namespaces=NS) == ["CK1"]
    assert created.xpath("t:ParentFolderId/@Id", namespaces=NS) == [cal]
    moved = evs[2]
    assert [etree.QName(c).localname for c in moved] == ["Watermark", "TimeStamp", "ItemId", "ParentFolderId",
                                                         "OldItemId", "OldParentFolderId"]
    assert moved.xpath("t:OldItemId/@Id", namespaces=NS) == ["ITEM1"]
    assert moved.xpath("t:OldParentFolderId/@Id", namespaces=NS) == [cal]
    assert evs[3].xpath("t:FolderId/@Id", namespaces=NS) == [cal]
    wms = [e.xpath("t:Watermark", namespaces=NS)[0].text for e in evs]
    assert len(set(wms)) == 4
    # The same watermark again (a lost response) gives the same events.
    assert es.event_kinds(events_of(getevents(fast, sid, wm))) == es.event_kinds(evs)
    # Continuing from the last watermark: nothing new.
    r = getevents(fast, sid, wms[-1])
    assert es.event_kinds(events_of(r)) == ["StatusEvent"]
    # Going back to a watermark older than the acknowledged one is refused.
    assert getevents(fast, sid, wm).codes() == ["ErrorInvalidWatermark"]
    c = fast.counters()["events"]
    assert c["emitted"] == 5 and c["delivered_pull"] >= 4


def test_getevents_event_type_filter(fast):
    _, sid, wm = es.subscribe(fast, A, kind="pull", types=("DeletedEvent",))
    es.emit(fast, A, "CreatedEvent", "ModifiedEvent", "DeletedEvent")
    assert es.event_kinds(events_of(getevents(fast, sid, wm))) == ["DeletedEvent"]


def test_subscribe_to_all_folders(fast):
    r = ews.call(fast, es.pull_body(all_folders=True), impersonate=A)
    sid, wm = r.xpath("//m:SubscriptionId")[0].text, r.xpath("//m:Watermark")[0].text
    es.emit(fast, A, "CreatedEvent", parent_folder_id="ANY-FOLDER")
    es.emit(fast, A, "CreatedEvent")
    assert es.event_kinds(events_of(getevents(fast, sid, wm))) == ["CreatedEvent", "CreatedEvent"]


def test_getevents_50_at_a_time_more_events(fast):
    _, sid, wm = es.subscribe(fast, A, kind="pull")
    fast.control("POST", "/notify/emit", {"mailbox": A, "events": [{"type": "ModifiedEvent"}] * 120},
                 expect=200)
    got = []
    mores = []
    for _ in range(5):
        r = getevents(fast, sid, wm)
        evs = events_of(r)
        mores.append(r.xpath("//t:MoreEvents")[0].text)
        if es.event_kinds(evs) == ["StatusEvent"]:
            break
        got.extend(evs)
        wm = last_watermark(r)
    assert len(got) == 120
    assert mores[:3] == ["true", "true", "false"]


def test_getevents_bad_watermarks(fast):
    _, sid, wm = es.subscribe(fast, A, kind="pull")
    _, _, wm_b = es.subscribe(fast, B, kind="pull")
    assert getevents(fast, sid, "garbage").codes() == ["ErrorInvalidWatermark"]
    assert getevents(fast, sid, wm_b).codes() == ["ErrorInvalidWatermark"]  # another mailbox's
    assert fast.counters()["rejections"]["ErrorInvalidWatermark"] == 2


def test_getevents_unknown_and_foreign_subscription(fast):
    _, sid, wm = es.subscribe(fast, A, kind="pull")
    assert getevents(fast, "JgBub3RoaW5n", wm).codes() == ["ErrorSubscriptionNotFound"]
    fast.control("POST", "/accounts", {"smtp": "other@contoso.example", "password": "pw1", "impersonation": "all"},
                 expect=201)
    r = getevents(fast, sid, wm, user=("other@contoso.example", "pw1"))
    assert r.codes() == ["ErrorSubscriptionAccessDenied"]
    r = ews.post(fast.ews, ews.envelope(es.unsubscribe_body(sid), impersonate=A), user="other@contoso.example",
                 password="pw1")
    assert r.codes() == ["ErrorSubscriptionAccessDenied"]
    assert getevents(fast, sid, wm).codes() == ["NoError"]  # still there for its owner


def test_getevents_on_streaming_subscription(fast):
    _, sid, _ = es.subscribe(fast, A)
    _, _, wm = es.subscribe(fast, A, kind="pull")
    assert getevents(fast, sid, wm).codes() == ["ErrorInvalidPullSubscriptionId"]


def test_pull_subscription_expires_after_timeout(fast):
    _, sid, wm = es.subscribe(fast, A, kind="pull", timeout=2)
    fast.control("POST", "/clock", {"shift": 100}, expect=200)
    r = getevents(fast, sid, wm)  # polled at 100 s: the Timeout starts again
    assert r.codes() == ["NoError"]
    wm = r.xpath("//t:StatusEvent/t:Watermark")[0].text
    fast.control("POST", "/clock", {"shift": 100}, expect=200)
    assert getevents(fast, sid, wm).codes() == ["NoError"]
    fast.control("POST", "/clock", {"shift": 130}, expect=200)
    assert getevents(fast, sid, wm).codes() == ["ErrorSubscriptionNotFound"]
    assert fast.counters()["subscriptions_expired"]["pull"] == 1


def test_pull_expiry_by_sweeper_releases_budget(fast):
    fast.control("POST", "/limits", {"ews_max_subscriptions": 1}, expect=200)
    es.subscribe(fast, A, kind="pull", timeout=1)
    assert es.subscribe(fast, A, kind="pull")[0].codes() == ["ErrorExceededSubscriptionCount"]
    assert fast.counters()["subscriptions"]["pull"] == 1
    fast.control("POST", "/clock", {"shift": 90}, expect=200)  # clock hooks sweep at once
    assert "pull" not in fast.counters()["subscriptions"]
    assert es.subscribe(fast, A, kind="pull")[0].codes() == ["NoError"]


def test_resume_with_watermark_replays(fast):
    _, sid, wm0 = es.subscribe(fast, A, kind="pull")
    es.emit(fast, A, "CreatedEvent", item_id="X1")
    r = getevents(fast, sid, wm0)
    wm1 = last_watermark(r)
    es.emit(fast, A, "ModifiedEvent", item_id="X1")
    es.emit(fast, A, "DeletedEvent", item_id="X1")
    # The client restarts: a new subscription from the stored watermark replays what followed.
    r, sid2, wm = es.subscribe(fast, A, kind="pull", watermark=wm1)
    assert r.codes() == ["NoError"] and wm == wm1
    evs = events_of(getevents(fast, sid2, wm))
    assert es.event_kinds(evs) == ["ModifiedEvent", "DeletedEvent"]
    # From the start watermark, all three.
    _, sid3, wm = es.subscribe(fast, A, kind="pull", watermark=wm0)
    assert len(events_of(getevents(fast, sid3, wm))) == 3


def test_resume_with_bad_watermark(fast):
    _, _, wm_b = es.subscribe(fast, B, kind="pull")
    assert es.subscribe(fast, A, kind="pull", watermark="AQAAAJ8=")[0].codes() == ["ErrorInvalidWatermark"]
    assert es.subscribe(fast, A, kind="pull", watermark=wm_b)[0].codes() == ["ErrorInvalidWatermark"]
    _, _, wm = es.subscribe(fast, A, kind="pull", timeout=1440)
    fast.control("POST", "/clock", {"shift": 31 * 86400}, expect=200)
    assert es.subscribe(fast, A, kind="pull", watermark=wm)[0].codes() == ["ErrorInvalidWatermark"]


def test_resume_after_journal_overflow_is_invalid(fast):
    fast.control("POST", "/notify/config", {"journal_size": 5}, expect=200)
    _, sid, wm = es.subscribe(fast, A, kind="pull")
    fast.control("POST", "/notify/emit", {"mailbox": A, "events": [{"type": "ModifiedEvent"}] * 8}, expect=200)
    assert es.subscribe(fast, A, kind="pull", watermark=wm)[0].codes() == ["ErrorInvalidWatermark"]
    # The live subscription is told once that it missed events, then continues.
    assert getevents(fast, sid, wm).codes() == ["ErrorMissedNotificationEvents"]
    r = getevents(fast, sid, wm)
    assert r.codes() == ["NoError"] and len(events_of(r)) == 5


# -- Unsubscribe ----------------------------------------------------------------------------


def test_unsubscribe(fast):
    _, sid, wm = es.subscribe(fast, A, kind="pull")
    r = ews.call(fast, es.unsubscribe_body(sid), impersonate=A)
    assert r.codes() == ["NoError"]
    assert_schema_valid(r, "Unsubscribe")
    r = ews.call(fast, es.unsubscribe_body(sid), impersonate=A)
    assert r.codes() == ["ErrorSubscriptionNotFound"]
    assert r.xpath("//m:MessageText")[0].text == "The specified subscription was not found."
    assert getevents(fast, sid, wm).codes() == ["ErrorSubscriptionNotFound"]


# -- GetStreamingEvents ---------------------------------------------------------------------


def test_stream_ok_events_heartbeat_closed(sim_factory):
    s = sim_factory("--time-scale", "60", "--heartbeat", "20")
    _, sid, _ = es.subscribe(s, A)
    st = es.Stream(s, [sid], timeout=1, impersonate=A)
    assert st.status == 200
    assert st.headers["content-type"] == "text/xml; charset=utf-8"
    assert st.headers["transfer-encoding"] == "chunked"
    first = st.next(5)
    assert first.response_class == "Success" and first.status == "OK" and first.is_heartbeat
    s.control("POST", "/notify/emit", {"mailbox": A, "events": [
        {"type": "CreatedEvent", "item_id": "I1", "change_key": "K1", "parent_folder_id": cal_id(A)}]}, expect=200)
    m = st.until(lambda m: m.notifications(), what="notification")
    evs = m.notifications()[sid]
    assert es.event_kinds(evs) == ["CreatedEvent"]
    # Streaming events carry no Watermark: TimeStamp comes first.
    assert [etree.QName(c).localname for c in evs[0]] == ["TimeStamp", "ItemId", "ParentFolderId"]
    assert m.status is None and m.response_class == "Success"
    rest = st.rest(10)
    assert rest[-1].status == "Closed" and rest[-1].response_class == "Success"
    assert all(x.is_heartbeat for x in rest[:-1]) and len(rest) >= 2  # 60 s / 20 s heartbeats
    assert st.eof and not st.reset
    assert s.counters()["streams_closed"]["timeout"] == 1


def test_stream_version_and_timeout_validation(fast):
    _, sid, _ = es.subscribe(fast, A)
    st = es.Stream(fast, [sid], impersonate=A, version="Exchange2010")
    assert st.status == 500 and st.fault_code() == "ErrorInvalidServerVersion"
    body = ews.envelope(es.gse_body([sid], timeout=31), impersonate=A)
    st = es.Stream(fast, [sid], body=body)
    assert st.status == 500 and st.fault_code() == "ErrorSchemaValidation"


def test_stream_events_queue_while_disconnected(fast):
    _, sid, _ = es.subscribe(fast, A)
    st = es.Stream(fast, [sid], timeout=1, impersonate=A)
    st.rest(10)
    es.emit(fast, A, "CreatedEvent", item_id="Q1")
    es.emit(fast, A, "ModifiedEvent", item_id="Q1")
    st = es.Stream(fast, [sid], timeout=1, impersonate=A)
    assert st.next(5).status == "OK"
    m = st.until(lambda m: m.notifications(), what="queued events")
    assert es.event_kinds(m.notifications()[sid]) == ["CreatedEvent", "ModifiedEvent"]
    st.close()


def test_stream_queue_overflow_reports_missed_events(fast):
    fast.control("POST", "/notify/config", {"streaming_queue_limit": 3}, expect=200)
    _, sid, _ = es.subscribe(fast, A)
    fast.control("POST", "/notify/emit", {"mailbox": A, "events": [{"type": "ModifiedEvent"}] * 5}, expect=200)
    st = es.Stream(fast, [sid], timeout=1, impersonate=A)
    assert st.next(5).status == "OK"
    m = st.next(5)
    assert m.response_class == "Error" and m.code == "ErrorMissedNotificationEvents"
    assert m.error_ids == [sid] and m.status == "OK"
    # The subscription is kept: later events arrive.
    es.emit(fast, A, "CreatedEvent")
    m = st.until(lambda m: m.notifications(), what="events after the gap")
    assert es.event_kinds(m.notifications()[sid]) == ["CreatedEvent"]
    st.close()


def test_stream_second_connection_takes_subscription_over(fast):
    _, s1, _ = es.subscribe(fast, A)
    _, s2, _ = es.subscribe(fast, A)
    first = es.Stream(fast, [s1, s2], timeout=5, impersonate=A)
    assert first.next(5).status == "OK"
    second = es.Stream(fast, [s1], timeout=5, impersonate=A)
    assert second.next(5).status == "OK"
    m = first.until(lambda m: m.response_class == "Error", what="takeover error")
    assert m.code == "ErrorNewEventStreamConnectionOpened" and m.error_ids == [s1] and m.status == "OK"
    es.emit(fast, A, "CreatedEvent")
    m2 = second.until(lambda m: m.notifications(), what="events on the new connection")
    assert list(m2.notifications()) == [s1]
    m1 = first.until(lambda m: m.notifications(), what="events for the kept subscription")
    assert list(m1.notifications()) == [s2]
    # Taking the last subscription closes the first connection.
    third = es.Stream(fast, [s2], timeout=5, impersonate=A)
    m = first.until(lambda m: m.response_class == "Error", what="second takeover")
    assert m.code == "ErrorNewEventStreamConnectionOpened" and m.error_ids == [s2] and m.status == "Closed"
    assert first.rest(5) == [] and first.eof
    for x in (second, third):
        x.close()


def test_stream_mixed_good_and_bad_ids(fast):
    _, good, _ = es.subscribe(fast, A)
    _, pull, _ = es.subscribe(fast, A, kind="pull")
    bad = "JgBleGNoMDIuY29udG9zby5leGFtcGxlEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
    st = es.Stream(fast, [good, bad, pull], timeout=1, impersonate=A)
    assert st.next(5).status == "OK"
    errs = [st.next(5), st.next(5)]
    assert [(e.code, e.error_ids, e.status) for e in errs] == [
        ("ErrorSubscriptionNotFound", [bad], "OK"), ("ErrorInvalidSubscription", [pull], "OK")]
    assert all(e.response_class == "Error" for e in errs)
    assert errs[0].x("m:MessageText")[0].text == "The specified subscription was not found."
    es.emit(fast, A, "CreatedEvent")
    m = st.until(lambda m: m.notifications(), what="events for the good id")
    assert list(m.notifications()) == [good]
    assert st.rest(10)[-1].status == "Closed"


def test_stream_all_ids_bad(fast):
    st = es.Stream(fast, ["JgBub3RoaW5n", "AAAA"], timeout=1, impersonate=A)
    assert st.status == 200
    msgs = st.rest(5)
    assert len(msgs) == 1
    m = msgs[0]
    assert (m.response_class, m.code, m.status) == ("Error", "ErrorSubscriptionNotFound", "Closed")
    assert m.error_ids == ["JgBub3RoaW5n", "AAAA"]
    assert st.eof
    assert fast.counters()["hanging_connections"]["total"] == 0


def test_stream_foreign_subscription_access_denied(fast):
    _, sid, _ = es.subscribe(fast, A)
    fast.control("POST", "/accounts", {"smtp": "other@contoso.example", "password": "pw1", "impersonation": "all"},
                 expect=201)
    st = es.Stream(fast, [sid], timeout=1, impersonate=A, user="other@contoso.example", password="pw1")
    m = st.rest(5)[0]
    assert m.code == "ErrorSubscriptionAccessDenied" and m.status == "Closed"


def test_stream_too_many_ids(fast):
    ids = ["JgBmYWtl%04d" % i for i in range(201)]
    st = es.Stream(fast, ids, timeout=1, impersonate=A)
    msgs = st.rest(5)
    assert len(msgs) == 1
    assert (msgs[0].response_class, msgs[0].code, msgs[0].status) == ("Error", "ErrorInvalidArgument", "Closed")
    # 200 are accepted (here all unknown: one error message listing them).
    st = es.Stream(fast, ids[:200], timeout=1, impersonate=A)
    m = st.rest(5)[0]
    assert m.code == "ErrorSubscriptionNotFound" and len(m.error_ids) == 200


def test_unsubscribe_closes_it_on_open_stream(fast):
    _, s1, _ = es.subscribe(fast, A)
    _, s2, _ = es.subscribe(fast, A)
    st = es.Stream(fast, [s1, s2], timeout=5, impersonate=A)
    assert st.next(5).status == "OK"
    assert ews.call(fast, es.unsubscribe_body(s1), impersonate=A).codes() == ["NoError"]
    es.emit(fast, A, "CreatedEvent")
    m = st.until(lambda m: m.notifications(), what="events")
    assert list(m.notifications()) == [s2]
    assert ews.call(fast, es.unsubscribe_body(s2), impersonate=A).codes() == ["NoError"]
    rest = st.rest(5)
    assert rest[-1].status == "Closed" and st.eof


def test_streaming_subscription_expires_without_connection(fast):
    _, sid, _ = es.subscribe(fast, A)
    _, kept, _ = es.subscribe(fast, A)
    st = es.Stream(fast, [kept], timeout=30, impersonate=A)
    assert st.next(5).status == "OK"
    fast.control("POST", "/clock", {"shift": 31 * 60}, expect=200)
    m = es.Stream(fast, [sid], timeout=1, impersonate=A).rest(5)[0]
    assert m.code == "ErrorSubscriptionNotFound"
    # A subscription with an open connection does not expire.
    assert fast.control("GET", "/notify/subscriptions/" + quote(kept, safe=""))[0] == 200
    st.close()
    wait_for(lambda: fast.counters()["streaming_connections"]["total"] == 0, what="stream closed")
    fast.control("POST", "/notify/config", {"streaming_expiry_minutes": 1}, expect=200)
    fast.control("POST", "/clock", {"shift": 61}, expect=200)
    assert fast.control("GET", "/notify/subscriptions/" + quote(kept, safe=""))[0] == 404


def test_hanging_connection_limit_per_budget(fast):
    fast.control("POST", "/limits", {"hanging_connection_limit": 2}, expect=200)
    subs = [es.subscribe(fast, A)[1] for _ in range(3)]
    s1 = es.Stream(fast, [subs[0]], timeout=5)
    s2 = es.Stream(fast, [subs[1]], timeout=5)
    for s in (s1, s2):
        assert s.next(5).status == "OK"
    s3 = es.Stream(fast, [subs[2]], timeout=5)
    assert s3.status == 500 and s3.fault_code() == "ErrorExceededConnectionCount"
    doc = etree.fromstring(s3.body)
    vals = {v.get("Name"): v.text for v in doc.xpath("//s:Fault/detail/t:MessageXml/t:Value", namespaces=NS)}
    assert vals == {"Policy": "MaxConcurrency", "MaxConcurrencyLimit": "2"}
    # Impersonating a mailbox charges that mailbox's budget instead: more connections.
    s4 = es.Stream(fast, [subs[2]], timeout=5, impersonate=A)
    assert s4.next(5).status == "OK"
    c = fast.counters()
    assert c["streaming_connections"]["total"] == 3
    assert c["streaming_connections_by_budget"] == {"account:svc@contoso.example": 2, "mailbox:" + A: 1}
    assert c["rejections"]["ErrorExceededConnectionCount:HangingConnectionLimit"] == 1
    s1.close()
    wait_for(lambda: fast.counters()["hanging_connections"].get("account:svc@contoso.example") == 1,
             what="connection released")
    s5 = es.Stream(fast, [subs[0]], timeout=5)
    assert s5.next(5).status == "OK"
    for s in (s2, s4, s5):
        s.close()


def test_streams_do_not_count_against_max_concurrency(fast):
    fast.control("POST", "/limits", {"ews_max_concurrency": 1}, expect=200)
    subs = [es.subscribe(fast, A)[1] for _ in range(3)]
    streams = [es.Stream(fast, [x], timeout=5, impersonate=A) for x in subs]
    for s in streams:
        assert s.next(5).status == "OK"
    assert es.subscribe(fast, A)[0].codes() == ["NoError"]
    for s in streams:
        s.close()


def test_gauges(fast):
    _, s1, _ = es.subscribe(fast, A)
    _, s2, _ = es.subscribe(fast, B, kind="pull")
    st = es.Stream(fast, [s1], timeout=5, impersonate=A)
    assert st.next(5).status == "OK"
    es.emit(fast, A, "CreatedEvent")
    st.until(lambda m: m.notifications())
    c = fast.counters()
    assert c["subscriptions"] == {"streaming": 1, "pull": 1, "total": 2}
    assert c["subscriptions_by_backend"] == {"EXCH02": 1, "EXCH01": 1}
    assert c["streaming_connections"] == {"total": 1}
    assert c["streaming_connections_by_budget"] == {"mailbox:" + A: 1}
    assert c["events"]["emitted"] == 1 and c["events"]["delivered_streaming"] == 1
    streams = fast.control("GET", "/notify/streams")[1]
    assert len(streams) == 1 and streams[0]["subscriptions"] == [s1]
    st.close()


def test_emit_route_validation(fast):
    assert fast.control("POST", "/notify/emit", {"mailbox": A, "events": [{"type": "Bogus"}]})[0] == 400
    assert fast.control("POST", "/notify/emit", {"mailbox": "nobody@contoso.example",
                                                 "events": [{"type": "CreatedEvent"}]})[0] == 404
    assert fast.control("POST", "/notify/emit", {"mailbox": A, "events": [{"type": "MovedEvent"}]})[0] == 400
    assert fast.control("POST", "/notify/config", {"journal_size": 0})[0] == 400
    assert fast.control("POST", "/notify/config", {"nope": 1})[0] == 400


def test_many_subscriptions_fit(sim_factory):
    """5,000 mailboxes with a pull subscription each, through the control-free EWS path;
    a cheap guard that nothing per subscription is expensive."""
    s = sim_factory("--mailboxes", "5000", "--max-concurrency", "unlimited")
    import concurrent.futures

    def sub(i):
        return es.subscribe(s, "user%05d@contoso.example" % i, kind="pull")[0].codes()

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        codes = list(ex.map(sub, range(1, 2001)))
    assert all(c == ["NoError"] for c in codes)
    assert s.counters()["subscriptions"]["pull"] == 2000


def test_subscription_route_with_slash_in_id(fast):
    for _ in range(50):
        _, sid, _ = es.subscribe(fast, A)
        if "/" in sid:
            break
    assert "/" in sid
    st, d = fast.control("GET", "/notify/subscriptions/" + quote(sid, safe=""))
    assert st == 200 and d["id"] == sid and d["kind"] == "streaming" and d["mailbox"] == A
    assert fast.control("GET", "/notify/subscriptions/" + quote("no/such", safe=""))[0] == 404


def test_client_disconnect_frees_hanging_slot_quickly(sim_factory):
    s = sim_factory("--heartbeat", "45", "--hanging-connection-limit", "1")  # real time, slow heartbeats
    _, sid, _ = es.subscribe(s, A)
    st = es.Stream(s, [sid], timeout=30, impersonate=A)
    assert st.next(5).status == "OK"
    st.close()
    wait_for(lambda: s.counters()["hanging_connections"]["total"] == 0, timeout=5, what="slot freed")
    st = es.Stream(s, [sid], timeout=30, impersonate=A)
    assert st.next(5).status == "OK"
    assert s.counters()["streams_closed"]["client_gone"] == 1
    st.close()
