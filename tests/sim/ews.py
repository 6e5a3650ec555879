"""A small EWS client for the tests: builds envelopes, posts them with Basic auth (or a
given requests session), parses answers. Deliberately independent of ews-sim's code."""

import base64
import http.client
import urllib.parse

from lxml import etree

from simharness import NS, PASSWORD, SVC

ENV_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
)


def envelope(body, impersonate=None, version="Exchange2013_SP1", id_type="SmtpAddress", extra_header=""):
    h = '<t:RequestServerVersion Version="%s"/>' % version if version else ""
    if impersonate is not None:
        h += (
            "<t:ExchangeImpersonation><t:ConnectingSID><t:%s>%s</t:%s></t:ConnectingSID>"
            "</t:ExchangeImpersonation>" % (id_type, impersonate, id_type)
        )
    h += extra_header
    return (ENV_HEAD + "<s:Header>%s</s:Header><s:Body>%s</s:Body></s:Envelope>" % (h, body)).encode()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self._doc = None

    @property
    def doc(self):
        if self._doc is None:
            self._doc = etree.fromstring(self.body)
        return self._doc

    def xpath(self, path):
        return self.doc.xpath(path, namespaces=NS)

    def codes(self):
        """ResponseCode of every response message, in order."""
        return [e.text for e in self.xpath("//m:ResponseCode")]

    def fault_code(self):
        r = self.xpath("//s:Fault/detail/e:ResponseCode")
        return r[0].text if r else None

    def cookie(self, name):
        for k, v in self.headers:
            if k.lower() == "set-cookie" and v.startswith(name + "="):
                return v.split(";", 1)[0].split("=", 1)[1]
        return None


def post(url, body, user=SVC, password=PASSWORD, headers=None, timeout=60, conn=None):
    """POST an EWS request with Basic auth; returns Response. conn: reuse an HTTPConnection."""
    u = urllib.parse.urlsplit(url)
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    h = {"Content-Type": "text/xml; charset=utf-8"}
    if user is not None:
        h["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    h.update(headers or {})
    conn.request("POST", u.path, body=body, headers=h)
    r = conn.getresponse()
    resp = Response(r.status, r.getheaders(), r.read())
    if own:
        conn.close()
    return resp


def call(sim, body, impersonate=None, headers=None, **kw):
    return post(sim.ews, envelope(body, impersonate=impersonate, **kw), headers=headers)
