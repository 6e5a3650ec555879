"""The control API of the Graph simulator and of hybrid mailbox locations, under /graph/
on the control port (JSON, errors {"error": ...} with a 4xx status, like the rest).

Moving a mailbox between on-premises and Exchange Online (POST /graph/mailboxes/move)
works without --graph-listen too: EWS and Autodiscover follow the mailbox's location.
"""

from aiohttp import web

from . import faults, graph_model
from .webio import bad, not_found, read_json, sim_of

LIFECYCLE = ("reauthorizationRequired", "subscriptionRemoved", "missed")


def _graph(request):
    g = sim_of(request).graph
    if g is None:
        raise not_found("the Graph simulator is off (start ews-sim with --graph-listen)")
    return g


def _mailbox(sim, smtp):
    mb = sim.mailbox(str(smtp or ""))
    if mb is None:
        raise not_found("no mailbox %r" % smtp)
    return mb


def _describe_mailbox(sim, mb):
    return {"smtp": mb.smtp, "location": "cloud" if sim.is_cloud(mb) else "onprem", "moving": sim.moving(mb),
            "user_id": graph_model.user_id(mb), "user_principal_name": mb.smtp,
            "target_address": sim.cloud_target(mb)}


async def get_graph(request):
    return web.json_response(_graph(request).describe())


async def post_app(request):
    """{"secrets": [...], "add_secret", "remove_secret", "expire_secrets": [...], "certificates": [files],
    "roles": [...], "token_lifetime": s, "revoke_tokens": true}"""
    g = _graph(request)
    d = await read_json(request)
    try:
        g.auth.configure(d)
    except ValueError as exc:
        raise bad(str(exc))
    return web.json_response(g.auth.describe())


async def revoke_tokens(request):
    return web.json_response({"revoked": _graph(request).auth.revoke_all()})


async def post_config(request):
    """{"page_size", "delta_page_size", "delta_generations_kept", "delta_empty_first_page",
    "mailbox_concurrency", "concurrency_retry_after_seconds", and the subscription settings}"""
    g = _graph(request)
    d = await read_json(request)
    own = {"page_size", "delta_page_size", "delta_generations_kept", "delta_empty_first_page"}
    limits = {k: d[k] for k in d if k in g.faults.limits.FIELDS}
    subs = {k: d[k] for k in d if k in g.subs.cfg.FIELDS}
    unknown = set(d) - own - set(limits) - set(subs)
    if unknown:
        raise bad("unknown keys %s" % sorted(unknown))
    for k in ("page_size", "delta_page_size", "delta_generations_kept"):
        if k in d and (isinstance(d[k], bool) or not isinstance(d[k], int) or not 1 <= d[k] <= 1000):
            raise bad("%s must be an integer 1..1000" % k)
    if "delta_empty_first_page" in d and not isinstance(d["delta_empty_first_page"], bool):
        raise bad("delta_empty_first_page must be true or false")
    try:
        g.faults.limits.update(limits)
        g.subs.cfg.update(subs)
    except ValueError as exc:
        raise bad(str(exc))
    if "page_size" in d:
        g.page_size = d["page_size"]
    if "delta_page_size" in d:
        g.deltas.page_size = d["delta_page_size"]
    if "delta_generations_kept" in d:
        g.deltas.keep = d["delta_generations_kept"]
    if "delta_empty_first_page" in d:
        g.deltas.empty_first_page = d["delta_empty_first_page"]
    return web.json_response(g.describe())


async def post_fault(request):
    g = _graph(request)
    d = await read_json(request)
    try:
        f = g.faults.add(d)
    except ValueError as exc:
        raise bad(str(exc))
    return web.json_response(f.describe(), status=201)


async def get_faults(request):
    return web.json_response(_graph(request).faults.describe())


async def delete_faults(request):
    return web.json_response({"cleared": _graph(request).faults.clear()})


async def delete_fault(request):
    fid = request.match_info["id"]
    if not fid.isdigit() or not _graph(request).faults.clear(int(fid)):
        raise not_found("no fault %s" % fid)
    return web.json_response({"cleared": 1})


async def get_subscriptions(request):
    g = _graph(request)
    sim = sim_of(request)
    q = request.query
    subs = [s for s in g.subs.subs.values() if not q.get("mailbox") or s.smtp == q["mailbox"].lower()]
    return web.json_response({"count": len(subs), "subscriptions": [s.describe(sim) for s in subs]})


def _sub(g, sid):
    s = g.subs.subs.get(sid)
    if s is None:
        raise not_found("no subscription %s" % sid)
    return s


async def get_subscription(request):
    g = _graph(request)
    return web.json_response(_sub(g, request.match_info["id"]).describe(sim_of(request)))


async def post_lifecycle(request):
    """{"event": "reauthorizationRequired" | "subscriptionRemoved" | "missed",
    "deadline_seconds"?: sim seconds to reauthorize before the subscription is removed}"""
    g = _graph(request)
    sub = _sub(g, request.match_info["id"])
    d = await read_json(request)
    ev = d.get("event")
    if ev not in LIFECYCLE:
        raise bad("event must be one of %s" % ", ".join(LIFECYCLE))
    dl = d.get("deadline_seconds")
    if dl is not None and (isinstance(dl, bool) or not isinstance(dl, (int, float)) or dl <= 0):
        raise bad("deadline_seconds must be a positive number")
    g.subs.lifecycle_event(sub, ev, dl)
    return web.json_response(sub.describe(sim_of(request)))


async def expire_subscriptions(request):
    """{"ids": [...]} or {"mailbox": smtp} or {"all": true}: gone without notice."""
    g = _graph(request)
    d = await read_json(request)
    if d.get("all"):
        subs = list(g.subs.subs.values())
    elif d.get("mailbox"):
        subs = list(g.subs.by_mailbox.get(str(d["mailbox"]).lower(), ()))
    elif isinstance(d.get("ids"), list):
        subs = [g.subs.subs[i] for i in d["ids"] if i in g.subs.subs]
    else:
        raise bad("give 'ids' (a list), 'mailbox' or 'all'")
    for s in subs:
        g.subs.remove(s, "expired")
    return web.json_response({"expired": len(subs)})


async def expire_delta(request):
    """{"mailbox"?: smtp}: the sync states of the mailbox (or all) are gone (410 SyncStateNotFound)."""
    g = _graph(request)
    d = await read_json(request)
    smtp = d.get("mailbox")
    return web.json_response({"expired": g.deltas.expire(str(smtp).lower() if smtp else None)})


async def get_mailbox(request):
    sim = sim_of(request)
    return web.json_response(_describe_mailbox(sim, _mailbox(sim, request.match_info["smtp"])))


async def move_mailbox(request):
    """{"mailbox", "to": "cloud" | "onprem", "window_seconds"?: 0, "stream_code"?: "ErrorMailboxMoveInProgress"}

    The calendar stays. EWS subscriptions of the mailbox are lost (open streams get
    stream_code) and its event journal starts afresh; Graph subscriptions of a mailbox that
    leaves the cloud are removed (subscriptionRemoved), and its delta tokens get 410. For
    window_seconds both sides answer as during a move (EWS ErrorMailboxMoveInProgress,
    Graph MailboxNotEnabledForRESTAPI)."""
    sim = sim_of(request)
    d = await read_json(request)
    mb = _mailbox(sim, d.get("mailbox"))
    to = d.get("to")
    if to not in ("cloud", "onprem"):
        raise bad("to must be 'cloud' or 'onprem'")
    window = d.get("window_seconds", 0)
    if isinstance(window, bool) or not isinstance(window, (int, float)) or window < 0:
        raise bad("window_seconds must be a number >= 0")
    cloud = to == "cloud"
    if sim.is_cloud(mb) == cloud:
        raise bad("%s is already %s" % (mb.smtp, "in the cloud" if cloud else "on-premises"))
    sim.set_cloud(mb, cloud)
    code = d.get("stream_code", "ErrorMailboxMoveInProgress")
    text = faults.DEFAULT_TEXT.get(code, "The mailbox moved.") if code else None
    lost_ews = sim.notify.lose_mailbox(mb.smtp, code, text)
    sim.notify.reset_journal(mb.smtp)
    lost_graph = 0
    if sim.graph is not None:
        if not cloud:
            lost_graph = sim.graph.subs.mailbox_left(mb.smtp)
        sim.graph.deltas.mailbox_moved(mb.smtp)
    if window:
        sim.faults.moving[mb.smtp] = sim.clock.time() + window
    sim.counters.inc("mailbox_moves", to)
    out = _describe_mailbox(sim, mb)
    out.update(ews_subscriptions_lost=lost_ews, graph_subscriptions_removed=lost_graph, move_window_seconds=window)
    return web.json_response(out)


def control_routes(sim):
    """The /graph routes of the control API, for main to add."""
    return [
        web.get("/graph", get_graph),
        web.post("/graph/app", post_app),
        web.post("/graph/tokens/revoke", revoke_tokens),
        web.post("/graph/config", post_config),
        web.post("/graph/faults", post_fault),
        web.get("/graph/faults", get_faults),
        web.delete("/graph/faults", delete_faults),
        web.delete("/graph/faults/{id}", delete_fault),
        web.get("/graph/subscriptions", get_subscriptions),
        web.post("/graph/subscriptions/expire", expire_subscriptions),
        web.get("/graph/subscriptions/{id}", get_subscription),
        web.post("/graph/subscriptions/{id}/lifecycle", post_lifecycle),
        web.post("/graph/delta/expire", expire_delta),
        web.get("/graph/mailboxes/{smtp}", get_mailbox),
        web.post("/graph/mailboxes/move", move_mailbox),
    ]
