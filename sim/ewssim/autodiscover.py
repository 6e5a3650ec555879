"""Autodiscover as Exchange 2019 answers it: SOAP GetUserSettings on
/autodiscover/autodiscover.svc and the POX (Outlook provider) form on
/autodiscover/autodiscover.xml.

Both are authenticated first (IIS), like every Exchange virtual directory. The EWS URL
handed out is the URL the request came to with /EWS/Exchange.asmx, so a client always
lands on this simulator; GroupingInformation is a stable value per simulated mailbox
server (backend), so mailboxes on the same backend share it, as the affinity recipe
(group by ExternalEwsUrl + GroupingInformation) expects.
"""

import hashlib
import logging
import time as _time
from datetime import datetime, timezone

from aiohttp import web
from lxml import etree

from . import soap, webio

log = logging.getLogger("ews-sim")

NS_S = soap.NS_S
NS_A = soap.NS_A  # http://schemas.microsoft.com/exchange/2010/Autodiscover
NS_WSA = soap.NS_WSA
NS_XSI = soap.NS_XSI
NS_POX_REQ = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
NS_POX_RESP = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
NS_POX_OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"

CAS_VERSION = "15.02.1748.010"  # Exchange 2019 CU12, as in ServerVersionInfo
EWS_SCHEMAS = ("Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, "
               "Exchange2013, Exchange2013_SP1, Exchange2016")
ORG = "Contoso"
ADMIN_GROUP = "Exchange Administrative Group (FYDIBOHF23SPDLT)"

# Settings ews-sim knows how to answer.
ANSWERED = ("UserDisplayName", "UserDN", "UserDeploymentId", "InternalMailboxServer", "InternalRpcClientServer",
            "InternalMailboxServerDN", "MailboxDN", "ActiveDirectoryServer", "CasVersion", "EwsSupportedSchemas",
            "InternalEwsUrl", "ExternalEwsUrl", "GroupingInformation", "ExternalMailboxServer",
            "ExternalMailboxServerRequiresSSL", "ExternalMailboxServerAuthenticationMethods", "InternalEcpUrl",
            "ExternalEcpUrl", "ExternalEwsVersion", "MapiHttpEnabled", "InternalEmwsUrl", "ExternalEmwsUrl")
# Valid GetUserSettings names (from the EWS Managed API's UserSettingName) that the
# simulator does not model: answered with SettingIsNotAvailable, not InvalidSetting.
KNOWN_UNAVAILABLE = {
    "InternalWebClientUrls", "ExternalWebClientUrls", "InternalUMUrl", "ExternalUMUrl", "InternalOABUrl",
    "ExternalOABUrl", "PublicFolderServer", "InternalPop3Connections", "ExternalPop3Connections",
    "InternalImap4Connections", "ExternalImap4Connections", "InternalSmtpConnections", "ExternalSmtpConnections",
    "InternalServerExclusiveConnect", "ExternalServerExclusiveConnect", "AlternateMailboxes",
    "CrossOrganizationSharingEnabled", "MobileMailboxPolicy", "ExternalPhotosUrl", "InternalPhotosUrl",
    "EcpVoicemailUrlFragment", "EcpEmailSubscriptionsUrlFragment", "EcpTextMessagingUrlFragment",
    "EcpDeliveryReportUrlFragment", "EcpRetentionPolicyTagsUrlFragment", "EcpPublishingUrlFragment",
    "EcpPhotoUrlFragment", "EcpConnectUrlFragment", "EcpTeamMailboxUrlFragment", "EcpTeamMailboxCreatingUrlFragment",
    "EcpTeamMailboxEditingUrlFragment", "EcpTeamMailboxHidingUrlFragment", "EcpExtensionInstallationUrlFragment",
    "InternalUMUrl", "ExternalUMUrl", "PublicFolderInformation", "RedirectUrl", "InternalPublicFolderServer",
    "ExternalPublicFolderServer", "MailboxVersion", "ShowGalAsDefaultView", "AutoDiscoverSMTPAddress",
    "InteropExternalEwsUrl", "InteropExternalEwsVersion", "ExchangeRpcUrl", "ExternalServerExclusiveConnect",
    "InternalMailboxServerAuthenticationMethods", "ExternalMailboxServerAuthenticationMethods",
    "SiteMailboxCreationURL", "UserMSOnline", "PartnerToken", "PartnerTokenReference",
}


# ---------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------


def ews_url(request):
    """The URL the request came to, with /EWS/Exchange.asmx."""
    host = request.headers.get("Host") or request.host
    return "%s://%s/EWS/Exchange.asmx" % (request.scheme, host)


def grouping_information(backend):
    """A stable per-backend value (Exchange puts a site/DAG-derived string here)."""
    h = hashlib.sha1(("grouping:" + backend.fqdn).encode()).hexdigest()[:6].upper()
    return "%s-%s" % (backend.name, h)


def _guid(text):
    h = hashlib.md5(text.encode()).hexdigest()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])


def _mailbox_server(sim, mb):
    # Exchange 2013+ hands out "<mailbox guid>@<domain>" instead of a server name.
    return "%s@%s" % (_guid("mbx:" + mb.smtp), sim.domain)


def setting_value(sim, request, mb, name):
    url = ews_url(request)
    base = url.rsplit("/EWS/", 1)[0]
    local = mb.smtp.split("@", 1)[0]
    if name == "UserDisplayName":
        return mb.display_name
    if name == "UserDN":
        return "/o=%s/ou=%s/cn=Recipients/cn=%s-%s" % (ORG, ADMIN_GROUP, mb.guid[:32], local)
    if name == "UserDeploymentId":
        return _guid("deployment:" + sim.domain)
    if name in ("InternalMailboxServer", "InternalRpcClientServer"):
        return _mailbox_server(sim, mb)
    if name in ("InternalMailboxServerDN", "MailboxDN"):
        dn = "/o=%s/ou=%s/cn=Configuration/cn=Servers/cn=%s" % (ORG, ADMIN_GROUP, _mailbox_server(sim, mb))
        return dn + "/cn=Microsoft Private MDB" if name == "MailboxDN" else dn
    if name == "ActiveDirectoryServer":
        return "dc01.ad.%s" % sim.domain
    if name == "CasVersion":
        return CAS_VERSION
    if name == "EwsSupportedSchemas":
        return EWS_SCHEMAS
    if name in ("InternalEwsUrl", "ExternalEwsUrl", "InternalEmwsUrl", "ExternalEmwsUrl"):
        return url
    if name == "GroupingInformation":
        return grouping_information(mb.backend)
    if name == "ExternalMailboxServer":
        return request.host.split(":")[0]
    if name == "ExternalMailboxServerRequiresSSL":
        return "True" if request.scheme == "https" else "False"
    if name == "ExternalMailboxServerAuthenticationMethods":
        return "Negotiate"
    if name in ("InternalEcpUrl", "ExternalEcpUrl"):
        return base + "/ecp/"
    if name == "ExternalEwsVersion":
        return CAS_VERSION
    if name == "MapiHttpEnabled":
        return "True"
    return None


# ---------------------------------------------------------------------------------------
# SOAP GetUserSettings
# ---------------------------------------------------------------------------------------


def _A(tag):
    return "{%s}%s" % (NS_A, tag)


def _sub(parent, tag, text=None):
    e = etree.SubElement(parent, tag)
    if text is not None:
        e.text = text
    return e


def _soap_envelope(action):
    env = etree.Element("{%s}Envelope" % NS_S, nsmap={"s": NS_S, "a": NS_WSA})
    hdr = etree.SubElement(env, "{%s}Header" % NS_S)
    act = etree.SubElement(hdr, "{%s}Action" % NS_WSA)
    act.set("{%s}mustUnderstand" % NS_S, "1")
    act.text = "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/" + action
    svi = etree.SubElement(hdr, _A("ServerVersionInfo"), nsmap={"h": NS_A, "i": NS_XSI})
    for k, v in (("MajorVersion", "15"), ("MinorVersion", "2"), ("MajorBuildNumber", "1748"),
                 ("MinorBuildNumber", "10"), ("Version", "Exchange2015")):
        _sub(svi, _A(k), v)
    body = etree.SubElement(env, "{%s}Body" % NS_S)
    return env, body


def _xml(env, status=200):
    return web.Response(status=status, body=etree.tostring(env, xml_declaration=False, encoding="utf-8"),
                        content_type="text/xml", charset="utf-8",
                        headers={"Server": "Microsoft-IIS/10.0", "X-AspNet-Version": "4.0.30319",
                                 "X-Powered-By": "ASP.NET", "X-FEServer": "EXCHFE01"})


def _soap_fault(code, message, status=500):
    env = etree.Element("{%s}Envelope" % NS_S, nsmap={"s": NS_S})
    body = etree.SubElement(env, "{%s}Body" % NS_S)
    fault = etree.SubElement(body, "{%s}Fault" % NS_S)
    fc = etree.SubElement(fault, "faultcode", nsmap={"a": NS_WSA})
    fc.text = "a:" + code
    fs = etree.SubElement(fault, "faultstring")
    fs.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    fs.text = message
    return _xml(env, status)


def get_user_settings(sim, request, op):
    """Build the GetUserSettingsResponseMessage envelope for a parsed request element."""
    env, body = _soap_envelope("GetUserSettingsResponse")
    msg = etree.SubElement(body, _A("GetUserSettingsResponseMessage"), nsmap={None: NS_A})
    resp = etree.SubElement(msg, _A("Response"), nsmap={"i": NS_XSI})
    req = soap.child(op, "Request")
    users_el = soap.child(req, "Users") if req is not None else None
    settings_el = soap.child(req, "RequestedSettings") if req is not None else None
    users = [soap.text_of(u, "Mailbox", "") for u in soap.children(users_el, "User")] if users_el is not None else []
    settings = [(s.text or "").strip() for s in soap.children(settings_el, "Setting")] \
        if settings_el is not None else []
    if not users or not settings:
        _sub(resp, _A("ErrorCode"), "InvalidRequest")
        _sub(resp, _A("ErrorMessage"), "The request is invalid: Users and RequestedSettings are required.")
        _sub(resp, _A("UserResponses"))
        return env
    _sub(resp, _A("ErrorCode"), "NoError")
    _sub(resp, _A("ErrorMessage"))
    urs = _sub(resp, _A("UserResponses"))
    for addr in users:
        ur = _sub(urs, _A("UserResponse"))
        mb, _err = sim.mailbox_by_any(addr, "SmtpAddress")
        if mb is None:
            _sub(ur, _A("ErrorCode"), "InvalidUser")
            _sub(ur, _A("ErrorMessage"), "Invalid user: '%s'" % addr)
            rt = _sub(ur, _A("RedirectTarget"))
            rt.set("{%s}nil" % NS_XSI, "true")
            _sub(ur, _A("UserSettingErrors"))
            _sub(ur, _A("UserSettings"))
            continue
        if sim.is_cloud(mb):
            # Hybrid: the mailbox lives in Exchange Online. On-premises Autodiscover answers for
            # its mail user with the targetAddress to ask again (RedirectAddress).
            _sub(ur, _A("ErrorCode"), "RedirectAddress")
            _sub(ur, _A("ErrorMessage"), "Redirection address.")
            _sub(ur, _A("RedirectTarget"), sim.cloud_target(mb))
            _sub(ur, _A("UserSettingErrors"))
            _sub(ur, _A("UserSettings"))
            continue
        _sub(ur, _A("ErrorCode"), "NoError")
        _sub(ur, _A("ErrorMessage"), "No error.")
        rt = _sub(ur, _A("RedirectTarget"))
        rt.set("{%s}nil" % NS_XSI, "true")
        errs = _sub(ur, _A("UserSettingErrors"))
        vals = _sub(ur, _A("UserSettings"))
        for name in settings:
            value = setting_value(sim, request, mb, name) if name in ANSWERED else None
            if value is None:
                e = _sub(errs, _A("UserSettingError"))
                if name in KNOWN_UNAVAILABLE or name in ANSWERED:
                    _sub(e, _A("ErrorCode"), "SettingIsNotAvailable")
                    _sub(e, _A("ErrorMessage"), "User setting '%s' is not available. " % name)
                else:
                    _sub(e, _A("ErrorCode"), "InvalidSetting")
                    _sub(e, _A("ErrorMessage"), "The requested setting, '%s', is invalid." % name)
                _sub(e, _A("SettingName"), name)
                continue
            us = _sub(vals, _A("UserSetting"))
            us.set("{%s}type" % NS_XSI, "StringSetting")
            _sub(us, _A("Name"), name)
            _sub(us, _A("Value"), value)
    return env


# ---------------------------------------------------------------------------------------
# POX
# ---------------------------------------------------------------------------------------


def _pox_error(code, message):
    root = etree.Element("{%s}Autodiscover" % NS_POX_RESP, nsmap={None: NS_POX_RESP})
    resp = etree.SubElement(root, "{%s}Response" % NS_POX_RESP)
    err = etree.SubElement(resp, "{%s}Error" % NS_POX_RESP)
    now = datetime.now(timezone.utc)
    err.set("Time", now.strftime("%H:%M:%S.%f") + "0")
    err.set("Id", str(int(_time.time() * 1000) % 4294967296))
    _sub(err, "{%s}ErrorCode" % NS_POX_RESP, str(code))
    _sub(err, "{%s}Message" % NS_POX_RESP, message)
    _sub(err, "{%s}DebugData" % NS_POX_RESP)
    return web.Response(status=200, body=etree.tostring(root, xml_declaration=True, encoding="utf-8"),
                        content_type="text/xml", charset="utf-8", headers={"Server": "Microsoft-IIS/10.0"})


def _server_version_hex():
    # Outlook's ServerVersion: 0x70000000 | major << 22 | minor << 16 | 0x8000 | build.
    return "%08X" % (0x70000000 | (15 << 22) | (2 << 16) | 0x8000 | 1748)


def pox_redirect(address):
    """Account/Action redirectAddr: ask again for this address (a mailbox in Exchange Online)."""
    root = etree.Element("{%s}Autodiscover" % NS_POX_RESP, nsmap={None: NS_POX_RESP})
    resp = etree.SubElement(root, "{%s}Response" % NS_POX_OUTLOOK, nsmap={None: NS_POX_OUTLOOK})
    acct = _sub(resp, "{%s}Account" % NS_POX_OUTLOOK)
    _sub(acct, "{%s}Action" % NS_POX_OUTLOOK, "redirectAddr")
    _sub(acct, "{%s}RedirectAddr" % NS_POX_OUTLOOK, address)
    return web.Response(status=200, body=etree.tostring(root, xml_declaration=True, encoding="utf-8"),
                        content_type="text/xml", charset="utf-8",
                        headers={"Server": "Microsoft-IIS/10.0", "X-FEServer": "EXCHFE01"})


def pox_response(sim, request, mb):
    url = ews_url(request)
    base = url.rsplit("/EWS/", 1)[0]
    root = etree.Element("{%s}Autodiscover" % NS_POX_RESP, nsmap={None: NS_POX_RESP})
    resp = etree.SubElement(root, "{%s}Response" % NS_POX_OUTLOOK, nsmap={None: NS_POX_OUTLOOK})

    def sub(parent, tag, text=None):
        return _sub(parent, "{%s}%s" % (NS_POX_OUTLOOK, tag), text)

    user = sub(resp, "User")
    sub(user, "DisplayName", mb.display_name)
    sub(user, "LegacyDN", setting_value(sim, request, mb, "UserDN"))
    sub(user, "AutoDiscoverSMTPAddress", mb.smtp)
    sub(user, "DeploymentId", setting_value(sim, request, mb, "UserDeploymentId"))
    acct = sub(resp, "Account")
    sub(acct, "AccountType", "email")
    sub(acct, "Action", "settings")
    sub(acct, "MicrosoftOnline", "False")
    server = _mailbox_server(sim, mb)
    exch = sub(acct, "Protocol")
    sub(exch, "Type", "EXCH")
    sub(exch, "Server", server)
    sub(exch, "ServerDN", setting_value(sim, request, mb, "InternalMailboxServerDN"))
    sub(exch, "ServerVersion", _server_version_hex())
    sub(exch, "MdbDN", setting_value(sim, request, mb, "MailboxDN"))
    sub(exch, "AD", setting_value(sim, request, mb, "ActiveDirectoryServer"))
    sub(exch, "ASUrl", url)
    sub(exch, "EwsUrl", url)
    sub(exch, "EmwsUrl", url)
    sub(exch, "EcpUrl", base + "/ecp/")
    sub(exch, "OOFUrl", url)
    sub(exch, "ServerExclusiveConnect", "off")
    expr = sub(acct, "Protocol")
    sub(expr, "Type", "EXPR")
    sub(expr, "Server", request.host.split(":")[0])
    sub(expr, "SSL", "On" if request.scheme == "https" else "Off")
    sub(expr, "AuthPackage", "Negotiate")
    sub(expr, "ASUrl", url)
    sub(expr, "EwsUrl", url)
    sub(expr, "EmwsUrl", url)
    sub(expr, "EcpUrl", base + "/ecp/")
    sub(expr, "OOFUrl", url)
    sub(expr, "ServerExclusiveConnect", "on")
    sub(expr, "GroupingInformation", grouping_information(mb.backend))
    return web.Response(status=200, body=etree.tostring(root, xml_declaration=True, encoding="utf-8"),
                        content_type="text/xml", charset="utf-8",
                        headers={"Server": "Microsoft-IIS/10.0", "X-FEServer": "EXCHFE01"})


# ---------------------------------------------------------------------------------------
# HTTP entry point
# ---------------------------------------------------------------------------------------

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


async def handle(request):
    """POST /autodiscover/autodiscover.svc (SOAP) and /autodiscover/autodiscover.xml (POX)."""
    sim = webio.sim_of(request)
    who = await sim.auth.authenticate(request)
    if isinstance(who, web.StreamResponse):
        sim.counters.inc("rejections", "http_401")
        return who
    pox = request.path.lower().endswith(".xml")
    if request.method != "POST":
        if pox:  # browsing to autodiscover.xml: Exchange answers "Invalid Request"
            return _pox_error(600, "Invalid Request")
        return web.Response(status=200, content_type="text/html",
                            text="<html><head><title>Service</title></head><body><p>You have created a service."
                                 "</p></body></html>")
    raw = await request.read()
    if b"<!DOCTYPE" in raw[:4096] or b"<!ENTITY" in raw:
        return _pox_error(600, "Invalid Request") if pox else _soap_fault("InvalidRequest", "DTDs are not allowed.",
                                                                          400)
    try:
        doc = etree.fromstring(raw, _PARSER)
    except etree.XMLSyntaxError:
        if pox:
            return _pox_error(600, "Invalid Request")
        return web.Response(status=400, text="Bad Request")
    if pox:
        sim.counters.inc("requests_by_op", "Autodiscover(POX)")
        if doc.tag != "{%s}Autodiscover" % NS_POX_REQ:
            return _pox_error(600, "Invalid Request")
        req = soap.child(doc, "Request")
        addr = soap.text_of(req, "EMailAddress") if req is not None else None
        schema = soap.text_of(req, "AcceptableResponseSchema") if req is not None else None
        if not addr:
            return _pox_error(600, "Invalid Request")
        if schema != NS_POX_OUTLOOK:
            return _pox_error(601, "The requested schema version is not supported.")
        mb, _err = sim.mailbox_by_any(addr, "SmtpAddress")
        if mb is None:
            return _pox_error(500, "The email address can't be found.")
        if sim.is_cloud(mb):
            return pox_redirect(sim.cloud_target(mb))
        return pox_response(sim, request, mb)
    # SOAP: dispatch on the body element (WCF would use wsa:Action; both agree for
    # well-formed requests).
    if doc.tag != "{%s}Envelope" % NS_S:
        return web.Response(status=400, text="Bad Request")
    body = soap.child(doc, "Body", NS_S)
    ops = [c for c in body if isinstance(c.tag, str)] if body is not None else []
    if len(ops) != 1:
        return _soap_fault("InvalidRequest", "The SOAP body must hold exactly one element.")
    op = ops[0]
    if op.tag != _A("GetUserSettingsRequestMessage"):
        sim.counters.inc("requests_by_op", "Autodiscover(unsupported)")
        return _soap_fault("ActionNotSupported",
                           "The message with Action '%s' cannot be processed at the receiver." % soap.local(op.tag))
    sim.counters.inc("requests_by_op", "GetUserSettings")
    return _xml(get_user_settings(sim, request, op))


# The IIS paths this module answers (lower case); main hands them to server.build_app.
PATHS = {"/autodiscover/autodiscover.svc": handle, "/autodiscover/autodiscover.xml": handle}
