"""HTTP helpers shared by ews-sim's modules: the sim an application serves, the control
API's JSON bodies and errors, and the EWS XML and SOAP fault answers.

A leaf: it imports only soap from ews-sim, so that every module that answers HTTP can use
it without importing the modules that own the routes.
"""

import json

from aiohttp import web

from . import soap

# The one key under which an aiohttp application holds its sim (state.Sim).
SIM_KEY = "sim"


def new_app(sim, client_max_size):
    """An aiohttp application serving sim, taking request bodies up to client_max_size bytes."""
    app = web.Application(client_max_size=client_max_size)
    app[SIM_KEY] = sim
    return app


def sim_of(request):
    """The state.Sim the request's application serves."""
    return request.app[SIM_KEY]


# -- the control API's JSON ---------------------------------------------------------------


async def read_json(request):
    """The request's JSON object ({} for an empty body), or raise a 400 naming what is wrong."""
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body is not JSON: %s" % exc}), content_type="application/json"
        )
    if not isinstance(doc, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}), content_type="application/json")
    return doc


def bad(message):
    """A 400 with {"error": message}, to raise."""
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def not_found(message):
    """A 404 with {"error": message}, to raise."""
    return web.HTTPNotFound(text=json.dumps({"error": message}), content_type="application/json")


# -- EWS answers --------------------------------------------------------------------------


def fault_response(exc, ctx=None):
    """The SOAP fault for soap.EwsFault exc, with the request's headers when ctx
    (server.Context) is given."""
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if ctx is not None:
        headers.update(ctx.response_headers())
    headers.update(exc.headers)
    body = soap.fault_body(exc.code, exc.message, exc.message_xml)
    return web.Response(status=exc.http_status, body=body, headers=headers)


def xml_response(root, ctx):
    """HTTP 200 with the m:<Op>Response root in Exchange's envelope, headers and cookies."""
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    headers.update(ctx.response_headers())
    resp = web.Response(status=200, body=soap.envelope(root), headers=headers)
    ctx.apply_cookies(resp)
    return resp
