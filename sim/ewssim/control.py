"""The control API: JSON over HTTP on its own port, for tests, demos and benchmarks.

This module holds the core routes (health, clock, counters, accounts, mailboxes, limits,
backends, auth); main adds those of the calendar, notification and fault modules (their
`control_routes(sim)`) to the application `build_app` makes. Every error is a JSON
object {"error": "..."} with a 4xx status (webio.bad, webio.not_found).
"""

from datetime import datetime

from aiohttp import web

from . import webio
from .webio import bad, not_found, read_json, sim_of


async def health(request):
    sim = sim_of(request)
    return web.json_response({"ok": True, "mailboxes": sim.mailbox_count(), "backends": len(sim.backends)})


async def get_clock(request):
    return web.json_response(sim_of(request).clock.describe())


async def post_clock(request):
    """{"set": epoch|ISO, "shift": seconds, "freeze": true|epoch, "unfreeze": true, "scale": f}"""
    sim = sim_of(request)
    d = await read_json(request)
    clock = sim.clock
    try:
        if "scale" in d:
            clock.set_scale(float(d["scale"]))
        if "set" in d:
            v = d["set"]
            if isinstance(v, str):
                v = datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            clock.set(float(v))
        if "shift" in d:
            clock.shift(float(d["shift"]))
        if d.get("freeze") is not None and d.get("freeze") is not False:
            clock.freeze(None if d["freeze"] is True else float(d["freeze"]))
        if d.get("unfreeze"):
            clock.unfreeze()
    except (TypeError, ValueError) as exc:
        raise bad("clock: %s" % exc)
    unknown = set(d) - {"scale", "set", "shift", "freeze", "unfreeze"}
    if unknown:
        raise bad("clock: unknown keys %s" % sorted(unknown))
    for hook in sim.clock_hooks:
        hook()
    return web.json_response(clock.describe())


async def get_counters(request):
    sim = sim_of(request)
    snap = sim.counters.snapshot()
    for fn in sim.gauge_hooks:
        snap.update(fn())
    return web.json_response(snap)


async def reset_counters(request):
    sim_of(request).counters.reset()
    return web.json_response({"ok": True})


async def get_limits(request):
    return web.json_response(sim_of(request).limits.as_dict())


async def post_limits(request):
    sim = sim_of(request)
    d = await read_json(request)
    try:
        sim.limits.update(d)
    except ValueError as exc:
        raise bad(str(exc))
    return web.json_response(sim.limits.as_dict())


async def post_account(request):
    """{"smtp": "x@contoso.example", "password": "...", "impersonation": "all"|"none"|[smtp...]}"""
    sim = sim_of(request)
    d = await read_json(request)
    smtp = d.get("smtp")
    pw = d.get("password")
    if not isinstance(smtp, str) or "@" not in smtp or not isinstance(pw, str):
        raise bad("account needs 'smtp' (an address) and 'password' (a string)")
    imp = d.get("impersonation", "none")
    if isinstance(imp, list):
        imp = {str(x).lower() for x in imp}
    elif imp not in ("all", "none"):
        raise bad("impersonation must be 'all', 'none' or a list of addresses")
    a = sim.add_account(smtp, pw, imp)
    return web.json_response(a.describe(), status=201)


async def get_accounts(request):
    return web.json_response([a.describe() for a in sim_of(request).accounts.values()])


async def post_token(request):
    """{"token": "...", "account": "svc@contoso.example"} registers an OAuth bearer token."""
    sim = sim_of(request)
    d = await read_json(request)
    tok, acct = d.get("token"), str(d.get("account", "")).lower()
    if not isinstance(tok, str) or not tok or acct not in sim.accounts:
        raise bad("token needs 'token' and an existing 'account'")
    sim.bearer_tokens[tok] = acct
    return web.json_response({"ok": True}, status=201)


async def get_auth(request):
    return web.json_response(sim_of(request).auth.describe())


async def post_auth(request):
    """{"extended_protection": "off"|"allow"|"require"}"""
    authn = sim_of(request).auth
    d = await read_json(request)
    unknown = set(d) - {"extended_protection"}
    if unknown:
        raise bad("auth: unknown keys %s" % sorted(unknown))
    if "extended_protection" in d:
        try:
            authn.set_extended_protection(d["extended_protection"])
        except ValueError as exc:
            raise bad("auth: %s" % exc)
    return web.json_response(authn.describe())


async def get_mailbox(request):
    sim = sim_of(request)
    mb = sim.mailbox(request.match_info["smtp"])
    if mb is None:
        raise not_found("no mailbox %s" % request.match_info["smtp"])
    return web.json_response(mb.describe())


async def post_mailboxes(request):
    """{"count": N} grows the demo set to user00001..userN; {"smtp": [...]} creates named ones."""
    sim = sim_of(request)
    d = await read_json(request)
    created = []
    if "count" in d:
        n = d["count"]
        if not isinstance(n, int) or n < 0 or n > 1_000_000:
            raise bad("count must be an integer 0..1000000")
        sim.grow_demo(n)
    names = d.get("smtp", [])
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list):
        raise bad("smtp must be a list of addresses")
    backend = d.get("backend")
    if backend is not None and (not isinstance(backend, int) or not 0 <= backend < len(sim.backends)):
        raise bad("backend must be an index 0..%d" % (len(sim.backends) - 1))
    for s in names:
        try:
            created.append(sim.create_mailbox(str(s), backend=backend).describe())
        except ValueError as exc:
            raise bad(str(exc))
    if "seed" in d:
        sim.seed = int(d["seed"])
    return web.json_response({"mailboxes": sim.mailbox_count(), "created": created}, status=201)


async def delete_mailbox(request):
    sim = sim_of(request)
    smtp = request.match_info["smtp"]
    if not sim.delete_mailbox(smtp):
        raise not_found("no mailbox %s" % smtp)
    for hook in sim.mailbox_deleted_hooks:
        hook(smtp.lower())
    return web.json_response({"ok": True})


async def get_backends(request):
    return web.json_response([b.describe() for b in sim_of(request).backends])


def build_app(sim, routes=()):
    """The control application: the core routes, then routes (the other modules' route
    definitions, which main gathers)."""
    app = webio.new_app(sim, 64 << 20)
    app.router.add_get("/health", health)
    app.router.add_get("/clock", get_clock)
    app.router.add_post("/clock", post_clock)
    app.router.add_get("/counters", get_counters)
    app.router.add_post("/counters/reset", reset_counters)
    app.router.add_get("/limits", get_limits)
    app.router.add_post("/limits", post_limits)
    app.router.add_get("/accounts", get_accounts)
    app.router.add_post("/accounts", post_account)
    app.router.add_post("/tokens", post_token)
    app.router.add_get("/auth", get_auth)
    app.router.add_post("/auth", post_auth)
    app.router.add_get("/backends", get_backends)
    app.router.add_post("/mailboxes", post_mailboxes)
    app.router.add_get("/mailboxes/{smtp}", get_mailbox)
    app.router.add_delete("/mailboxes/{smtp}", delete_mailbox)
    app.router.add_routes(routes)
    return app
