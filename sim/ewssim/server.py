"""The EWS front end: HTTP handling, authentication, schema validation, impersonation,
routing to a backend (affinity), throttling, and dispatch to the operation handlers.

The order of checks follows Exchange 2019: IIS authenticates first (401), then EWS parses
and validates the request (ErrorSchemaValidation), checks the version, resolves the
impersonation header (ErrorNonExistentMailbox, ErrorImpersonateUserDenied), charges the
budget (ErrorServerBusy, ErrorExceededConnectionCount) and runs the operation.

The server knows no operation module: main hands build_app the table of operations
(registry.Table) and the handlers of the other IIS paths (Autodiscover).
"""

import asyncio
import logging
import os
import uuid

from aiohttp import web

from . import schema, soap, webio
from .webio import fault_response, xml_response

log = logging.getLogger("ews-sim")

MAX_REQUEST_BYTES = 32 << 20  # larger than any request a sync client sends

EWS_PATH = "/ews/exchange.asmx"


class Context:
    """Everything a handler needs to know about one request."""

    def __init__(self, sim, request, account, op_name, header):
        self.sim = sim
        self.request = request
        self.account = account  # state.Account that authenticated
        self.op_name = op_name
        self.operation = None  # registry.Operation, once the body names a known one
        self.op_element = None  # the body's operation element, once parsed (fault filters read it)
        self.header = header
        self.version = "Exchange2007_SP1"
        self.impersonating = False
        self.mailbox = None  # the impersonated mailbox, else the account's own mailbox
        self.tz_id = None
        self.backend = None
        self.anchor = None
        self.prefer_affinity = False
        self.cookie = None  # X-BackEndOverrideCookie the client sent
        self.set_cookie = False
        self.request_id = str(uuid.uuid4())
        self.client_request_id = request.headers.get("client-request-id")

    @property
    def budget(self):
        """Whose budget this request is charged to: the impersonated mailbox, else the account."""
        if self.impersonating:
            return "mailbox:" + self.mailbox.smtp
        return "account:" + self.account.smtp

    def response_headers(self):
        h = {
            "Server": "Microsoft-IIS/10.0",
            "request-id": self.request_id,
            "X-FEServer": "EXCHFE01",
            "X-AspNet-Version": "4.0.30319",
            "X-Powered-By": "ASP.NET",
        }
        if self.backend is not None:
            h["X-BEServer"] = self.backend.name
            h["X-CalculatedBETarget"] = self.backend.fqdn
            h["X-DiagInfo"] = self.backend.name
        if self.client_request_id and self.request.headers.get("return-client-request-id", "").lower() == "true":
            h["client-request-id"] = self.client_request_id
        return h

    def apply_cookies(self, resp):
        if self.set_cookie and self.backend is not None:
            resp.set_cookie("X-BackEndOverrideCookie", self.backend.cookie, path="/", httponly=True)
            resp.set_cookie("exchangecookie", uuid.uuid4().hex, path="/", httponly=True)
            resp.set_cookie("X-BackEndCookie", "%s=%s" % (self.mailbox.guid if self.mailbox else "", self.backend.cookie),
                            path="/EWS", httponly=True)


def _impersonation(ctx):
    """Resolve t:ExchangeImpersonation into ctx.mailbox, or raise the fault Exchange sends."""
    sim = ctx.sim
    imp = soap.child(ctx.header, "ExchangeImpersonation", soap.NS_T) if ctx.header is not None else None
    if imp is None:
        ctx.mailbox = sim.mailbox(ctx.account.smtp)
        return
    sid = soap.child(imp, "ConnectingSID")
    ident = None
    for c in (sid if sid is not None else []):
        if isinstance(c.tag, str):
            ident = c
            break
    value = (ident.text or "").strip() if ident is not None else ""
    if ident is None or not value:
        raise soap.EwsFault(
            "ErrorInvalidExchangeImpersonationHeaderData",
            "The impersonation header must contain exactly one non-empty identifier.",
        )
    kind = soap.local(ident.tag)
    if kind == "SID":
        raise soap.EwsFault("ErrorNonExistentMailbox", "No mailbox with SID %s exists." % value)
    mb, err = sim.mailbox_by_any(value, kind)
    if err == "ErrorNonPrimarySmtpAddress":
        raise soap.EwsFault(
            "ErrorNonPrimarySmtpAddress",
            "The SMTP address is not the primary SMTP address of the mailbox.",
            message_xml=[("Primary", mb.smtp)],
        )
    if err:
        raise soap.EwsFault("ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it.")
    if sim.is_cloud(mb) and not sim.moving(mb):
        # A mailbox moved to Exchange Online is a mail user (RemoteMailbox) on-premises: the
        # address resolves, but to no mailbox here. During a move window the request goes on
        # and gets ErrorMailboxMoveInProgress (faults.before).
        raise soap.EwsFault("ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it.")
    if not ctx.account.may_impersonate(mb):
        sim.counters.inc("rejections", "ErrorImpersonateUserDenied")
        raise soap.EwsFault(
            "ErrorImpersonateUserDenied", "The account does not have permission to impersonate the requested user."
        )
    ctx.mailbox = mb
    ctx.impersonating = True


def _route(ctx):
    """Pick the backend as the Exchange 2013+ front end does: the X-BackEndOverrideCookie
    when X-PreferServerAffinity is true, else the X-AnchorMailbox, else the mailbox the
    request acts on. The cookie is handed out when affinity is asked for without one."""
    sim, req = ctx.sim, ctx.request
    ctx.prefer_affinity = req.headers.get("X-PreferServerAffinity", "").strip().lower() == "true"
    ctx.anchor = req.headers.get("X-AnchorMailbox")
    ctx.cookie = req.cookies.get("X-BackEndOverrideCookie") or req.headers.get("X-BackEndOverrideCookie")
    if ctx.prefer_affinity and ctx.cookie:
        b = sim.backend_by_cookie(ctx.cookie)
        if b is not None:
            ctx.backend = b
            return
    anchor_mb = sim.mailbox(ctx.anchor) if ctx.anchor else None
    if anchor_mb is not None:
        ctx.backend = anchor_mb.backend
    elif ctx.mailbox is not None:
        ctx.backend = ctx.mailbox.backend
    else:
        ctx.backend = sim.backends[0]
    if ctx.prefer_affinity:
        ctx.set_cookie = True


def _headers(ctx):
    h = ctx.header
    if h is None:
        return
    rsv = soap.child(h, "RequestServerVersion", soap.NS_T)
    if rsv is not None:
        ctx.version = rsv.get("Version", ctx.version)
    tzc = soap.child(h, "TimeZoneContext", soap.NS_T)
    if tzc is not None:
        d = soap.child(tzc, "TimeZoneDefinition")
        if d is not None:
            ctx.tz_id = d.get("Id")


async def handle_ews(request, operations):
    """An EWS request, dispatched on operations (registry.Table)."""
    sim = webio.sim_of(request)
    auth = sim.auth
    account_name = await auth.authenticate(request)
    if isinstance(account_name, web.StreamResponse):
        sim.counters.inc("rejections", "http_401")
        return account_name
    account = sim.accounts.get(account_name)
    if account is None:  # bearer token for an account that was deleted meanwhile
        return web.Response(status=401, text="401 - Unauthorized")
    if request.method == "GET":
        return web.Response(
            status=200,
            content_type="text/html",
            text="<html><head><title>Service</title></head><body><p>You have created a service.</p></body></html>",
        )
    ctype = request.headers.get("Content-Type", "")
    if not ctype.lower().startswith("text/xml"):
        sim.counters.inc("rejections", "http_415")
        return web.Response(status=415, text="Unsupported Media Type: EWS takes text/xml")
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        return web.Response(status=413, text="Request Entity Too Large")
    body = await request.read()
    ctx = Context(sim, request, account, "?", None)
    try:
        _env, header, op = schema.parse_request(body)
        ctx.header = header
        ctx.op_name = soap.local(op.tag)
        ctx.op_element = op
        if sim.validate:
            schema.validate(header, op)
        _headers(ctx)
        entry = operations.get(ctx.op_name)
        ctx.operation = entry
        if entry is None:
            raise soap.EwsFault(
                "ErrorInvalidOperation", "The operation %s is not supported by this server." % ctx.op_name
            )
        if entry.min_version and not soap.version_at_least(ctx.version, entry.min_version):
            raise soap.EwsFault(
                "ErrorInvalidServerVersion",
                "The specified server version is invalid for %s; it needs %s or later."
                % (ctx.op_name, entry.min_version),
            )
        _impersonation(ctx)
        _route(ctx)
    except soap.EwsFault as exc:
        sim.counters.inc("requests_by_op", ctx.op_name)
        sim.counters.inc("faults", exc.code)
        if exc.code == "ErrorSchemaValidation":
            sim.counters.inc("rejections", "ErrorSchemaValidation")
        return fault_response(exc, ctx)

    sim.counters.inc("requests_by_op", ctx.op_name)
    sim.counters.inc("requests_by_budget", ctx.budget)
    throttle = sim.throttle
    entered = False
    try:
        if sim.latency:
            await asyncio.sleep(sim.latency)
        injected = await sim.faults.before(ctx)
        if injected is not None:
            return injected
        if entry.throttled and not entry.streaming:
            delay = throttle.enter(ctx)  # sim seconds of budget overdraft delay, or 0
            entered = True
            if delay:
                await sim.clock.sleep(delay)
        result = await entry.handler(ctx, op)
        if isinstance(result, web.StreamResponse):
            return result
        return xml_response(result, ctx)
    except soap.EwsFault as exc:
        sim.counters.inc("faults", exc.code)
        return fault_response(exc, ctx)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:  # a bug in ews-sim: answer like Exchange, and say so in the log
        log.exception("internal error in %s", ctx.op_name)
        return fault_response(
            soap.EwsFault("ErrorInternalServerError", "An internal server error occurred: %s" % exc), ctx
        )
    finally:
        if entered:
            throttle.leave(ctx)


async def handle_schema_file(request, name):
    files = {"messages.xsd": "messages.xsd", "types.xsd": "types.xsd", "services.wsdl": "services.wsdl"}
    if name not in files:
        raise web.HTTPNotFound()
    sim = webio.sim_of(request)
    r = await sim.auth.authenticate(request)
    if isinstance(r, web.StreamResponse):
        return r
    with open(os.path.join(schema.SCHEMA_DIR, files[name]), "rb") as f:
        return web.Response(body=f.read(), content_type="text/xml")


async def handle_not_found(request):
    raise web.HTTPNotFound()


def build_app(sim, operations, paths):
    """The EWS application of sim: EWS at EWS_PATH dispatched on operations (registry.Table),
    the schema files, and paths (lower-case path -> aiohttp handler, e.g. Autodiscover)."""
    app = webio.new_app(sim, MAX_REQUEST_BYTES)

    @web.middleware
    async def iis_paths(request, handler):
        # IIS paths are case-insensitive; aiohttp's router is not.
        p = request.path.lower()
        if p == EWS_PATH and request.method in ("POST", "GET"):
            return await handle_ews(request, operations)
        extra = paths.get(p)
        if extra is not None:
            return await extra(request)
        if p.startswith("/ews/") and p.count("/") == 2 and request.method == "GET":
            return await handle_schema_file(request, p.rsplit("/", 1)[1])
        return await handler(request)

    app.middlewares.append(iis_paths)
    app.router.add_route("*", "/{tail:.*}", handle_not_found)
    return app
