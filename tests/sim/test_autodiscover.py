"""Tests of ews-sim's Autodiscover: SOAP GetUserSettings (/autodiscover/autodiscover.svc)
and POX (/autodiscover/autodiscover.xml)."""

import base64
import http.client
import urllib.parse

import pytest
from lxml import etree

from simharness import PASSWORD, SVC, Sim

A = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
WSA = "http://www.w3.org/2005/08/addressing"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
S = "http://schemas.xmlsoap.org/soap/envelope/"
POX_RESP = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
POX_OL = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
NS = {"a": A, "wsa": WSA, "s": S, "i": XSI, "r": POX_RESP, "o": POX_OL}


@pytest.fixture(scope="module")
def asim():
    s = Sim(["--mailboxes", "10", "--backends", "2"])
    yield s
    s.stop()


def post(sim, path, body, auth=True, method="POST", host=None):
    u = urllib.parse.urlsplit(sim.ews)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    h = {"Content-Type": "text/xml; charset=utf-8"}
    if host:
        h["Host"] = host
    if auth:
        h["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (SVC, PASSWORD)).encode()).decode()
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), data


def gus_request(users, settings, url="https://autodiscover.contoso.example/autodiscover/autodiscover.svc"):
    u = "".join("<a:User><a:Mailbox>%s</a:Mailbox></a:User>" % x for x in users)
    s = "".join("<a:Setting>%s</a:Setting>" % x for x in settings)
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<s:Envelope xmlns:s="%s" xmlns:a="%s" xmlns:wsa="%s"><s:Header>'
            "<a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion>"
            "<wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings"
            "</wsa:Action><wsa:To>%s</wsa:To></s:Header><s:Body><a:GetUserSettingsRequestMessage><a:Request>"
            "<a:Users>%s</a:Users><a:RequestedSettings>%s</a:RequestedSettings></a:Request>"
            "</a:GetUserSettingsRequestMessage></s:Body></s:Envelope>" % (S, A, WSA, url, u, s)).encode()


SETTINGS = ["UserDisplayName", "UserDN", "InternalEwsUrl", "ExternalEwsUrl", "GroupingInformation", "CasVersion",
            "EwsSupportedSchemas", "InternalMailboxServer", "UserDeploymentId"]


def settings_of(ur):
    return {us.findtext("a:Name", None, NS): us.findtext("a:Value", None, NS)
            for us in ur.findall("a:UserSettings/a:UserSetting", NS)}


def test_get_user_settings(asim):
    users = ["user00001@contoso.example", "user00003@contoso.example", "user00002@contoso.example",
             "nobody@contoso.example"]
    st, hdr, body = post(asim, "/autodiscover/autodiscover.svc", gus_request(users, SETTINGS + ["NoSuchSetting"]))
    assert st == 200 and hdr["Content-Type"].startswith("text/xml")
    doc = etree.fromstring(body)
    act = doc.find("s:Header/wsa:Action", NS)
    assert act.text.endswith("/Autodiscover/GetUserSettingsResponse")
    assert act.get("{%s}mustUnderstand" % S) == "1"
    assert doc.findtext("s:Header/a:ServerVersionInfo/a:MajorVersion", None, NS) == "15"
    resp = doc.find("s:Body/a:GetUserSettingsResponseMessage/a:Response", NS)
    assert resp.findtext("a:ErrorCode", None, NS) == "NoError"
    urs = resp.findall("a:UserResponses/a:UserResponse", NS)
    assert len(urs) == 4
    assert [etree.QName(c).localname for c in urs[0]] == ["ErrorCode", "ErrorMessage", "RedirectTarget",
                                                          "UserSettingErrors", "UserSettings"]
    assert urs[0].find("a:RedirectTarget", NS).get("{%s}nil" % XSI) == "true"
    s1, s3, s2 = (settings_of(u) for u in urs[:3])
    base = asim.ews.rsplit("/EWS/", 1)[0]
    assert s1["ExternalEwsUrl"] == s1["InternalEwsUrl"] == base + "/EWS/Exchange.asmx"
    assert s1["CasVersion"] == "15.02.1748.010"
    assert s1["EwsSupportedSchemas"] == ("Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, "
                                         "Exchange2010_SP2, Exchange2013, Exchange2013_SP1, Exchange2016")
    assert s1["UserDisplayName"] == "User 00001"
    assert s1["UserDN"].startswith("/o=")
    # Same backend (user00001 and user00003 on backend 1 of 2) -> same GroupingInformation.
    assert s1["GroupingInformation"] == s3["GroupingInformation"] != s2["GroupingInformation"]
    assert s1["UserDeploymentId"] == s2["UserDeploymentId"]
    assert s1["InternalMailboxServer"] != s2["InternalMailboxServer"]
    assert list(s1) == SETTINGS  # in request order
    errs = urs[0].findall("a:UserSettingErrors/a:UserSettingError", NS)
    assert [(e.findtext("a:ErrorCode", None, NS), e.findtext("a:SettingName", None, NS)) for e in errs] == [
        ("InvalidSetting", "NoSuchSetting")]
    assert urs[3].findtext("a:ErrorCode", None, NS) == "InvalidUser"
    assert "nobody@contoso.example" in urs[3].findtext("a:ErrorMessage", None, NS)
    assert settings_of(urs[3]) == {}


def test_get_user_settings_follows_request_host(asim):
    st, _h, body = post(asim, "/Autodiscover/Autodiscover.svc",
                        gus_request(["user00001@contoso.example"], ["ExternalEwsUrl"]), host="mail.contoso.example")
    assert st == 200
    doc = etree.fromstring(body)
    assert doc.xpath("//a:Value/text()", namespaces=NS) == ["http://mail.contoso.example/EWS/Exchange.asmx"]


def test_get_user_settings_alias_and_unavailable(asim):
    st, _h, body = post(asim, "/autodiscover/autodiscover.svc",
                        gus_request(["user00002.alias@contoso.example"], ["UserDisplayName", "InternalOABUrl"]))
    doc = etree.fromstring(body)
    ur = doc.find(".//a:UserResponse", NS)
    assert ur.findtext("a:ErrorCode", None, NS) == "NoError"
    assert settings_of(ur) == {"UserDisplayName": "User 00002"}
    assert ur.findtext("a:UserSettingErrors/a:UserSettingError/a:ErrorCode", None, NS) == "SettingIsNotAvailable"


def test_autodiscover_requires_authentication(asim):
    st, hdr, _ = post(asim, "/autodiscover/autodiscover.svc", gus_request(["user00001@contoso.example"],
                                                                           ["ExternalEwsUrl"]), auth=False)
    assert st == 401 and "WWW-Authenticate" in hdr
    st, _hdr, _ = post(asim, "/autodiscover/autodiscover.xml", b"<x/>", auth=False)
    assert st == 401


def test_soap_errors(asim):
    st, _h, body = post(asim, "/autodiscover/autodiscover.svc", gus_request([], ["ExternalEwsUrl"]))
    assert st == 200
    assert etree.fromstring(body).findtext(".//a:Response/a:ErrorCode", None, NS) == "InvalidRequest"
    bad = gus_request(["user00001@contoso.example"], ["x"]).replace(b"GetUserSettingsRequestMessage",
                                                                   b"GetDomainSettingsRequestMessage")
    st, _h, body = post(asim, "/autodiscover/autodiscover.svc", bad)
    assert st == 500 and b"ActionNotSupported" in body
    st, _h, _ = post(asim, "/autodiscover/autodiscover.svc", b"<not xml")
    assert st == 400


def pox_request(addr, schema=POX_OL):
    return ('<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/'
            'autodiscover/outlook/requestschema/2006"><Request><EMailAddress>%s</EMailAddress>'
            "<AcceptableResponseSchema>%s</AcceptableResponseSchema></Request></Autodiscover>"
            % (addr, schema)).encode()


def test_pox(asim):
    st, _h, body = post(asim, "/autodiscover/autodiscover.xml", pox_request("user00001@contoso.example"))
    assert st == 200
    doc = etree.fromstring(body)
    assert doc.tag == "{%s}Autodiscover" % POX_RESP
    protos = doc.findall("o:Response/o:Account/o:Protocol", NS)
    types = [p.findtext("o:Type", None, NS) for p in protos]
    assert types == ["EXCH", "EXPR"]
    base = asim.ews.rsplit("/EWS/", 1)[0]
    for p in protos:
        assert p.findtext("o:EwsUrl", None, NS) == base + "/EWS/Exchange.asmx"
    assert protos[0].find("o:GroupingInformation", NS) is None
    gi1 = protos[1].findtext("o:GroupingInformation", None, NS)
    assert gi1
    # POX and SOAP agree on GroupingInformation.
    _st, _h, soap_body = post(asim, "/autodiscover/autodiscover.svc",
                              gus_request(["user00001@contoso.example"], ["GroupingInformation"]))
    assert etree.fromstring(soap_body).xpath("//a:Value/text()", namespaces=NS) == [gi1]
    assert doc.findtext("o:Response/o:User/o:AutoDiscoverSMTPAddress", None, NS) == "user00001@contoso.example"
    assert doc.findtext("o:Response/o:Account/o:Action", None, NS) == "settings"


def test_pox_errors(asim):
    def err(body):
        st, _h, data = post(asim, "/autodiscover/autodiscover.xml", body)
        assert st == 200
        doc = etree.fromstring(data)
        e = doc.find("r:Response/r:Error", NS)
        return e.findtext("r:ErrorCode", None, NS), e.findtext("r:Message", None, NS)

    assert err(pox_request("nobody@contoso.example")) == ("500", "The email address can't be found.")
    assert err(pox_request("user00001@contoso.example",
                           "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"))[0] \
        == "601"
    assert err(b"<Autodiscover/>")[0] == "600"
    st, _h, data = post(asim, "/autodiscover/autodiscover.xml", None, method="GET")
    assert st == 200 and b"<ErrorCode>600</ErrorCode>" in data
