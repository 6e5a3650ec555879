"""SOAP/EWS envelope helpers: namespaces, element builders, response messages, faults.

Every module of ews-sim builds its answers with these helpers so that the envelope,
the ServerVersionInfo header and the fault shape are those of Exchange 2019 in one place.
"""

from lxml import etree

NS_S = "http://schemas.xmlsoap.org/soap/envelope/"
NS_M = "http://schemas.microsoft.com/exchange/services/2006/messages"
NS_T = "http://schemas.microsoft.com/exchange/services/2006/types"
NS_E = "http://schemas.microsoft.com/exchange/services/2006/errors"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_XSD = "http://www.w3.org/2001/XMLSchema"
NS_A = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
NS_WSA = "http://www.w3.org/2005/08/addressing"

# What Exchange 2019 CU12 reports; Exchange SE RTM shares 15.2.
SERVER_VERSION = {
    "MajorVersion": "15",
    "MinorVersion": "2",
    "MajorBuildNumber": "1748",
    "MinorBuildNumber": "10",
    "Version": "V2017_07_11",
}

# RequestServerVersion values the schema accepts, oldest first, so that "at least X"
# checks are index comparisons.
VERSIONS = [
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
    "V2017_01_07",
    "V2017_04_14",
    "V2017_07_11",
]


def version_at_least(version, minimum):
    """True when the RequestServerVersion `version` is `minimum` or newer."""
    try:
        return VERSIONS.index(version) >= VERSIONS.index(minimum)
    except ValueError:
        return False


def M(tag):
    return "{%s}%s" % (NS_M, tag)


def T(tag):
    return "{%s}%s" % (NS_T, tag)


NSMAP_MT = {"m": NS_M, "t": NS_T}


def el(parent, tag, text=None, attrib=None, **kw):
    """Append a child to parent (or make a root when parent is None) and return it.

    tag is a Clark name ("{ns}local"); text is converted with str() unless None.
    """
    a = dict(attrib or {})
    a.update({k: v for k, v in kw.items() if v is not None})
    if parent is None:
        e = etree.Element(tag, attrib=a, nsmap=NSMAP_MT)
    else:
        e = etree.SubElement(parent, tag, attrib=a)
    if text is not None:
        e.text = text if isinstance(text, str) else str(text).lower() if isinstance(text, bool) else str(text)
    return e


def local(tag):
    """Local name of an lxml tag (ignores the namespace, as the traps in the reference require)."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def child(parent, name, ns=None):
    """First child with this local name (and namespace when given), or None."""
    for c in parent:
        if local(c.tag) == name and (ns is None or c.tag == "{%s}%s" % (ns, name)):
            return c
    return None


def children(parent, name):
    return [c for c in parent if local(c.tag) == name]


def text_of(parent, name, default=None):
    c = child(parent, name)
    if c is None or c.text is None:
        return default
    return c.text.strip()


class EwsFault(Exception):
    """A request-level failure, answered as a SOAP fault (HTTP 500 unless said otherwise)."""

    def __init__(self, code, message, message_xml=None, http_status=500, headers=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_xml = message_xml or []  # list of (name, value) pairs
        self.http_status = http_status
        self.headers = headers or {}


class MessageError(Exception):
    """A per-message failure inside a 200 response (ResponseClass="Error")."""

    def __init__(self, code, message, message_xml=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_xml = message_xml or []


def response_root(op):
    """The m:<op>Response element with its m:ResponseMessages child."""
    root = el(None, M(op + "Response"))
    msgs = el(root, M("ResponseMessages"))
    return root, msgs


def success_message(msgs, msg_tag):
    m = el(msgs, M(msg_tag), attrib={"ResponseClass": "Success"})
    el(m, M("ResponseCode"), "NoError")
    return m


def error_message(msgs, msg_tag, code, text, message_xml=None, response_class="Error"):
    m = el(msgs, M(msg_tag), attrib={"ResponseClass": response_class})
    el(m, M("MessageText"), text)
    el(m, M("ResponseCode"), code)
    el(m, M("DescriptiveLinkKey"), "0")
    if message_xml:
        mx = el(m, M("MessageXml"))
        for name, value in message_xml:
            el(mx, T("Value"), str(value), Name=name)
    return m


def message_from_error(msgs, msg_tag, exc):
    return error_message(msgs, msg_tag, exc.code, exc.message, exc.message_xml)


def _server_version_header(header):
    sv = etree.SubElement(
        header,
        "{%s}ServerVersionInfo" % NS_T,
        attrib=SERVER_VERSION,
        nsmap={"h": NS_T, None: NS_T, "xsd": NS_XSD, "xsi": NS_XSI},
    )
    return sv


def envelope(body_child):
    """Serialize a normal (non-streaming) response the way Exchange 2019 writes it."""
    env = etree.Element("{%s}Envelope" % NS_S, nsmap={"s": NS_S})
    header = etree.SubElement(env, "{%s}Header" % NS_S)
    _server_version_header(header)
    body = etree.SubElement(env, "{%s}Body" % NS_S, nsmap={"xsi": NS_XSI, "xsd": NS_XSD})
    body.append(body_child)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def fault_body(code, message, message_xml=None, lang="en-US"):
    """A SOAP 1.1 fault as Exchange sends it: faultcode in the types namespace, the
    detail's ResponseCode and Message in the errors namespace, t:MessageXml values."""
    env = etree.Element("{%s}Envelope" % NS_S, nsmap={"s": NS_S})
    body = etree.SubElement(env, "{%s}Body" % NS_S)
    fault = etree.SubElement(body, "{%s}Fault" % NS_S)
    fc = etree.SubElement(fault, "faultcode", nsmap={"a": NS_T})
    fc.text = "a:" + code
    fs = etree.SubElement(fault, "faultstring")
    fs.set("{http://www.w3.org/XML/1998/namespace}lang", lang)
    fs.text = message
    detail = etree.SubElement(fault, "detail")
    rc = etree.SubElement(detail, "{%s}ResponseCode" % NS_E, nsmap={"e": NS_E})
    rc.text = code
    msg = etree.SubElement(detail, "{%s}Message" % NS_E, nsmap={"e": NS_E})
    msg.text = message
    if message_xml:
        mx = etree.SubElement(detail, "{%s}MessageXml" % NS_T, nsmap={"t": NS_T})
        for name, value in message_xml:
            if name in ("LineNumber", "LinePosition", "Violation"):
                v = etree.SubElement(mx, "{%s}%s" % (NS_T, name))
                v.text = str(value)
            else:
                v = etree.SubElement(mx, "{%s}Value" % NS_T, Name=name)
                v.text = str(value)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def iso(dt):
    """UTC instant as Exchange writes it: 2025-03-03T09:00:00Z."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
