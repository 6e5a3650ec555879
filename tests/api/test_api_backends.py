"""Hybrid calsync seen by operators: one mailbox in Exchange Online (read through Microsoft
Graph, found by Autodiscover's RedirectAddress) and one on premises (EWS), against ews-sim with
its Graph simulator (docs/graph-sim.md). Each mailbox's backend in GET /v1/users, the per-backend
counts and the Graph figures in GET /v1/status, the Graph metrics and calsync_mailboxes_by_backend
in /metrics, `calsync status` (the counts, the Graph line, --mailboxes, and the store fallback)
and the status page in headless Chromium. Every number is checked against the store or the
simulator."""

import asyncio
import base64
import json
import os
import shutil
import subprocess

import pytest

from apiclient import TOKEN, TOKEN_ENV, api_element, q, sample, start_calsync, wait_api
from calsyncproc import calsync_binary, counter, make_config, user, xml_attr
from simharness import wait_for
from test_status_page import Browser, artifacts_dir  # headless Chromium over DevTools

CLOUD = user(1)   # --cloud-mailboxes 1: Autodiscover redirects it to Exchange Online
ONPREM = user(2)
MBS = [CLOUD, ONPREM]
SECRET_ENV = "CALSYNC_TEST_GRAPH_SECRET"
SECRET = "sim~GraphSecret.0123456789-abcdefghijkl"  # the simulator's default client secret
LIVE_DEADLINE = 60
STATUS_TIMEOUT = 20  # one `calsync status` (ASan build, loaded machine)


def graph_xml(sim):
    """<graph> for the simulator's tenant and app, delta polling, the secret from the environment."""
    info = sim.info
    return ('<graph tenant="%s" client_id="%s"><secret env="%s"/>'
            '<endpoints authority="%s" graph="%s"/><delta interval="10s"/></graph>'
            % (info["tenant_id"], info["client_id"], SECRET_ENV, xml_attr(info["login"]),
               xml_attr(info["graph"])))


@pytest.fixture(scope="module")
def sim(module_sim_factory):
    return module_sim_factory("--graph-listen", "127.0.0.1:0", "--cloud-mailboxes", "1",
                              "--mailboxes", "8")


@pytest.fixture(scope="module")
def env(sim, module_calsync_factory):
    cs, api = start_calsync(module_calsync_factory, sim, MBS, env={SECRET_ENV: SECRET}, mode="pull",
                            autodiscover=True, extra=graph_xml(sim))
    cs.wait_live(MBS, timeout=LIVE_DEADLINE)
    wait_for(lambda: stored_backends(cs) == {CLOUD: "graph", ONPREM: "ews"}, timeout=LIVE_DEADLINE,
             what="the cloud mailbox on graph, the other on ews")
    return cs, api


def stored_backends(cs):
    return {r[0].lower(): r[1] for r in cs.query("SELECT smtp, backend FROM mailboxes WHERE enabled = 1") or []}


def settled_status(api):
    """/v1/status once the loop's stats show both mailboxes live and a Graph request made."""
    st = api.ok("GET", "/v1/status")
    bk = st.get("backends") or {}
    if (bk.get("graph", {}).get("live") == 1 and bk.get("ews", {}).get("live") == 1
            and st.get("graph", {}).get("requests", 0) > 0):
        return st
    return None


def test_users_carry_their_backend(env):
    cs, api = env
    users = api.ok("GET", "/v1/users")["users"]
    assert {u["smtp"].lower(): u["backend"] for u in users} == {CLOUD: "graph", ONPREM: "ews"}, users
    assert all(u["state"] == "live" for u in users), users
    assert api.ok("GET", "/v1/users/" + q(CLOUD))["backend"] == "graph"
    assert api.ok("GET", "/v1/users/" + q(ONPREM))["backend"] == "ews"
    # The filter by backend, alone and with the state filter.
    assert [u["smtp"] for u in api.ok("GET", "/v1/users?backend=graph")["users"]] == [CLOUD]
    assert [u["smtp"] for u in api.ok("GET", "/v1/users?backend=ews&state=live")["users"]] == [ONPREM]
    assert api.ok("GET", "/v1/users?backend=graph&state=parked")["users"] == []
    r = api.get("/v1/users?backend=cloud")
    assert r.status == 400 and "backend must be ews or graph" in r.json["error"], r


def test_status_counts_backends_and_graph(env, sim):
    cs, api = env
    st = wait_for(lambda: settled_status(api), timeout=15, interval=0.1,
                  what="/v1/status with both backends live and Graph requests")
    # The on-premises keys in their order, then the two of a hybrid calsync.
    assert list(st) == ["mailboxes", "parked", "groups", "errors", "streams_open", "in_flight",
                        "queued", "backing_off", "presence_changes", "webhooks", "backends",
                        "graph"], list(st)
    assert st["mailboxes"] == {"total": 2, "live": 2, "syncing": 0, "parked": 0, "unresolved": 0}
    assert st["backends"] == {
        "ews": {"total": 1, "live": 1, "syncing": 0, "parked": 0, "unresolved": 0},
        "graph": {"total": 1, "live": 1, "syncing": 0, "parked": 0, "unresolved": 0},
    }, st["backends"]
    g = st["graph"]
    assert set(g) == {"requests", "throttled", "notifications", "token_refreshes"}, g
    assert g["requests"] > 0 and g["throttled"] == 0, g
    # Delta polling: no notifications, so none believed and none refused.
    assert g["notifications"] == {"accepted": 0, "rejected": 0}, g
    issued = counter(sim.counters(), "graph_tokens_issued")
    assert 1 <= g["token_refreshes"]["ok"] <= issued, (g, issued)
    assert g["token_refreshes"]["failed"] == 0, g


def test_metrics(env, sim):
    cs, api = env

    def settled():
        m = api.metrics()
        return m if (sample(m, "calsync_mailboxes", state="live") == 2
                     and sample(m, "calsync_graph_requests_total") > 0) else None
    m = wait_for(settled, timeout=15, what="metrics with both mailboxes live and Graph requests")
    for name in ("calsync_graph_requests_total", "calsync_graph_throttled_total",
                 "calsync_graph_notifications_total", "calsync_token_refreshes_total"):
        assert m["types"][name] == "counter", name
    assert m["types"]["calsync_mailboxes_by_backend"] == "gauge"
    assert sample(m, "calsync_graph_throttled_total") == 0
    assert sample(m, "calsync_graph_notifications_total", result="accepted") == 0
    assert sample(m, "calsync_graph_notifications_total", result="rejected") == 0
    ok = sample(m, "calsync_token_refreshes_total", result="ok")
    assert 1 <= ok <= counter(sim.counters(), "graph_tokens_issued"), ok
    assert sample(m, "calsync_token_refreshes_total", result="failed") == 0
    # By backend and state, from the store: every pair, the live ones where the store has them.
    rows = cs.mailbox_rows()
    for backend in ("ews", "graph"):
        for state in ("unresolved", "syncing", "live", "parked"):
            want = sum(1 for smtp, r in rows.items()
                       if stored_backends(cs).get(smtp.lower()) == backend and r["state"] == state)
            assert sample(m, "calsync_mailboxes_by_backend", backend=backend, state=state) == want, (
                backend, state)
    assert sample(m, "calsync_mailboxes_by_backend", backend="graph", state="live") == 1
    assert sample(m, "calsync_mailboxes_by_backend", backend="ews", state="live") == 1
    # The engine's gauge keeps its one label.
    assert not any(k[0] == "calsync_mailboxes" and "backend" in dict(k[1]) for k in m["samples"])


# -- calsync status --------------------------------------------------------------------------


def status_config(cs, api):
    """cs's configuration (same store, same <graph>) with the API at the port it listens on."""
    path = os.path.join(cs.dir, "status.xml")
    cfg = dict(cs.config)
    cfg["api"] = '<api listen="127.0.0.1:%d" token_env="%s"/>' % (api.port, TOKEN_ENV)
    with open(path, "w") as f:
        f.write(make_config(cs.sim, **cfg))
    return path


def run_status(cs, config, *args):
    env = dict(cs.env)
    env[TOKEN_ENV] = TOKEN
    p = subprocess.run([calsync_binary(), "status", "-c", config, *args], env=env,
                       capture_output=True, text=True, timeout=STATUS_TIMEOUT)
    assert "ERROR: AddressSanitizer" not in p.stderr and "runtime error:" not in p.stderr, p.stderr
    return p


def mailbox_table(out):
    """{smtp: (backend, state)} from the table of --mailboxes."""
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("mailboxes (")) + 1
    assert lines[start].split() == ["MAILBOX", "BACKEND", "STATE", "LAST", "READ"], lines[start]
    rows = {}
    for ln in lines[start + 1:]:
        if not ln.startswith("  "):
            break
        cols = ln.split()
        rows[cols[0].lower()] = (cols[1], cols[2])
    return rows


def test_calsync_status(env):
    cs, api = env
    wait_for(lambda: settled_status(api), timeout=15, interval=0.1, what="a settled /v1/status")
    config = status_config(cs, api)
    p = run_status(cs, config)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    lines = p.stdout.splitlines()
    assert "mailboxes  2: 2 live, 0 syncing, 0 parked, 0 unresolved" in lines, p.stdout
    assert "  ews      1: 1 live, 0 syncing, 0 parked, 0 unresolved" in lines, p.stdout
    assert "  graph    1: 1 live, 0 syncing, 0 parked, 0 unresolved" in lines, p.stdout
    graph = [ln for ln in lines if ln.startswith("graph      ")]
    assert len(graph) == 1, p.stdout
    requests = int(graph[0].split()[1])
    assert requests > 0 and " 0 throttled, " in graph[0], graph
    assert "(0 failed)" in graph[0] and "0 notifications (0 rejected)" in graph[0], graph
    assert "mailboxes (" not in p.stdout  # the list only with --mailboxes
    assert p.stderr == ""

    p = run_status(cs, config, "--mailboxes")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert mailbox_table(p.stdout) == {CLOUD: ("graph", "live"), ONPREM: ("ews", "live")}, p.stdout

    p = run_status(cs, config, "--json", "--mailboxes")
    assert p.returncode == 2 and "--mailboxes is a table" in p.stderr, (p.returncode, p.stderr)


async def screenshot(b, workdir, name):
    """The whole page as PNG, to the test's tmp dir and to $CALSYNC_TEST_ARTIFACTS."""
    size = (await b.call("Page.getLayoutMetrics"))["cssContentSize"]
    shot = await b.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    path = os.path.join(str(workdir), name + ".png")
    with open(path, "wb") as f:
        f.write(png)
    shutil.copy(path, os.path.join(artifacts_dir(), name + ".png"))


def test_status_page_shows_backends(env, tmp_path):
    cs, api = env
    wait_for(lambda: settled_status(api), timeout=15, interval=0.1, what="a settled /v1/status")
    read = """(() => {
        const rows = [...document.querySelectorAll('#users tbody tr')].map(
            (tr) => [...tr.cells].map((td) => td.textContent));
        const head = [...document.querySelectorAll('#users thead th')].map((th) => th.textContent);
        const t = (id) => document.getElementById(id).textContent;
        if (rows.length != 2 || document.getElementById('backends').hidden)
            return null;
        return {rows, head, ews: t('b-ews-total'), graph: t('b-graph-total'),
                ewsDetail: t('b-ews-detail'), graphDetail: t('b-graph-detail'),
                figures: t('graph-figures'), figuresHidden: document.getElementById('graph-figures').hidden,
                total: t('n-total')};
    })()"""

    async def drive():
        b = Browser(tmp_path)
        try:
            await b.connect()
            await b.call("Page.navigate", url=api.base + "/#token=" + TOKEN)
            page = await b.wait(read, 20, "the users table and the backends")
            assert page["head"][-1] == "Backend", page["head"]
            assert {r[0].lower(): (r[1], r[-1]) for r in page["rows"]} == {
                CLOUD: ("live", "graph"), ONPREM: ("live", "ews")}, page["rows"]
            assert page["total"] == "2" and page["ews"] == "1" and page["graph"] == "1", page
            assert page["graphDetail"].startswith("1 live"), page
            assert not page["figuresHidden"] and "Microsoft Graph: " in page["figures"], page
            assert " 0 throttled" in page["figures"] and "(0 failed)" in page["figures"], page
            assert b.problems == [], b.problems
            await screenshot(b, tmp_path, "status-page-hybrid")
        except BaseException:
            print("--- chromium output ---\n" + b.output())
            raise
        finally:
            try:
                await b.close()
            finally:
                b.kill()
    asyncio.run(drive())


def test_readyz_with_graph_only(sim, calsync_factory):
    """A calsync whose one mailbox is pinned to Graph makes no EWS request at all: /readyz is
    ready once that mailbox is live, and then counts it."""
    cs = calsync_factory(sim, [], env={SECRET_ENV: SECRET, TOKEN_ENV: TOKEN}, mode="pull",
                         autodiscover=True, extra=graph_xml(sim), api=api_element())
    with open(cs.config_path) as f:
        text = f.read()
    pinned = '<mailboxes file="mailboxes.txt"><mailbox backend="graph">%s</mailbox></mailboxes>' % CLOUD
    assert text.count('<mailboxes file="mailboxes.txt"/>') == 1
    with open(cs.config_path, "w") as f:
        f.write(text.replace('<mailboxes file="mailboxes.txt"/>', pinned))
    cs.start()
    api = wait_api(cs, TOKEN)
    cs.wait_live([CLOUD], timeout=LIVE_DEADLINE)
    r = wait_for(lambda: (lambda r: r if r.status == 200 else None)(api.get("/readyz")), timeout=10,
                 what="/readyz 200 with the Graph mailbox live")
    assert r.json == {"status": "ready", "mailboxes": 1, "live": 1}, r
    st = api.ok("GET", "/v1/status")
    m = api.metrics()
    assert sum(v for k, v in m["samples"].items()
               if k[0] == "calsync_ews_requests_total" and dict(k[1])["result"] == "ok") == 0
    assert st["backends"]["graph"]["live"] == 1 and st["backends"]["ews"]["total"] == 0, st
    assert cs.stop() == 0


def test_calsync_status_from_the_store(env):
    """Last: it stops the module's daemon. The store still knows each mailbox's backend."""
    cs, api = env
    config = status_config(cs, api)
    assert cs.stop() == 0
    p = run_status(cs, config, "--mailboxes")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    lines = p.stdout.splitlines()
    assert lines[0].startswith("calsync status: daemon not running"), p.stdout
    # Stopping leaves the states as they were stored (live).
    assert "  ews      1: 1 live, 0 syncing, 0 parked, 0 unresolved" in lines, p.stdout
    assert "  graph    1: 1 live, 0 syncing, 0 parked, 0 unresolved" in lines, p.stdout
    assert not any(ln.startswith("graph      ") for ln in lines), p.stdout  # the daemon's figures
    assert mailbox_table(p.stdout) == {CLOUD: ("graph", "live"), ONPREM: ("ews", "live")}, p.stdout
    p = run_status(cs, config, "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["source"] == "store" and doc["backends"]["graph"]["live"] == 1, doc
    assert doc["backends"]["ews"]["total"] == 1 and "graph" not in doc, doc
