"""calsync run with hybrid Exchange: on-premises mailboxes through EWS and mailboxes in Exchange
Online through Microsoft Graph, side by side in one daemon, against ews-sim with its Graph
simulator (docs/graph-sim.md). Asserts on presence, on the mirrors (the store against the
simulator's calendar) and on the simulator's counters."""

import socket
import time

from calsyncproc import clear_calendar, create_item, delete_item, patch_item, user, xml_attr
from simharness import wait_for

DEADLINE = 30
SECRET_ENV = "CALSYNC_TEST_GRAPH_SECRET"
SECRET = "sim~GraphSecret.0123456789-abcdefghijkl"


def graph_sim(sim_factory, *extra, cloud="1-2", tls=None):
    args = ["--graph-listen", "127.0.0.1:0", "--cloud-mailboxes", cloud, "--mailboxes", "8"]
    if tls is not None:
        args += ["--tls-cert", tls["cert"], "--tls-key", tls["key"], "--graph-notify-insecure"]
    return sim_factory(*args, *extra)


def graph_xml(sim, mode="delta", interval="10s", notify=None):
    """The <graph> element for sim: its tenant, app and endpoints, the secret from the environment."""
    info = sim.info
    follow = '<delta interval="%s"/>' % interval
    if mode == "notify":
        follow = ('<notifications listen="127.0.0.1:%d" url="https://127.0.0.1:%d/graph/notify" '
                  'tls_cert="%s" tls_key="%s" lifetime="1h" renew_before="10min"/>'
                  % (notify["port"], notify["port"], xml_attr(notify["cert"]), xml_attr(notify["key"])))
    return ('<graph tenant="%s" client_id="%s"><secret env="%s"/>'
            '<endpoints authority="%s" graph="%s"/>%s</graph>'
            % (info["tenant_id"], info["client_id"], SECRET_ENV, xml_attr(info["login"]),
               xml_attr(info["graph"]), follow))


def start(calsync_factory, sim, mbs, mode="pull", extra="", **kw):
    cs = calsync_factory(sim, mbs, mode=mode, autodiscover=True, extra=extra,
                         env={SECRET_ENV: SECRET}, **kw)
    cs.start()
    return cs


def backends(cs):
    rows = cs.query("SELECT smtp, backend FROM mailboxes WHERE enabled = 1")
    return {r[0].lower(): r[1] for r in rows or []}


def busy_now(sim, smtp, subject, minutes=30):
    now = time.time()
    return create_item(sim, smtp, subject=subject, start=now - 300, end=now + minutes * 60)["id"]


def test_hybrid_delta_polling(sim_factory, calsync_factory):
    sim = graph_sim(sim_factory)
    mbs = [user(i) for i in range(1, 5)]
    for m in mbs:
        clear_calendar(sim, m)
    cloud, onprem = mbs[:2], mbs[2:]
    iids = {m: busy_now(sim, m, "Before start " + m) for m in mbs}
    cs = start(calsync_factory, sim, mbs, extra=graph_xml(sim, interval="10s"))
    cs.wait_live()
    assert backends(cs) == {**{m: "graph" for m in cloud}, **{m: "ews" for m in onprem}}
    cs.wait_mirrors_equal()
    for m in mbs:
        cs.wait_state(m, DEADLINE, state="busy", subject="Before start " + m)
    assert "moved to Exchange Online (RedirectAddress" in cs.stderr_text()

    # Changes on the cloud side reach presence within one interval + 5 s.
    m = cloud[0]
    patch_item(sim, m, iids[m], subject="Renamed")
    cs.wait_state(m, 15, state="busy", subject="Renamed")
    delete_item(sim, m, iids[m])
    cs.wait_state(m, 15, state="free")
    priv = busy_now(sim, cloud[1], "Secret plans")
    patch_item(sim, cloud[1], priv, sensitivity="Private")
    cs.wait_mirrors_equal()
    row = [o for o in cs.occurrences(cloud[1]) if o["item_id"] == priv]
    assert row and row[0]["private"] == 1
    # The on-premises side still streams... through EWS pull here, unchanged.
    patch_item(sim, onprem[0], iids[onprem[0]], subject="On prem renamed")
    cs.wait_state(onprem[0], 20, state="busy", subject="On prem renamed")
    cs.wait_mirrors_equal()
    assert cs.stop() == 0


def test_mailbox_moves_to_the_cloud_and_back(sim_factory, calsync_factory):
    sim = graph_sim(sim_factory, cloud="none")
    mbs = [user(i) for i in range(5, 7)]
    for m in mbs:
        clear_calendar(sim, m)
    mover = mbs[0]
    iid = busy_now(sim, mover, "Standup")
    cs = start(calsync_factory, sim, mbs, extra=graph_xml(sim, interval="10s"))
    cs.wait_live()
    assert backends(cs)[mover] == "ews"
    cs.wait_state(mover, DEADLINE, state="busy", subject="Standup")
    before = len(cs.lines_for(mover))

    # To the cloud: EWS loses the mailbox, Autodiscover says RedirectAddress, Graph serves it.
    sim.control("POST", "/graph/mailboxes/move", {"mailbox": mover, "to": "cloud"}, expect=200)
    patch_item(sim, mover, iid, subject="Standup moved")
    wait_for(lambda: backends(cs).get(mover) == "graph", timeout=60, what="%s served by graph" % mover)
    cs.wait_state(mover, 60, state="busy", subject="Standup moved")
    cs.wait_live()
    cs.wait_mirrors_equal()
    # Its presence history is kept: the earlier lines are still there.
    assert len(cs.lines_for(mover)) > before

    # And back on premises: Graph refuses it, Autodiscover finds it on premises again.
    sim.control("POST", "/graph/mailboxes/move", {"mailbox": mover, "to": "onprem"}, expect=200)
    delete_item(sim, mover, iid)
    wait_for(lambda: backends(cs).get(mover) == "ews", timeout=90, what="%s served by ews again" % mover)
    cs.wait_state(mover, 60, state="free")
    cs.wait_live()
    cs.wait_mirrors_equal()
    assert cs.stop() == 0


def test_graph_without_graph_configured_parks_with_the_reason(sim_factory, calsync_factory):
    sim = graph_sim(sim_factory, cloud="1")
    mbs = [user(1), user(3)]
    cs = start(calsync_factory, sim, mbs)
    cs.wait_live([user(3)])
    wait_for(lambda: cs.mailbox_rows().get(user(1), {}).get("state") == "parked", timeout=DEADLINE,
             what="the cloud mailbox parked")
    reason = cs.mailbox_rows()[user(1)]["parked_reason"]
    assert "moved to Exchange Online (RedirectAddress" in reason
    assert "that backend is not configured" in reason
    assert cs.stop() == 0


def test_notifications(sim_factory, calsync_factory, certs):
    sim = graph_sim(sim_factory, cloud="1-2", tls=certs)
    port = free_port()
    mbs = [user(1), user(2)]
    for m in mbs:
        clear_calendar(sim, m)
    notify = {"port": port, "cert": certs["cert"], "key": certs["key"]}
    cs = start(calsync_factory, sim, mbs, mode="stream",
               extra='<tls ca_file="%s"/>' % xml_attr(certs["ca"]) + graph_xml(sim, mode="notify", notify=notify))
    cs.wait_live()
    assert backends(cs) == {m: "graph" for m in mbs}
    subs = sim.control("GET", "/graph/subscriptions", expect=200)[1]
    assert len([s for s in subs.get("subscriptions", subs) if isinstance(s, dict)]) >= 2
    iid = busy_now(sim, mbs[0], "Pushed")
    cs.wait_state(mbs[0], 5 + 5, state="busy", subject="Pushed")
    delete_item(sim, mbs[0], iid)
    cs.wait_state(mbs[0], 10, state="free")
    cs.wait_mirrors_equal()
    assert cs.stop() == 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p
