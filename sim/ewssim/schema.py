"""Validation of incoming EWS requests against the schema Exchange 2019 serves.

Exchange validates the SOAP header elements it knows and the single body element against
messages.xsd/types.xsd and answers a failure with an ErrorSchemaValidation fault that
carries LineNumber, LinePosition and Violation. We do the same with lxml (libxml2).
"""

import os
import threading

from lxml import etree

from . import soap

SCHEMA_DIR = os.environ.get(
    "EWS_SIM_SCHEMA_DIR",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "ews-schema"),
)

# Header elements Exchange validates; other headers (WS-Addressing, unknown extensions)
# are ignored unless they carry mustUnderstand, as SOAP 1.1 says.
KNOWN_HEADERS = {
    "RequestServerVersion",
    "ExchangeImpersonation",
    "TimeZoneContext",
    "MailboxCulture",
    "DateTimePrecision",
    "SerializedSecurityContext",
    "ManagementRole",
    "BackgroundLoad",
}

# A hardened parser: no network, no entity expansion, no DTD loading, bounded size.
PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=False
)

_lock = threading.Lock()
_schema = None


def schema():
    """The compiled messages.xsd (which imports types.xsd); loaded once."""
    global _schema
    with _lock:
        if _schema is None:
            _schema = etree.XMLSchema(etree.parse(os.path.join(SCHEMA_DIR, "messages.xsd")))
        return _schema


class SchemaError(soap.EwsFault):
    def __init__(self, violation, line=0, pos=0):
        msg = "The request failed schema validation: %s" % violation
        super().__init__(
            "ErrorSchemaValidation",
            msg,
            message_xml=[("LineNumber", line), ("LinePosition", pos), ("Violation", violation)],
        )


def parse_request(body: bytes):
    """Parse a SOAP request; return (envelope, header or None, body element).

    Raises SchemaError for anything that is not a well-formed SOAP 1.1 envelope with one
    body element, like Exchange does ("Data at the root level is invalid").
    """
    if b"<!DOCTYPE" in body[:4096] or b"<!ENTITY" in body:
        raise SchemaError("DTDs are not allowed in requests.", 1, 1)
    try:
        env = etree.fromstring(body, PARSER)
    except etree.XMLSyntaxError as exc:
        line, pos = (exc.position if exc.position else (1, 1))
        raise SchemaError("Data at the root level is invalid. %s" % exc.msg, line, pos)
    if env.tag != "{%s}Envelope" % soap.NS_S:
        raise SchemaError(
            "The root element must be {%s}Envelope, found %s." % (soap.NS_S, env.tag), env.sourceline or 1, 1
        )
    header = None
    body_el = None
    for c in env:
        if not isinstance(c.tag, str):
            continue
        if c.tag == "{%s}Header" % soap.NS_S and header is None and body_el is None:
            header = c
        elif c.tag == "{%s}Body" % soap.NS_S and body_el is None:
            body_el = c
        else:
            raise SchemaError("Unexpected element %s in the SOAP envelope." % c.tag, c.sourceline or 1, 1)
    if body_el is None:
        raise SchemaError("The SOAP envelope has no Body.", env.sourceline or 1, 1)
    ops = [c for c in body_el if isinstance(c.tag, str)]
    if len(ops) != 1:
        raise SchemaError("The SOAP Body must hold exactly one element, found %d." % len(ops), body_el.sourceline or 1, 1)
    return env, header, ops[0]


def _validate_element(e):
    """Validate one element as a document of its own against the EWS schema."""
    doc = etree.fromstring(etree.tostring(e), PARSER)
    s = schema()
    if not s.validate(doc):
        err = s.error_log.last_error
        # Report the line of the element in the original request, like Exchange does.
        line = (e.sourceline or 1) + max(err.line - 1, 0)
        raise SchemaError(err.message, line, err.column or 1)


def validate(header, op):
    """Validate the known header elements and the body element; raises SchemaError."""
    if header is not None:
        for h in header:
            if not isinstance(h.tag, str):
                continue
            ns = h.tag[1:].split("}", 1)[0] if h.tag.startswith("{") else ""
            if ns == soap.NS_T and soap.local(h.tag) in KNOWN_HEADERS:
                _validate_element(h)
            elif ns == soap.NS_T:
                raise SchemaError(
                    "The element '%s' is not a valid EWS SOAP header." % soap.local(h.tag), h.sourceline or 1, 1
                )
            elif h.get("{%s}mustUnderstand" % soap.NS_S) in ("1", "true"):
                raise soap.EwsFault("ErrorInvalidRequest", "SOAP header %s must be understood." % h.tag)
    if not op.tag.startswith("{%s}" % soap.NS_M):
        raise SchemaError("The element '%s' is not an EWS operation." % op.tag, op.sourceline or 1, 1)
    _validate_element(op)
