"""ews-sim command line: parse options, build the simulated organisation, wire the
applications (every module's routes and operations), serve.

main is the top of ews-sim's import order (docs/ews-sim.md, "Modules and their import
order"): the one module that knows them all.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
from datetime import datetime

from aiohttp import web

from . import (auth, autodiscover, calendar_ops, control, faults, graph_api, graph_control, graph_state, graph_util,
               notify, registry, server, state)
from .clock import Clock


# The client secret the Graph simulator accepts when none is configured (docs/graph-sim.md).
DEFAULT_SECRET = "sim~GraphSecret.0123456789-abcdefghijkl"


def hostport(s):
    host, _, port = s.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError("expected HOST:PORT (PORT 0 picks a free port), got %r" % s)
    return host.strip("[]"), int(port)


def limit(s):
    if s.lower() == "unlimited":
        return None
    if not s.isdigit():
        raise argparse.ArgumentTypeError("expected a non-negative integer or 'unlimited', got %r" % s)
    return int(s)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="ews-sim",
        description="An Exchange 2019 EWS simulator for calsync: EWS, Autodiscover, "
        "notifications, throttling, affinity and faults on demand.",
    )
    p.add_argument("--listen", type=hostport, default=("127.0.0.1", 8080),
                   help="EWS endpoint HOST:PORT (default 127.0.0.1:8080; port 0 = any free port)")
    p.add_argument("--control", type=hostport, default=None,
                   help="control API HOST:PORT (default: EWS port + 1; port 0 = any free port)")
    p.add_argument("--mailboxes", type=int, default=10, help="demo mailboxes user00001.. (default 10)")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated calendars (default 1)")
    p.add_argument("--domain", default=state.DEFAULT_DOMAIN, help="mail domain (default contoso.example)")
    p.add_argument("--backends", type=int, default=2, help="simulated mailbox servers (default 2)")
    p.add_argument("--service-account", default="svc@contoso.example")
    p.add_argument("--service-password", default="Passw0rd!",
                   help="service account password (default Passw0rd!); see also --service-password-file")
    p.add_argument("--service-password-file", default=None, help="read the service account password from a file")
    p.add_argument("--auth", default="negotiate,ntlm,basic,bearer",
                   help="enabled authentication methods, comma-separated (default negotiate,ntlm,basic,bearer)")
    p.add_argument("--bearer-token", action="append", default=[], metavar="TOKEN",
                   help="accept this OAuth bearer token for the service account (repeatable)")
    p.add_argument("--tls-cert", default=None, help="PEM certificate (chain): serve HTTPS")
    p.add_argument("--tls-key", default=None, help="PEM private key for --tls-cert")
    p.add_argument("--extended-protection", choices=auth.EXTENDED_PROTECTION, default="off",
                   help="IIS Extended Protection (tokenChecking None/Allow/Require) on the EWS vdir: "
                   "NTLM channel binding to the TLS certificate, checked over HTTPS only (default off)")
    p.add_argument("--no-validate", action="store_true", help="do not validate requests against the schema")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="sim seconds per real second for the simulator's own timers (default 1)")
    p.add_argument("--clock-offset", type=float, default=0.0, help="start the sim clock shifted by seconds")
    p.add_argument("--freeze-clock", default=None, help="freeze the sim clock at this ISO time or epoch")
    p.add_argument("--heartbeat", type=float, default=45.0,
                   help="streaming heartbeat interval in sim seconds (default 45)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added latency per EWS request, ms (default 0)")
    p.add_argument("--max-concurrency", type=limit, default=27, help="EWSMaxConcurrency (default 27)")
    p.add_argument("--max-subscriptions", type=limit, default=5000, help="EWSMaxSubscriptions (default 5000)")
    p.add_argument("--hanging-connection-limit", type=limit, default=10,
                   help="HangingConnectionLimit (default 10)")
    p.add_argument("--find-count-limit", type=limit, default=1000, help="EWSFindCountLimit (default 1000)")
    p.add_argument("--calendar-cache", type=int, default=5000,
                   help="generated calendars kept in memory; unchanged ones beyond this are "
                   "regenerated, identical, when next used (default 5000)")
    g = p.add_argument_group("Microsoft Graph and hybrid (docs/graph-sim.md)")
    g.add_argument("--graph-listen", type=hostport, default=None,
                   help="serve Microsoft Graph and the Entra ID token endpoint on HOST:PORT (port 0 = any free port); "
                   "HTTPS with --tls-cert/--tls-key")
    g.add_argument("--tenant-id", default=None, help="the tenant's GUID (default: derived from --domain)")
    g.add_argument("--tenant-name", default=None,
                   help="the tenant's name, <name>.onmicrosoft.com (default: the first label of --domain)")
    g.add_argument("--graph-client-id", default=None, help="the app registration's client id (default: derived)")
    g.add_argument("--graph-client-secret", action="append", default=[], metavar="SECRET",
                   help="a valid client secret (repeatable; default %s when no secret or certificate is given)"
                   % DEFAULT_SECRET)
    g.add_argument("--graph-client-secret-file", default=None, help="read a client secret from this file")
    g.add_argument("--graph-client-cert", action="append", default=[], metavar="FILE",
                   help="PEM certificate whose public key verifies client assertions (repeatable)")
    g.add_argument("--token-lifetime", type=float, default=3599.0,
                   help="access token lifetime, sim seconds (default 3599)")
    g.add_argument("--cloud-mailboxes", default="none", metavar="SPEC",
                   help="demo mailboxes that live in Exchange Online: none (default), all, N (user00001..N) or "
                   "index ranges like 1-5,9")
    g.add_argument("--cloud-mailbox", action="append", default=[], metavar="SMTP",
                   help="a mailbox that lives in Exchange Online (repeatable)")
    g.add_argument("--routing-domain", default=None,
                   help="the hybrid routing domain of targetAddress (default <tenant-name>.mail.onmicrosoft.com)")
    g.add_argument("--graph-notify-ca", default=None, help="extra CA file to verify notification endpoints with")
    g.add_argument("--graph-notify-insecure", action="store_true",
                   help="do not verify the TLS certificates of notification endpoints (tests)")
    g.add_argument("--graph-notify-allow-http", action="store_true",
                   help="accept http:// notification URLs (Graph requires https)")
    p.add_argument("--ready-file", default=None, help="write a JSON line with the endpoints here once serving")
    p.add_argument("--quiet", action="store_true", help="print only the READY line")
    p.add_argument("--log-level", default="warning")
    a = p.parse_args(argv)
    if a.mailboxes < 0 or a.mailboxes > 1_000_000:
        p.error("--mailboxes must be 0..1000000")
    if a.backends < 1 or a.backends > 64:
        p.error("--backends must be 1..64")
    if (a.tls_cert is None) != (a.tls_key is None):
        p.error("--tls-cert and --tls-key go together")
    if a.time_scale <= 0:
        p.error("--time-scale must be > 0")
    if a.calendar_cache < 1:
        p.error("--calendar-cache must be at least 1")
    if a.token_lifetime <= 0:
        p.error("--token-lifetime must be > 0")
    try:
        a.cloud_spec = state.CloudSpec(a.cloud_mailboxes)
    except ValueError as exc:
        p.error(str(exc))
    return a


def build_graph(sim, a):
    """sim.graph from the Graph options (when --graph-listen is given)."""
    tenant_name = a.tenant_name or sim.domain.split(".", 1)[0]
    tenant_id = (a.tenant_id or graph_util.guid_for("tenant", sim.domain)).lower()
    client_id = (a.graph_client_id or graph_util.guid_for("app", tenant_id, "calsync")).lower()
    secrets = list(a.graph_client_secret)
    if a.graph_client_secret_file:
        with open(a.graph_client_secret_file, encoding="utf-8") as f:
            secrets.append(f.read().strip())
    if not secrets and not a.graph_client_cert:
        secrets = [DEFAULT_SECRET]
    try:
        ssl_ctx = graph_state.notify_ssl_context(a.graph_notify_ca, a.graph_notify_insecure)
        sim.graph = graph_state.Graph(sim, tenant_id, client_id, secrets, a.graph_client_cert, a.token_lifetime,
                                      tenant_name, ssl_ctx, a.graph_notify_allow_http)
    except (OSError, ValueError) as exc:
        raise SystemExit("ews-sim: Graph options: %s" % exc)


def build_sim(a):
    frozen = None
    if a.freeze_clock is not None:
        try:
            frozen = float(a.freeze_clock)
        except ValueError:
            frozen = datetime.fromisoformat(a.freeze_clock.replace("Z", "+00:00")).timestamp()
    clock = Clock(offset=a.clock_offset, frozen=frozen, scale=a.time_scale)
    password = a.service_password
    if a.service_password_file:
        with open(a.service_password_file, encoding="utf-8") as f:
            password = f.read().rstrip("\r\n")
    limits = state.Limits(a.max_concurrency, a.max_subscriptions, a.hanging_connection_limit, a.find_count_limit)
    sim = state.Sim(
        mailboxes=a.mailboxes,
        seed=a.seed,
        domain=a.domain,
        backends=a.backends,
        clock=clock,
        service_account=a.service_account,
        service_password=password,
        validate=not a.no_validate,
        heartbeat_seconds=a.heartbeat,
        limits=limits,
        calendar_cache=a.calendar_cache,
    )
    for t in a.bearer_token:
        sim.bearer_tokens[t] = sim.accounts[a.service_account.lower()].smtp
    sim.latency = a.latency_ms / 1000.0
    sim.cloud_spec = a.cloud_spec
    for smtp in a.cloud_mailbox:
        sim.location_overrides[smtp.strip().lower()] = True
    if a.routing_domain:
        sim.routing_domain = a.routing_domain.lower()
    elif a.tenant_name:
        sim.routing_domain = "%s.mail.onmicrosoft.com" % a.tenant_name.lower()
    if a.graph_listen:
        build_graph(sim, a)
    methods = tuple(m.strip().lower() for m in a.auth.split(",") if m.strip())
    for m in methods:
        if m not in ("negotiate", "ntlm", "basic", "bearer"):
            raise SystemExit("ews-sim: --auth: unknown method %r (negotiate, ntlm, basic, bearer)" % m)
    cert_der = None
    if a.tls_cert:
        try:
            cert_der = auth.leaf_cert_der(a.tls_cert)
        except (OSError, ValueError) as exc:
            raise SystemExit("ews-sim: --tls-cert: %s" % exc)
    sim.auth = auth.Authenticator(
        sim.lookup_account, sim.lookup_bearer, methods=methods,
        netbios_domain=state.NETBIOS_DOMAIN, dns_domain=sim.domain,
        extended_protection=a.extended_protection, tls_cert_der=cert_der,
        on_failure=lambda reason: sim.counters.inc("auth_failures", reason))
    return sim


def build_apps(sim):
    """The EWS and control applications of sim, with every module's operations and routes."""
    operations = registry.Table(calendar_ops.OPERATIONS, notify.OPERATIONS)
    ews_app = server.build_app(sim, operations, autodiscover.PATHS)
    routes = (calendar_ops.control_routes(sim) + notify.control_routes(sim) + faults.control_routes(sim)
              + graph_control.control_routes(sim))
    ctl_app = control.build_app(sim, routes)
    graph_app = graph_api.build_app(sim) if sim.graph is not None else None
    return ews_app, ctl_app, graph_app


async def serve(a):
    sim = build_sim(a)
    sim.notify.ensure_sweeper()
    ews_app, ctl_app, graph_app = build_apps(sim)
    ssl_ctx = None
    if a.tls_cert:
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(a.tls_cert, a.tls_key)
    ews_runner = web.AppRunner(ews_app, access_log=None, handle_signals=False)
    await ews_runner.setup()
    ews_site = web.TCPSite(ews_runner, a.listen[0], a.listen[1], ssl_context=ssl_ctx, backlog=1024)
    await ews_site.start()
    ews_port = ews_runner.addresses[0][1]
    ctl_host, ctl_port = a.control if a.control else (a.listen[0], ews_port + 1 if a.listen[1] else 0)
    ctl_runner = web.AppRunner(ctl_app, access_log=None, handle_signals=False)
    await ctl_runner.setup()
    ctl_site = web.TCPSite(ctl_runner, ctl_host, ctl_port)
    await ctl_site.start()
    ctl_port = ctl_runner.addresses[0][1]
    scheme = "https" if ssl_ctx else "http"
    host = a.listen[0] if ":" not in a.listen[0] else "[%s]" % a.listen[0]
    graph_runner = None
    if graph_app is not None:
        graph_runner = web.AppRunner(graph_app, access_log=None, handle_signals=False)
        await graph_runner.setup()
        await web.TCPSite(graph_runner, a.graph_listen[0], a.graph_listen[1], ssl_context=ssl_ctx,
                          backlog=1024).start()
        sim.graph.subs.ensure_sweeper()
    info = {
        "ews": "%s://%s:%d/EWS/Exchange.asmx" % (scheme, host, ews_port),
        "autodiscover": "%s://%s:%d/autodiscover/autodiscover.svc" % (scheme, host, ews_port),
        "control": "http://%s:%d" % (ctl_host, ctl_port),
        "ews_port": ews_port,
        "control_port": ctl_port,
        "mailboxes": sim.mailbox_count(),
        "service_account": a.service_account,
    }
    if graph_runner is not None:
        # Hybrid Modern Authentication: the EWS listener's URL is a service principal name of
        # Office 365 Exchange Online in the tenant, so its tokens are for this server.
        sim.graph.auth.ews_resources.add(("%s://%s:%d" % (scheme, host, ews_port)).lower())
        gport = graph_runner.addresses[0][1]
        ghost = a.graph_listen[0] if ":" not in a.graph_listen[0] else "[%s]" % a.graph_listen[0]
        login = "%s://%s:%d" % (scheme, ghost, gport)
        info.update(graph=login + "/v1.0", login=login, authority="%s/%s" % (login, sim.graph.tenant_id),
                    token_endpoint="%s/%s/oauth2/v2.0/token" % (login, sim.graph.tenant_id), graph_port=gport,
                    tenant_id=sim.graph.tenant_id, client_id=sim.graph.auth.client_id,
                    cloud_mailboxes=sim.cloud_spec.text)
    print("READY " + json.dumps(info), flush=True)
    if a.ready_file:
        # Written whole, then renamed, so that a reader never sees half a line.
        tmp = a.ready_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(info) + "\n")
        os.replace(tmp, a.ready_file)
    if not a.quiet:
        print(
            "ews-sim: Exchange 2019 EWS simulator\n"
            "  EWS endpoint   %(ews)s\n"
            "  Autodiscover   %(autodiscover)s\n"
            "  control API    %(control)s  (GET /health, /counters, /clock; see docs/ews-sim.md)\n"
            "  service account %(service_account)s (ApplicationImpersonation over all mailboxes)\n"
            "  mailboxes      user00001@%(domain)s .. user%(last)05d@%(domain)s\n"
            "  auth           Basic, NTLM, Negotiate (NTLM inside), Bearer; extended protection %(epa)s;"
            " see docs/ews-sim.md\n"
            "  try: curl -s --ntlm -u 'CONTOSO\\svc:<password>' %(ews)s  (GET answers once authenticated)"
            % dict(info, domain=sim.domain, last=sim.demo_count,
                   epa=a.extended_protection + ("" if ssl_ctx else " (not checked over HTTP)")),
            flush=True,
        )
        if graph_runner is not None:
            print("  Graph          %(graph)s\n  token endpoint %(token_endpoint)s\n"
                  "  client id      %(client_id)s (see docs/graph-sim.md)\n"
                  "  cloud mailboxes %(cloud_mailboxes)s" % info, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    for hook in sim.shutdown_hooks:  # e.g. cut open streams, or cleanup waits for them
        await hook()
    await ews_runner.cleanup()
    await ctl_runner.cleanup()
    if graph_runner is not None:
        await graph_runner.cleanup()


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=getattr(logging, a.log_level.upper(), logging.WARNING),
                        format="ews-sim %(levelname)s %(message)s")
    try:
        asyncio.run(serve(a))
    except OSError as exc:
        print("ews-sim: cannot listen: %s" % exc, file=sys.stderr)
        return 1
    return 0
