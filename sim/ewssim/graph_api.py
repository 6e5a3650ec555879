"""The Graph simulator's HTTP front end: the Entra ID endpoints (token, OpenID
configuration, keys) and Microsoft Graph v1.0 under /v1.0/: users, calendarView (and its
delta), events, subscriptions and JSON $batch.

Every Graph request goes through `prepare` (authentication, route, user, permission,
mailbox location, the concurrency slot and the faults on demand) and then its handler, in
that order; a $batch runs its independent requests at the same time, so their slots
count together. Errors are Graph's JSON error bodies with innerError (date, request-id,
client-request-id).
"""

import asyncio
import json
import logging
import urllib.parse

from . import graph_model as gm
from . import graph_util as gu
from . import webio
from .graph_util import Call, GraphError

log = logging.getLogger("ews-sim")

MAX_BATCH = 20
CALENDAR_ROLES = {"Calendars.Read", "Calendars.ReadWrite", "Calendars.ReadBasic", "Calendars.ReadBasic.All"}
USER_ROLES = {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All",
              "User.ReadBasic.All"}
DELTA_NAMES = {"delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()"}


class Route:
    __slots__ = ("op", "handler", "user", "mailbox", "roles", "sub_id")

    def __init__(self, op, handler, user=None, mailbox=False, roles=None, sub_id=None):
        self.op = op
        self.handler = handler
        self.user = user  # the users/{x} segment
        self.mailbox = mailbox  # a mailbox resource (Exchange Online only, throttled)
        self.roles = roles
        self.sub_id = sub_id


def _route(call):
    """The Route for call, or raise the error Graph answers for the path."""
    seg = call.segments
    low = [s.lower() for s in seg]
    m = call.method
    if not seg:
        raise GraphError(400, "BadRequest", "Invalid request.")
    if low[0] == "me":
        raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
    if low[0] == "subscriptions":
        if len(seg) == 1:
            if m == "POST":
                return Route("subscriptions.create", subscription_create)
            if m == "GET":
                return Route("subscriptions.list", subscription_list)
        elif len(seg) == 2:
            h = {"GET": ("subscriptions.get", subscription_get), "PATCH": ("subscriptions.update", subscription_update),
                 "DELETE": ("subscriptions.delete", subscription_delete)}.get(m)
            if h:
                return Route(h[0], h[1], sub_id=seg[1])
        elif len(seg) == 3 and low[2] in ("reauthorize", "microsoft.graph.reauthorize") and m == "POST":
            return Route("subscriptions.reauthorize", subscription_reauthorize, sub_id=seg[1])
        raise _no_method(m)
    if low[0] != "users" or len(seg) < 2:
        raise GraphError(400, "BadRequest", "Resource not found for the segment '%s'." % seg[0])
    user = seg[1]
    rest = low[2:]
    if rest[:1] == ["calendar"] and rest[1:2] in (["calendarview"], ["events"]):
        rest = rest[1:]
    if not rest:
        return _get(m, Route("users.get", user_get, user=user, roles=USER_ROLES))
    if rest == ["calendarview"]:
        return _get(m, Route("calendarView", calendar_view, user, True, CALENDAR_ROLES))
    if len(rest) == 2 and rest[0] == "calendarview" and rest[1] in DELTA_NAMES:
        return _get(m, Route("calendarView.delta", calendar_view_delta, user, True, CALENDAR_ROLES))
    if rest == ["events"]:
        return _get(m, Route("events.list", events_list, user, True, CALENDAR_ROLES))
    if rest[0] == "events" and len(rest) == 2:
        return _get(m, Route("events.get", event_get, user, True, CALENDAR_ROLES))
    if rest[0] == "events" and len(rest) == 3 and rest[2] == "instances":
        return _get(m, Route("events.instances", event_instances, user, True, CALENDAR_ROLES))
    bad = next((s for s, s_low in zip(seg[2:], rest) if s_low not in ("calendar", "calendarview", "events")),
               seg[-1])
    raise GraphError(400, "BadRequest", "Resource not found for the segment '%s'." % bad)


def _get(method, route):
    if method != "GET":
        raise _no_method(method)
    return route


def _no_method(method):
    return GraphError(405, "BadRequest", "The HTTP method '%s' is not allowed for this resource." % method)


# -- dispatch ----------------------------------------------------------------------------------------


def prepare(call, authorization):
    """Everything before the handler. Returns (route, slot key); raises GraphError."""
    g = call.sim.graph
    call.token = g.auth.authenticate(authorization)
    route = _route(call)
    call.op = route.op
    call.sim.counters.inc("graph_requests", route.op)
    user = None
    if route.user is not None:
        user = g.find_user(route.user)
        if user is None:
            if route.op == "users.get":
                raise GraphError(404, "Request_ResourceNotFound",
                                 "Resource '%s' does not exist or one of its queried reference-property objects "
                                 "are not present." % route.user)
            raise GraphError(404, "ErrorInvalidUser", "The requested user '%s' is invalid." % route.user)
        if route.roles and not route.roles & set(call.token.roles):
            if route.op == "users.get":
                raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the "
                                 "operation.")
            raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        if route.mailbox:
            if not g.mailbox_ready(user):
                raise GraphError(404, "MailboxNotEnabledForRESTAPI", "REST API is not yet supported for this mailbox.")
            call.mailbox = user
    slot = g.faults.enter(call) if route.mailbox else None
    return route, slot, user


async def run(call, route, slot, user):
    """The handler after prepare: faults on demand, then the operation. Releases the slot."""
    g = call.sim.graph
    try:
        delay = g.faults.before(call)
        if delay:
            await call.sim.clock.sleep(delay)
        return await route.handler(call, route, user)
    finally:
        g.faults.leave(slot)


def error_result(call, exc):
    call.sim.counters.inc("graph_errors", "%d %s" % (exc.status, exc.code))
    headers = dict(exc.headers)
    return exc.status, gu.error_body(exc.code, exc.message, call.ids), headers


async def dispatch(call, authorization):
    """One Graph request: (status, JSON doc or None, headers)."""
    try:
        route, slot, user = prepare(call, authorization)
    except GraphError as exc:
        return error_result(call, exc)
    try:
        return await run(call, route, slot, user)
    except GraphError as exc:
        return error_result(call, exc)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:  # a bug in the simulator: answer like Graph, and say so in the log
        log.exception("internal error in Graph %s", call.op)
        return error_result(call, GraphError(500, "InternalServerError", "An internal error occurred: %s" % exc))


def _base(request):
    host = request.headers.get("Host") or request.host
    return "%s://%s" % (request.scheme, host)


async def handle_graph(request):
    """Every request under /v1.0/."""
    sim = webio.sim_of(request)
    ids = gu.RequestIds(request.headers, sim.clock.now())
    path = request.match_info["tail"]
    body = None
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                return gu.json_response(400, gu.error_body(
                    "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and "
                    "payload is of valid JSON format.", ids), ids)
    call = Call(sim, request.method, path, dict(request.query), dict(request.headers), body, _base(request), ids)
    if path.strip("/").lower() == "$batch":
        status, doc, headers = await batch(call, request.headers.get("Authorization"))
    else:
        status, doc, headers = await dispatch(call, request.headers.get("Authorization"))
    if status == 401:
        headers["WWW-Authenticate"] = sim.graph.auth.www_authenticate(request)
    return gu.json_response(status, doc, ids, headers)


# -- handlers ---------------------------------------------------------------------------------------


def _users_path(call):
    return "/".join(call.segments)


async def user_get(call, route, mb):
    doc = gm.user_json(mb)
    doc = {"@odata.context": call.link("$metadata#users/$entity", [])} | doc
    sel = call.query.get("$select")
    if sel:
        keep = {s.strip() for s in sel.split(",")} | {"id"}
        doc = {k: v for k, v in doc.items() if k in keep or k.startswith("@")}
    return 200, doc, {}


async def calendar_view(call, route, mb):
    lo, hi = gm.window(call)
    views = gm.view_in_window(mb.calendar, lo, hi)
    keep = [k for k in call.query if k != "$skip"]
    context = call.link("$metadata#users('%s')/calendarView" % route.user, [])
    doc, headers = gm.collection(call, _users_path(call), views, keep, call.sim.graph.page_size, context)
    return 200, doc, headers


async def calendar_view_delta(call, route, mb):
    doc, headers = call.sim.graph.deltas.request(call, mb, _users_path(call))
    return 200, doc, headers


async def events_list(call, route, mb):
    keep = [k for k in call.query if k != "$skip"]
    context = call.link("$metadata#users('%s')/events" % route.user, [])
    doc, headers = gm.collection(call, _users_path(call), gm.stored_views(mb.calendar), keep, call.sim.graph.page_size, context)
    return 200, doc, headers


def _resolve_event(mb, rest):
    try:
        view = mb.calendar.resolve(gu.ews_id(rest))
    except ValueError:
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
    except LookupError:
        view = None
    if view is None or view.item.folder != "calendar":
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    return view


async def event_get(call, route, mb):
    view = _resolve_event(mb, call.segments[-1])
    applied = []
    zone = gm.zone_of(call, applied)
    doc = gm.apply_select(gm.event_json(view, zone), gm.select_props(call))
    doc = {"@odata.context": call.link("$metadata#users('%s')/events/$entity" % route.user, [])} | doc
    return 200, doc, ({"Preference-Applied": ", ".join(applied)} if applied else {})


async def event_instances(call, route, mb):
    view = _resolve_event(mb, call.segments[-2])
    lo, hi = gm.window(call)
    views = [v for v in gm.view_in_window(mb.calendar, lo, hi) if v.is_instance and v.item is view.item]
    keep = [k for k in call.query if k != "$skip"]
    context = call.link("$metadata#users('%s')/events('%s')/instances" % (route.user, call.segments[-2]), [])
    doc, headers = gm.collection(call, _users_path(call), views, keep, call.sim.graph.page_size, context)
    return 200, doc, headers


# -- subscriptions ------------------------------------------------------------------------------------


def _subscription_resource(call):
    """resolve(resource) for Subscriptions.create: users/{id}/events (with or without a
    leading '/', any case, also users/{id}/calendar/events)."""
    g = call.sim.graph

    def resolve(resource):
        segs = [s for s in resource.split("?", 1)[0].split("/") if s]
        low = [s.lower() for s in segs]
        if "?" in resource:
            raise GraphError(400, "InvalidRequest", "The simulator does not support notificationQueryOptions or "
                             "query options in 'resource'.")
        if low[:1] == ["me"]:
            raise GraphError(400, "ExtensionError", "Operation: Create; Exception: [Status Code: BadRequest; "
                             "Reason: /me is only valid with delegated authentication flow.]")
        if len(segs) not in (3, 4) or low[0] != "users" or low[-1] != "events" or (
                len(segs) == 4 and low[2] != "calendar"):
            raise GraphError(400, "InvalidRequest", "The resource '%s' is not supported: the simulator serves "
                             "change notifications for users/{id}/events." % resource)
        mb = g.find_user(segs[1])
        if mb is None:
            raise GraphError(404, "ExtensionError", "Operation: Create; Exception: [Status Code: NotFound; Reason: "
                             "The requested user '%s' is invalid.]" % segs[1])
        if not CALENDAR_ROLES & set(call.token.roles):
            raise GraphError(403, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; Reason: "
                             "Access is denied. Check credentials and try again.]")
        if not g.mailbox_ready(mb):
            raise GraphError(404, "ExtensionError", "Operation: Create; Exception: [Status Code: NotFound; Reason: "
                             "REST API is not yet supported for this mailbox.]")
        return mb, resource

    return resolve


async def subscription_create(call, route, _mb):
    subs = call.sim.graph.subs
    sub = await subs.create(call, _subscription_resource(call))
    return 201, sub.json(call.base, call.sim.graph.auth.sp_object_id), {}


async def subscription_list(call, route, _mb):
    g = call.sim.graph
    value = [s.json(call.base, g.auth.sp_object_id) for s in g.subs.list(call.token.client_id)]
    for v in value:
        v.pop("@odata.context", None)
    return 200, {"@odata.context": call.link("$metadata#subscriptions", []), "value": value}, {}


async def subscription_get(call, route, _mb):
    g = call.sim.graph
    return 200, g.subs.get(route.sub_id, call.token.client_id).json(call.base, g.auth.sp_object_id), {}


async def subscription_update(call, route, _mb):
    g = call.sim.graph
    sub = await g.subs.update(call, route.sub_id)
    return 200, sub.json(call.base, g.auth.sp_object_id), {}


async def subscription_delete(call, route, _mb):
    call.sim.graph.subs.delete(call, route.sub_id)
    return 204, None, {}


async def subscription_reauthorize(call, route, _mb):
    call.sim.graph.subs.reauthorize(call, route.sub_id)
    return 204, None, {}


# -- $batch --------------------------------------------------------------------------------------------


def _batch_requests(body):
    reqs = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(reqs, list) or not reqs:
        raise GraphError(400, "BadRequest", "Invalid batch payload format: 'requests' must be a non-empty array.")
    if len(reqs) > MAX_BATCH:
        raise GraphError(400, "BadRequest", "The batch request exceeds the limit of %d requests per batch." % MAX_BATCH)
    seen = set()
    for r in reqs:
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not r["id"]:
            raise GraphError(400, "BadRequest", "Invalid batch payload format: every request needs an 'id' string.")
        if r["id"] in seen:
            raise GraphError(400, "BadRequest", "Batch request ids must be unique; '%s' appears twice." % r["id"])
        seen.add(r["id"])
        if not isinstance(r.get("method"), str) or not isinstance(r.get("url"), str):
            raise GraphError(400, "BadRequest", "Invalid batch payload format: request '%s' needs 'method' and 'url'."
                             % r["id"])
        deps = r.get("dependsOn", [])
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise GraphError(400, "BadRequest", "dependsOn of request '%s' must be an array of ids." % r["id"])
    for r in reqs:
        for d in r.get("dependsOn", []):
            if d not in seen or d == r["id"]:
                raise GraphError(400, "BadRequest", "Request '%s' depends on an unknown request '%s'." % (r["id"], d))
    return reqs


def _sub_call(outer, r):
    url = r["url"].strip()
    if url.lower().startswith(("http://", "https://")):
        raise GraphError(400, "BadRequest", "Invalid request URL '%s': batch URLs are relative to the version." % url)
    path, _, qs = url.lstrip("/").partition("?")
    if path.lower().startswith("v1.0/"):
        path = path[5:]
    query = {}
    for part in qs.split("&") if qs else ():
        k, _, v = part.partition("=")
        query[urllib.parse.unquote_plus(k)] = urllib.parse.unquote_plus(v)
    headers = r.get("headers") or {}
    if not isinstance(headers, dict):
        raise GraphError(400, "BadRequest", "headers of request '%s' must be an object." % r["id"])
    ids = gu.RequestIds({"client-request-id": outer.ids.client_request_id}, outer.ids.date)
    return Call(outer.sim, r["method"], path, query, {str(k): str(v) for k, v in headers.items()}, r.get("body"),
                outer.base, ids, batch=True)


def _batch_headers(status, headers):
    h = {"Cache-Control": "private"}
    if status != 204:
        h["Content-Type"] = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; " \
                            "charset=utf-8"
    h.update(headers)
    return h


async def batch(outer, authorization):
    """POST /v1.0/$batch: up to 20 requests; independent ones run at the same time, those
    with dependsOn after what they depend on (424 when that failed)."""
    sim = outer.sim
    outer.op = "$batch"
    sim.counters.inc("graph_requests", "$batch")
    try:
        outer.token = sim.graph.auth.authenticate(authorization)
        if outer.method != "POST":
            raise _no_method(outer.method)
        reqs = _batch_requests(outer.body)
        delay = sim.graph.faults.before(outer)
    except GraphError as exc:
        return error_result(outer, exc)
    if delay:
        await sim.clock.sleep(delay)
    sim.counters.inc("graph_batches")
    sim.counters.inc("graph_batch_requests", "", len(reqs))
    results = {}
    pending = list(reqs)
    while pending:
        wave = [r for r in pending if all(d in results for d in r.get("dependsOn", []))]
        pending = [r for r in pending if r not in wave]
        prepared = []
        for r in wave:
            failed = [d for d in r.get("dependsOn", []) if results[d][0] >= 400]
            if failed:
                results[r["id"]] = (424, gu.error_body("FailedDependency", "The request depends on request '%s', "
                                                       "which failed." % failed[0], outer.ids), {})
                continue
            call = outer
            try:
                call = _sub_call(outer, r)
                route, slot, user = prepare(call, authorization)
            except GraphError as exc:
                results[r["id"]] = error_result(call, exc)
                continue
            prepared.append((r, call, route, slot, user))
        outs = await asyncio.gather(*(_run_one(c, rt, s, u) for _r, c, rt, s, u in prepared))
        for (r, *_), out in zip(prepared, outs):
            results[r["id"]] = out
    responses = []
    for r in reqs:
        status, doc, headers = results[r["id"]]
        item = {"id": r["id"], "status": status, "headers": _batch_headers(status, headers)}
        if doc is not None:
            item["body"] = doc
        responses.append(item)
    return 200, {"responses": responses}, {}


async def _run_one(call, route, slot, user):
    try:
        return await run(call, route, slot, user)
    except GraphError as exc:
        return error_result(call, exc)
    except Exception as exc:
        log.exception("internal error in batched Graph %s", call.op)
        return error_result(call, GraphError(500, "InternalServerError", "An internal error occurred: %s" % exc))


# -- the application -----------------------------------------------------------------------------------


async def handle_not_found(request):
    sim = webio.sim_of(request)
    ids = gu.RequestIds(request.headers, sim.clock.now())
    seg = request.path.strip("/").split("/", 1)[0]
    return gu.json_response(400, gu.error_body("BadRequest", "Invalid version: %s" % seg, ids), ids)


def build_app(sim):
    """The Graph application of sim: login (token, OpenID configuration, keys) and /v1.0/."""
    app = webio.new_app(sim, 4 << 20)
    auth = sim.graph.auth
    app.router.add_route("*", "/{tenant}/oauth2/v2.0/token", auth.handle_token)
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", auth.handle_openid)
    app.router.add_get("/{tenant}/discovery/v2.0/keys", auth.handle_keys)
    app.router.add_route("*", "/v1.0/{tail:.*}", handle_graph)
    app.router.add_route("*", "/{tail:.*}", handle_not_found)
    return app
