"""Hybrid: mailboxes on-premises (EWS) or in Exchange Online (Graph), one calendar model,
and moves between them at run time with what each side answers during and after."""

import os
import sys

import pytest
from lxml import etree

import graphclient as gc
from graphclient import A, B, ONPREM, Receiver, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sim"))

import ews  # noqa: E402
import ewsstream as es  # noqa: E402

AD = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
POX = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
FINDITEM = ('<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>'
            '<m:CalendarView StartDate="%s" EndDate="%s"/>'
            '<m:ParentFolderIds><t:DistinguishedFolderId Id="calendar"/></m:ParentFolderIds></m:FindItem>')
SPAN = 300 * 86400  # EWS refuses a CalendarView of more than two years


@pytest.fixture
def hsim(sim_factory):
    return gc.graph_sim(sim_factory, "--graph-notify-allow-http", "--time-scale", "60")


def window(sim):
    now = gc.sim_now(sim)
    return gc.iso_in(-SPAN, now), gc.iso_in(SPAN, now)


def find_item(sim, mailbox):
    return ews.call(sim, FINDITEM % window(sim), impersonate=mailbox)


def gus(sim, mailbox):
    body = ('<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:a="%s"><s:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion></s:Header>'
            '<s:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>%s</a:Mailbox></a:User>'
            '</a:Users><a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting></a:RequestedSettings></a:Request>'
            '</a:GetUserSettingsRequestMessage></s:Body></s:Envelope>' % (AD, mailbox)).encode()
    r = ews.post(sim.ews.replace("/EWS/Exchange.asmx", "/autodiscover/autodiscover.svc"), body)
    ur = r.doc.xpath("//a:UserResponse", namespaces={"a": AD})[0]
    return {etree.QName(c).localname: c for c in ur}


def pox(sim, mailbox):
    body = ('<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
            '<Request><EMailAddress>%s</EMailAddress><AcceptableResponseSchema>%s</AcceptableResponseSchema>'
            '</Request></Autodiscover>' % (mailbox, POX)).encode()
    return ews.post(sim.ews.replace("/EWS/Exchange.asmx", "/autodiscover/autodiscover.xml"), body)


def ews_ids(resp):
    return {gc.rest_id(i) for i in resp.xpath("//t:CalendarItem/t:ItemId/@Id")}


def graph_ids(g, mailbox):
    lo, hi = window(g.sim)
    items, _ = g.all_pages("users/%s/calendarView?startDateTime=%s&endDateTime=%s" % (mailbox, lo, hi))
    return {i["id"] for i in items}


def test_cloud_mailbox_is_a_mail_user_on_premises(hsim):
    r = find_item(hsim, A)
    assert r.status == 500 and r.fault_code() == "ErrorNonExistentMailbox"
    assert find_item(hsim, ONPREM).codes() == ["NoError"]
    ur = gus(hsim, A)
    assert ur["ErrorCode"].text == "RedirectAddress"
    assert ur["RedirectTarget"].text == "user00001@contoso.mail.onmicrosoft.com"
    assert len(ur["UserSettings"]) == 0
    assert gus(hsim, ONPREM)["ErrorCode"].text == "NoError"
    p = pox(hsim, A)
    acct = p.doc.xpath("//o:Account", namespaces={"o": POX})[0]
    assert acct.findtext("{%s}Action" % POX) == "redirectAddr"
    assert acct.findtext("{%s}RedirectAddr" % POX) == "user00001@contoso.mail.onmicrosoft.com"
    assert hsim.control("GET", "/mailboxes/" + A, expect=200)[1]["location"] == "cloud"
    assert hsim.control("GET", "/mailboxes/" + ONPREM, expect=200)[1]["location"] == "onprem"


def test_cloud_mailbox_options(sim_factory):
    s = gc.graph_sim(sim_factory, "--cloud-mailbox", "user00007@contoso.example", "--routing-domain",
                     "fabrikam.mail.onmicrosoft.com")
    assert s.info["cloud_mailboxes"] == "none"
    g = gc.Graph(s)
    assert g.get("users/%s/calendarView?%s" % (A, gc.WINDOW))[0] == 404
    assert g.get("users/user00007@contoso.example/calendarView?%s" % gc.WINDOW)[0] == 200
    assert gus(s, "user00007@contoso.example")["RedirectTarget"].text == "user00007@fabrikam.mail.onmicrosoft.com"
    s2 = sim_factory("--cloud-mailboxes", "all")  # EWS and Autodiscover follow the locations without Graph too
    assert find_item(s2, ONPREM).fault_code() == "ErrorNonExistentMailbox"
    assert "graph" not in s2.info
    assert s2.control("GET", "/graph")[0] == 404


def test_move_to_the_cloud_keeps_the_calendar(hsim):
    g = gc.Graph(hsim)
    before = ews_ids(find_item(hsim, ONPREM))
    assert len(before) > 5
    _, sid, wm = es.subscribe(hsim, ONPREM, kind="pull")
    stream_sub = es.subscribe(hsim, ONPREM)[1]
    st = es.Stream(hsim, [stream_sub], timeout=5, impersonate=ONPREM)
    assert st.next(5).status == "OK"
    r = hsim.control("POST", "/graph/mailboxes/move", {"mailbox": ONPREM, "to": "cloud", "window_seconds": 600},
                     expect=200)[1]
    assert r["location"] == "cloud" and r["moving"] is True and r["ews_subscriptions_lost"] == 2
    m = st.until(lambda m: m.error_ids, what="the stream's error")
    assert m.code == "ErrorMailboxMoveInProgress" and m.error_ids == [stream_sub]
    # During the move window both sides say so.
    assert find_item(hsim, ONPREM).codes() == ["ErrorMailboxMoveInProgress"]
    st2, _, doc = g.get("users/%s/calendarView?%s" % (ONPREM, gc.WINDOW))
    assert st2 == 404 and doc["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    hsim.control("POST", "/clock", {"shift": 601}, expect=200)
    g = gc.Graph(hsim)
    assert find_item(hsim, ONPREM).fault_code() == "ErrorNonExistentMailbox"
    assert graph_ids(g, ONPREM) == before
    assert es_getevents_code(hsim, sid, wm) == "ErrorNonExistentMailbox"
    assert gus(hsim, ONPREM)["ErrorCode"].text == "RedirectAddress"
    with pytest.raises(AssertionError):
        hsim.control("POST", "/graph/mailboxes/move", {"mailbox": ONPREM, "to": "cloud"}, expect=200)


def es_getevents_code(sim, sid, wm):
    r = ews.call(sim, es.getevents_body(sid, wm), impersonate=ONPREM)
    return r.fault_code() or r.codes()[0]


def test_move_back_on_premises_stops_graph_subscriptions(hsim):
    g = gc.Graph(hsim)
    rx, life = Receiver(), Receiver()
    try:
        st, _, sub = g.call("POST", "subscriptions", body={
            "changeType": "created,updated,deleted", "notificationUrl": rx.url(),
            "lifecycleNotificationUrl": life.url("/life"), "resource": "users/%s/events" % B,
            "expirationDateTime": gc.iso_in(3600, gc.sim_now(hsim))})
        assert st == 201, sub
        before = graph_ids(g, B)
        r = hsim.control("POST", "/graph/mailboxes/move", {"mailbox": B, "to": "onprem"}, expect=200)[1]
        assert r["graph_subscriptions_removed"] == 1 and r["location"] == "onprem"
        wait_for(lambda: life.notifications(), what="subscriptionRemoved")
        assert life.notifications()[0]["lifecycleEvent"] == "subscriptionRemoved"
        assert g.get("subscriptions/" + sub["id"])[0] == 404
        lo, _hi = window(hsim)
        soon = gc.iso_in(SPAN + 86400, gc.dt.datetime.fromisoformat(lo.replace("Z", "+00:00")))
        gc.create_item(hsim, B, start=soon, end=soon)
        assert ews_ids(find_item(hsim, B)) >= before and len(ews_ids(find_item(hsim, B))) == len(before) + 1
        assert g.get("users/%s/calendarView?%s" % (B, gc.WINDOW))[0] == 404
        assert gus(hsim, B)["ErrorCode"].text == "NoError"
        assert rx.notifications() == []
        assert hsim.counters()["mailbox_moves"] == {"onprem": 1}
    finally:
        rx.stop()
        life.stop()


def test_calendar_changes_of_cloud_mailboxes_reach_graph(hsim):
    g = gc.Graph(hsim)
    it = gc.create_item(hsim, A, subject="cloud side")
    hsim.control("PATCH", gc.item_path(A, it["id"]), {"sensitivity": "Private"}, expect=200)
    doc = g.ok("users/%s/events/%s" % (A, gc.rest_id(it["id"])))
    assert doc["subject"] == "cloud side" and doc["sensitivity"] == "private"


def test_move_errors(hsim):
    assert hsim.control("POST", "/graph/mailboxes/move", {"mailbox": "nobody@contoso.example", "to": "cloud"})[0] == 404
    assert hsim.control("POST", "/graph/mailboxes/move", {"mailbox": ONPREM, "to": "mars"})[0] == 400
    assert hsim.control("POST", "/graph/mailboxes/move", {"mailbox": A, "to": "cloud"})[0] == 400
    assert hsim.control("POST", "/graph/mailboxes/move", {"mailbox": ONPREM, "to": "cloud",
                                                          "window_seconds": -1})[0] == 400
