"""The on-wire form of a GetStreamingEvents body: ews-sim must write what Exchange 2013+
writes (tests/fixtures/wire/getstreamingevents-stream.xmls): unprefixed <Envelope>,
soap11:-prefixed Header and Body, an unprefixed ServerVersionInfo, the m:/t: forms of the
response, and envelopes back to back. We capture a live body with the same five message
kinds (status OK, notification, heartbeat, per-subscription error, Closed) and compare
the structure of each kind with the fixture's."""

import os
import re

import pytest
from lxml import etree

import ewsstream as es
from simharness import FIXTURES, NS

A = "user00001@contoso.example"
ENV_OPEN = b'<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/">'
NS_S = NS["s"]


def fixture_body():
    with open(os.path.join(FIXTURES, "wire", "getstreamingevents-stream.xmls"), "rb") as f:
        return f.read().strip()


def split_envelopes(body):
    out = []
    pos = 0
    while pos < len(body):
        j = body.index(b"</Envelope>", pos) + len(b"</Envelope>")
        out.append(body[pos:j])
        pos = j
    return out


def written_name(e):
    """The tag as written: prefix:local (or local when unprefixed), plus its namespace."""
    q = etree.QName(e)
    return ("%s:%s" % (e.prefix, q.localname) if e.prefix else q.localname), q.namespace


def declared(e):
    parent = e.getparent()
    pm = parent.nsmap if parent is not None else {}
    return sorted((k or "", v) for k, v in e.nsmap.items() if pm.get(k) != v)


def shape(e):
    """Structure of an element: written name, namespace, declarations, attribute names,
    children (text ignored)."""
    return (written_name(e), declared(e), sorted(e.attrib.keys()), [shape(c) for c in e])


def kind(doc):
    m = doc.xpath("//m:GetStreamingEventsResponseMessage", namespaces=NS)[0]
    status = m.xpath("m:ConnectionStatus/text()", namespaces=NS)
    if m.get("ResponseClass") == "Error":
        return "error"
    if m.xpath("m:Notifications", namespaces=NS):
        return "notification"
    return {"OK": "ok", "Closed": "closed"}[status[0]]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A raw ews-sim body with the fixture's message kinds. s1 watches all folders, so the
    item events and the folder's own ModifiedEvent of the fixture all reach it; s2 wants
    only NewMailEvent and is expired mid-stream for the per-subscription error."""
    from simharness import Sim

    import ews

    sim = Sim(["--time-scale", "60", "--heartbeat", "30"])
    try:
        r = ews.call(sim, es.streaming_body(all_folders=True), impersonate=A)
        s1 = r.xpath("//m:SubscriptionId")[0].text
        _, s2, _ = es.subscribe(sim, A, types=("NewMailEvent",))
        sim.control("POST", "/notify/emit", {"mailbox": A, "events": [
            {"type": "CreatedEvent", "item_id": "AAMkITEM=", "change_key": "DwAAABYA",
             "parent_folder_id": "AQMkCAL", "parent_change_key": "AQAAAA=="},
            {"type": "ModifiedEvent", "item_id": "AAMkITEM=", "change_key": "DwAAABYA",
             "parent_folder_id": "AQMkCAL", "parent_change_key": "AQAAAA=="},
            {"type": "ModifiedEvent", "item_id": "AQMkCAL", "change_key": "AQAAAA==", "folder_event": True,
             "parent_folder_id": "AQMkROOT", "parent_change_key": "AQAAAA=="},
        ]}, expect=200)
        st = es.Stream(sim, [s1, s2], timeout=2, impersonate=A)
        assert st.next(5).status == "OK"
        st.until(lambda m: m.notifications(), what="notification")
        st.until(lambda m: m.is_heartbeat, what="heartbeat")
        sim.control("POST", "/faults/subscriptions/expire", {"ids": [s2]}, expect=200)
        st.until(lambda m: m.response_class == "Error", what="per-subscription error")
        st.rest(10)
        assert st.eof and not st.reset
        return {"body": st.body, "chunks": st.chunks, "s1": s1, "s2": s2, "headers": st.headers}
    finally:
        sim.stop()


def test_capture_has_fixture_kinds(live):
    kinds = [kind(etree.fromstring(e)) for e in split_envelopes(live["body"])]
    assert kinds[0] == "ok" and kinds[1] == "notification" and kinds[-1] == "closed"
    assert "error" in kinds and kinds.index("error") > kinds.index("notification")
    hb = [i for i, k in enumerate(kinds) if k == "ok" and i > 1]
    assert hb and hb[0] < kinds.index("error")
    assert set(kinds) == {"ok", "notification", "error", "closed"}


def test_fixture_kinds():
    kinds = [kind(etree.fromstring(e)) for e in split_envelopes(fixture_body())]
    assert kinds == ["ok", "notification", "ok", "error", "closed"]


def test_byte_form(live):
    body = live["body"]
    assert not body.startswith(b"<?xml") and b"<?xml" not in body
    envs = split_envelopes(body)
    assert b"".join(envs) == body  # back to back, nothing in between
    for e in envs:
        assert e.startswith(ENV_OPEN)
        assert e.endswith(b"</soap11:Body></Envelope>")
        assert b"<soap11:Header xmlns:soap11=" in e and b"<soap11:Body xmlns:soap11=" in e
        assert re.search(rb"<ServerVersionInfo [^>]*xmlns=\"http://schemas.microsoft.com/exchange/services/2006/types\"",
                         e)
    # Same for the fixture (guards the test itself).
    for e in split_envelopes(fixture_body()):
        assert e.startswith(ENV_OPEN)


def test_http_framing(live):
    h = live["headers"]
    assert h["content-type"] == "text/xml; charset=utf-8"
    assert h["transfer-encoding"] == "chunked"
    assert "content-length" not in h


@pytest.mark.parametrize("k", ["ok", "notification", "error", "closed"])
def test_structure_matches_fixture(live, k):
    fx = {kind(etree.fromstring(e)): etree.fromstring(e) for e in split_envelopes(fixture_body())}
    ours = [etree.fromstring(e) for e in split_envelopes(live["body"])]
    mine = [d for d in ours if kind(d) == k]
    assert mine, k
    for d in mine:
        assert shape(d) == shape(fx[k])


def test_server_version_values_match(live):
    fx = etree.fromstring(split_envelopes(fixture_body())[0])
    for e in split_envelopes(live["body"]):
        d = etree.fromstring(e)
        sv = d.xpath("/s:Envelope/s:Header/t:ServerVersionInfo", namespaces=NS)[0]
        assert dict(sv.attrib) == dict(fx.xpath("//t:ServerVersionInfo", namespaces=NS)[0].attrib)


def test_notification_details(live):
    d = [etree.fromstring(e) for e in split_envelopes(live["body"])]
    n = [x for x in d if kind(x) == "notification"][0]
    nt = n.xpath("//m:Notifications/m:Notification", namespaces=NS)
    assert len(nt) == 1  # one per subscription with events (s2 wants only NewMail)
    assert nt[0].xpath("t:SubscriptionId/text()", namespaces=NS) == [live["s1"]]
    for ev in nt[0].xpath("t:*[not(self::t:SubscriptionId)]", namespaces=NS):
        assert not ev.xpath("t:Watermark", namespaces=NS)
        ts = ev.xpath("t:TimeStamp/text()", namespaces=NS)[0]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ts)
    err = [x for x in d if kind(x) == "error"][0]
    assert err.xpath("//m:ErrorSubscriptionIds/m:SubscriptionId/text()", namespaces=NS) == [live["s2"]]
    assert err.xpath("//m:ConnectionStatus/text()", namespaces=NS) == ["OK"]
    assert err.xpath("//m:ResponseCode/text()", namespaces=NS) == ["ErrorSubscriptionNotFound"]


def test_independent_splitter_agrees(live):
    """exchangelib's DocumentYielder (a different stream splitter) finds the same envelopes,
    fed one byte at a time."""
    from exchangelib.util import DocumentYielder

    body = live["body"]
    docs = list(DocumentYielder(iter([body[i:i + 1] for i in range(len(body))])))
    assert len(docs) == len(split_envelopes(body))
    for doc, raw in zip(docs, split_envelopes(body)):
        assert etree.tostring(etree.fromstring(doc)) == etree.tostring(etree.fromstring(raw))


def test_exchangelib_reads_pull_and_streaming(sim_factory):
    """An independent client (exchangelib 4.9, Basic auth, impersonation) subscribes, pulls,
    streams and unsubscribes against ews-sim."""
    from exchangelib import BASIC, IMPERSONATION, Account, Build, Configuration, Credentials, Version
    from exchangelib.folders import Calendar, Root

    sim = sim_factory("--time-scale", "60", "--heartbeat", "30")
    cfg = Configuration(service_endpoint=sim.ews, credentials=Credentials("svc@contoso.example", "Passw0rd!"),
                        auth_type=BASIC, version=Version(build=Build(15, 2, 1748, 10), api_version="Exchange2016"))
    acct = Account(A, config=cfg, autodiscover=False, access_type=IMPERSONATION)
    # Folder objects without GetFolder: exchangelib names the distinguished calendar.
    cal = Calendar(root=Root(account=acct, id="ROOT", changekey="AQAAAA=="), id="CAL", changekey="AQAAAA==",
                   is_distinguished=True)
    sid, wm = cal.subscribe_to_pull()
    es.emit(sim, A, "CreatedEvent", item_id="I1", change_key="CK1")
    notes = list(cal.get_events(sid, wm))
    assert [type(e).__name__ for e in notes[0].events] == ["CreatedEvent"]
    assert notes[0].events[0].item_id.id == "I1" and notes[0].events[0].watermark
    ssid = cal.subscribe_to_streaming()
    es.emit(sim, A, "ModifiedEvent", item_id="I1", change_key="CK2")
    got = list(cal.get_streaming_events(ssid, connection_timeout=1, max_notifications_returned=1))
    assert got[0].subscription_id == ssid
    ev = got[0].events[0]
    assert type(ev).__name__ == "ModifiedEvent" and ev.watermark is None and ev.item_id.changekey == "CK2"
    # Without max_notifications_returned it reads to the final Closed (1 sim minute).
    assert list(cal.get_streaming_events(ssid, connection_timeout=1)) == []
    assert cal.unsubscribe(ssid) is True
