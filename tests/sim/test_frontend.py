"""ews-sim's front end: schema validation, versions, impersonation and rights, HTTP
behaviour, the control API's core routes, the clock, and mailboxes at scale."""

import http.client
import os
import time
import urllib.parse

from lxml import etree

import ews
from simharness import SCHEMA_DIR, wait_for

GETFOLDER = (
    '<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>'
    '<m:FolderIds><t:DistinguishedFolderId Id="calendar"/></m:FolderIds></m:GetFolder>'
)


def fault_detail(r):
    return {
        "code": r.fault_code(),
        "faultcode": r.xpath("//s:Fault/faultcode")[0].text,
        "values": {v.get("Name"): v.text for v in r.xpath("//s:Fault/detail/t:MessageXml/t:Value")},
        "violation": [v.text for v in r.xpath("//s:Fault/detail/t:MessageXml/t:Violation")],
        "line": [v.text for v in r.xpath("//s:Fault/detail/t:MessageXml/t:LineNumber")],
    }


# -- schema validation ----------------------------------------------------------------------


def test_schema_violation_gets_exchange_fault(sim):
    # GetEvents without its required Watermark: the schema refuses it.
    r = ews.call(sim, "<m:GetEvents><m:SubscriptionId>x</m:SubscriptionId></m:GetEvents>")
    assert r.status == 500
    d = fault_detail(r)
    assert d["code"] == "ErrorSchemaValidation"
    assert d["faultcode"] == "a:ErrorSchemaValidation"
    assert "Watermark" in d["violation"][0]
    assert d["line"] and int(d["line"][0]) >= 1
    # the fault itself is in the shape of EWS-REFERENCE §1.4: errors-namespace detail
    assert r.xpath("//s:Fault/faultstring/@xml:lang") == ["en-US"]
    assert sim.counters()["rejections"]["ErrorSchemaValidation"] == 1


def test_wrong_namespace_is_refused(sim):
    # The msdocs GetStreamingEvents sample puts SubscriptionId in m:, which Exchange refuses.
    with open(os.path.join(os.path.dirname(__file__), "..", "fixtures", "msdocs",
                           "getstreamingevents-operation-0.xml"), "rb") as f:
        body = f.read()
    r = ews.post(sim.ews, body)
    assert r.status == 500 and r.fault_code() == "ErrorSchemaValidation"


def test_watermark_in_messages_namespace_is_refused(sim):
    # exchangelib's m:Watermark inside a PullSubscriptionRequest fails the schema (reference §2).
    body = (
        "<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id=\"calendar\"/>"
        "</t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes>"
        "<m:Watermark>AAAA</m:Watermark><t:Timeout>30</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>"
    )
    r = ews.call(sim, body)
    assert r.fault_code() == "ErrorSchemaValidation"


def test_malformed_xml_and_non_soap(sim):
    for body in (b"not xml at all", b"<a><b></a>", b'<?xml version="1.0"?><Envelope/>',
                 ews.ENV_HEAD.encode() + b"<s:Body></s:Body></s:Envelope>",
                 ews.ENV_HEAD.encode() + b"<s:Body>" + GETFOLDER.encode() * 2 + b"</s:Body></s:Envelope>"):
        r = ews.post(sim.ews, body)
        assert r.status == 500, body
        assert r.fault_code() == "ErrorSchemaValidation", body


def test_external_entities_are_never_loaded(sim, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    body = ('<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file://%s">]>' % secret).encode()
    body += ews.envelope("<m:GetEvents><m:SubscriptionId>&x;</m:SubscriptionId><m:Watermark>a</m:Watermark>"
                         "</m:GetEvents>").split(b"?>", 1)[1]
    r = ews.post(sim.ews, body)
    assert r.status == 500
    assert b"TOPSECRET" not in r.body


def test_bad_header_value_is_a_schema_error(sim):
    r = ews.post(sim.ews, ews.envelope(GETFOLDER, version="Exchange2019"))
    assert r.fault_code() == "ErrorSchemaValidation"
    assert "Exchange2019" in fault_detail(r)["violation"][0]


def test_validation_can_be_switched_off(sim_factory):
    s = sim_factory("--no-validate")
    r = ews.call(s, "<m:GetEvents><m:SubscriptionId>x</m:SubscriptionId></m:GetEvents>")
    assert r.fault_code() != "ErrorSchemaValidation"


def test_streaming_needs_2010_sp1(sim):
    body = ("<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>x</t:SubscriptionId>"
            "</m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>")
    r = ews.call(sim, body, version="Exchange2010")
    assert r.status == 500 and r.fault_code() == "ErrorInvalidServerVersion"


# -- impersonation ------------------------------------------------------------------------------


def test_impersonation_id_types(sim):
    for kind, value in (("SmtpAddress", "user00002@contoso.example"),
                        ("SmtpAddress", "USER00002@Contoso.Example"),
                        ("SmtpAddress", "user00002.alias@contoso.example"),
                        ("PrimarySmtpAddress", "user00002@contoso.example"),
                        ("PrincipalName", "user00002@ad.contoso.example")):
        r = ews.call(sim, GETFOLDER, impersonate=value, id_type=kind)
        assert r.status == 200, (kind, value, r.body[:400])
        assert r.codes() == ["NoError"]


def test_impersonation_errors(sim):
    r = ews.call(sim, GETFOLDER, impersonate="nobody@contoso.example")
    assert (r.status, r.fault_code()) == (500, "ErrorNonExistentMailbox")
    r = ews.call(sim, GETFOLDER, impersonate="user00099@contoso.example")  # beyond --mailboxes 10
    assert r.fault_code() == "ErrorNonExistentMailbox"
    r = ews.call(sim, GETFOLDER, impersonate="user00002.alias@contoso.example", id_type="PrimarySmtpAddress")
    assert r.fault_code() == "ErrorNonPrimarySmtpAddress"
    r = ews.call(sim, GETFOLDER, impersonate="user00002@contoso.example", id_type="PrincipalName")
    assert r.fault_code() == "ErrorNonExistentMailbox"
    # An empty identifier fails the schema first (NonEmptyStringType), as on Exchange...
    r = ews.call(sim, GETFOLDER, impersonate="")
    assert r.fault_code() == "ErrorSchemaValidation"


def test_empty_impersonation_without_validation(sim_factory):
    # ...and is refused by the impersonation check itself when validation is off.
    s = sim_factory("--no-validate")
    r = ews.call(s, GETFOLDER, impersonate="  ")
    assert (r.status, r.fault_code()) == (500, "ErrorInvalidExchangeImpersonationHeaderData")


def test_impersonation_scope(sim):
    sim.control("POST", "/accounts", {"smtp": "helpdesk@contoso.example", "password": "pw1",
                                      "impersonation": ["user00003@contoso.example"]}, expect=201)
    sim.control("POST", "/accounts", {"smtp": "plain@contoso.example", "password": "pw2"}, expect=201)
    env = ews.envelope(GETFOLDER, impersonate="user00003@contoso.example")
    assert ews.post(sim.ews, env, user="helpdesk@contoso.example", password="pw1").status == 200
    env4 = ews.envelope(GETFOLDER, impersonate="user00004@contoso.example")
    r = ews.post(sim.ews, env4, user="helpdesk@contoso.example", password="pw1")
    assert (r.status, r.fault_code()) == (500, "ErrorImpersonateUserDenied")
    r = ews.post(sim.ews, env, user="plain@contoso.example", password="pw2")
    assert r.fault_code() == "ErrorImpersonateUserDenied"
    # without impersonation an account works on its own mailbox
    r = ews.post(sim.ews, ews.envelope(GETFOLDER), user="plain@contoso.example", password="pw2")
    assert r.status == 200 and r.codes() == ["NoError"]
    assert sim.counters()["rejections"]["ErrorImpersonateUserDenied"] == 2


# -- HTTP behaviour -------------------------------------------------------------------------


def test_http_details(sim):
    r = ews.post(sim.ews, ews.envelope(GETFOLDER, impersonate="user00001@contoso.example"),
                 headers={"client-request-id": "c0ffee", "return-client-request-id": "true"})
    h = {k.lower(): v for k, v in r.headers}
    assert h["content-type"].startswith("text/xml; charset=utf-8")
    assert h["client-request-id"] == "c0ffee"
    assert h["request-id"] and h["x-feserver"] and h["x-beserver"].startswith("EXCH")
    # the answer is a normal Exchange 2019 envelope with ServerVersionInfo
    sv = r.xpath("/s:Envelope/s:Header/t:ServerVersionInfo")[0]
    assert (sv.get("MajorVersion"), sv.get("MinorVersion"), sv.get("Version")) == ("15", "2", "V2017_07_11")
    # wrong content type
    r = ews.post(sim.ews, ews.envelope(GETFOLDER), headers={"Content-Type": "application/json"})
    assert r.status == 415
    # the path is case-insensitive like IIS; other paths 404
    u = urllib.parse.urlsplit(sim.ews)
    base = "%s://%s" % (u.scheme, u.netloc)
    assert ews.post(base + "/ews/EXCHANGE.ASMX", ews.envelope(GETFOLDER)).status == 200
    assert ews.post(base + "/EWS/nothing.asmx", ews.envelope(GETFOLDER)).status == 404


def test_schema_files_are_served(sim):
    u = urllib.parse.urlsplit(sim.ews)
    import base64

    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("GET", "/EWS/messages.xsd", headers={
        "Authorization": "Basic " + base64.b64encode(b"svc@contoso.example:Passw0rd!").decode()})
    r = c.getresponse()
    body = r.read()
    with open(os.path.join(SCHEMA_DIR, "messages.xsd"), "rb") as f:
        assert body == f.read()
    assert r.status == 200


def test_unknown_operation(sim):
    body = '<m:ResolveNames ReturnFullContactData="false"><m:UnresolvedEntry>x</m:UnresolvedEntry></m:ResolveNames>'
    r = ews.call(sim, body)
    assert r.status == 500 and r.fault_code() == "ErrorInvalidOperation"


def test_latency_option(sim_factory):
    s = sim_factory("--latency-ms", "300")
    t0 = time.monotonic()
    r = ews.call(s, GETFOLDER)
    assert r.status == 200
    assert time.monotonic() - t0 >= 0.3


# -- control API core -------------------------------------------------------------------------


def test_clock_control(sim):
    _, c = sim.control("GET", "/clock", expect=200)
    assert abs(c["epoch"] - time.time()) < 5 and c["scale"] == 1.0
    _, c = sim.control("POST", "/clock", {"set": "2030-01-02T09:00:00Z", "freeze": True}, expect=200)
    assert c["now"].startswith("2030-01-02T09:00:00") and c["frozen"]
    _, c = sim.control("POST", "/clock", {"shift": 3600}, expect=200)
    assert c["now"].startswith("2030-01-02T10:00:00")
    _, c = sim.control("POST", "/clock", {"unfreeze": True, "scale": 100}, expect=200)
    assert not c["frozen"] and c["scale"] == 100
    e0 = c["epoch"]
    wait_for(lambda: sim.control("GET", "/clock")[1]["epoch"] - e0 > 50, what="sim clock to run 100x")
    status, err = sim.control("POST", "/clock", {"scale": 0})
    assert status == 400 and "scale" in err["error"]
    status, err = sim.control("POST", "/clock", {"bogus": 1})
    assert status == 400 and "bogus" in err["error"]


def test_control_errors_are_json(sim):
    import json
    import urllib.request

    req = urllib.request.Request(sim.control_url + "/limits", data=b"{not json", method="POST")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("accepted bad JSON")
    except urllib.error.HTTPError as e:
        assert e.code == 400 and "JSON" in json.loads(e.read())["error"]
    status, err = sim.control("POST", "/limits", {"ews_max_concurrency": -1})
    assert status == 400
    status, err = sim.control("POST", "/limits", {"nonsense": 1})
    assert status == 400 and "nonsense" in err["error"]
    _, lim = sim.control("POST", "/limits", {"ews_max_concurrency": "unlimited"}, expect=200)
    assert lim["ews_max_concurrency"] is None
    assert sim.control("GET", "/mailboxes/nobody@contoso.example")[0] == 404


def test_mailbox_management(sim):
    _, r = sim.control("POST", "/mailboxes", {"count": 25, "smtp": ["room.a@contoso.example"]}, expect=201)
    assert r["mailboxes"] == 26
    _, mb = sim.control("GET", "/mailboxes/user00025@contoso.example", expect=200)
    assert mb["backend"].startswith("EXCH")
    assert ews.call(sim, GETFOLDER, impersonate="room.a@contoso.example").status == 200
    sim.control("DELETE", "/mailboxes/user00025@contoso.example", expect=200)
    r = ews.call(sim, GETFOLDER, impersonate="user00025@contoso.example")
    assert r.fault_code() == "ErrorNonExistentMailbox"
    assert sim.control("POST", "/mailboxes", {"smtp": ["room.a@contoso.example"]})[0] == 400


def test_fifty_thousand_mailboxes(sim_factory):
    s = sim_factory("--mailboxes", "50000")
    assert s.info["mailboxes"] == 50000
    for mb in ("user00001@contoso.example", "user50000@contoso.example"):
        r = ews.call(s, GETFOLDER, impersonate=mb)
        assert r.status == 200 and r.codes() == ["NoError"], mb
    assert ews.call(s, GETFOLDER, impersonate="user50001@contoso.example").fault_code() == "ErrorNonExistentMailbox"


def test_mailboxes_spread_over_backends(sim_factory):
    s = sim_factory("--backends", "3")
    _, backends = s.control("GET", "/backends", expect=200)
    assert len(backends) == 3 and len({b["cookie"] for b in backends}) == 3
    seen = {s.control("GET", "/mailboxes/user%05d@contoso.example" % i)[1]["backend"] for i in range(1, 7)}
    assert seen == {b["name"] for b in backends}


# -- the repository's schema is the one Exchange serves ---------------------------------------


def test_schema_copy_matches_shared():
    shared = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "ews-schema")
    if not os.path.isdir(shared):
        # A clone outside the team's workspace: nothing to compare with; the copy itself
        # must still load.
        etree.XMLSchema(etree.parse(os.path.join(SCHEMA_DIR, "messages.xsd")))
        return
    for name in ("messages.xsd", "types.xsd", "services.wsdl", "namespace.xsd"):
        with open(os.path.join(shared, name), "rb") as a, open(os.path.join(SCHEMA_DIR, name), "rb") as b:
            assert a.read() == b.read(), name

