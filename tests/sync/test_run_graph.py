"""calsync run with hybrid Exchange: on-premises mailboxes through EWS and mailboxes in Exchange
Online through Microsoft Graph, side by side in one daemon, against ews-sim with its Graph
simulator (docs/graph-sim.md). Asserts on presence, on the mirrors (the store against the
simulator's calendar) and on the simulator's counters."""

import signal
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


def counters(sim):
    return sim.control("GET", "/counters", expect=200)[1]


def notify_sim_and_calsync(sim_factory, calsync_factory, certs, mbs, *sim_args):
    sim = graph_sim(sim_factory, *sim_args, cloud="1-4", tls=certs)
    for m in mbs:
        clear_calendar(sim, m)
    notify = {"port": free_port(), "cert": certs["cert"], "key": certs["key"]}
    cs = start(calsync_factory, sim, mbs, mode="stream",
               extra='<tls ca_file="%s"/>' % xml_attr(certs["ca"]) + graph_xml(sim, mode="notify", notify=notify))
    cs.wait_live()
    return sim, cs


def subscription_of(sim, smtp):
    subs = sim.control("GET", "/graph/subscriptions?mailbox=%s" % smtp, expect=200)[1]
    subs = subs.get("subscriptions", subs) if isinstance(subs, dict) else subs
    return [s for s in subs if isinstance(s, dict)]


def test_lifecycle_notifications(sim_factory, calsync_factory, certs):
    mbs = [user(1), user(2)]
    sim, cs = notify_sim_and_calsync(sim_factory, calsync_factory, certs, mbs)
    m = mbs[0]
    wait_for(lambda: subscription_of(sim, m), timeout=DEADLINE, what="a subscription of %s" % m)
    first = subscription_of(sim, m)[0]["id"]

    # missed: notifications were lost; a change made meanwhile is found by the re-read.
    # Every notification of the change is dropped (a new event makes two: created, updated).
    sim.control("POST", "/graph/faults", {"kind": "notify_drop", "mailbox": m, "count": None}, expect=201)
    iid = busy_now(sim, m, "Dropped notification")
    wait_for(lambda: counter_of(counters(sim), "graph_notifications", "dropped_fault") >= 2, timeout=10,
             what="both notifications dropped")
    assert cs.current(m)["state"] == "free"
    sim.control("DELETE", "/graph/faults", expect=200)
    sim.control("POST", "/graph/subscriptions/%s/lifecycle" % first, {"event": "missed"}, expect=200)
    cs.wait_state(m, 10, state="busy", subject="Dropped notification")

    # reauthorizationRequired: renewed at once (a PATCH), the same subscription keeps working.
    renewed = counter_of(counters(sim), "graph_subscriptions", "renewed") + \
        counter_of(counters(sim), "graph_subscriptions", "reauthorized")
    sim.control("POST", "/graph/subscriptions/%s/lifecycle" % first, {"event": "reauthorizationRequired"},
                expect=200)
    wait_for(lambda: counter_of(counters(sim), "graph_subscriptions", "renewed")
             + counter_of(counters(sim), "graph_subscriptions", "reauthorized") > renewed,
             timeout=10, what="the subscription renewed")

    # subscriptionRemoved: a new subscription, a re-read, and changes flow again.
    sim.control("POST", "/graph/subscriptions/%s/lifecycle" % first, {"event": "subscriptionRemoved"},
                expect=200)
    wait_for(lambda: [s for s in subscription_of(sim, m) if s["id"] != first], timeout=DEADLINE,
             what="a new subscription of %s" % m)
    patch_item(sim, m, iid, subject="After removal")
    cs.wait_state(m, 10, state="busy", subject="After removal")
    cs.wait_mirrors_equal()
    assert counters(sim).get("graph_notifications", {}).get("sent", 0) > 0
    assert cs.stop() == 0


def test_throttling_and_token_revocation(sim_factory, calsync_factory):
    # Tokens live 60 sim seconds: calsync renews them before they run out, while it polls.
    sim = graph_sim(sim_factory, "--token-lifetime", "60")
    mbs = [user(1), user(2)]
    for m in mbs:
        clear_calendar(sim, m)
    cs = start(calsync_factory, sim, mbs, extra=graph_xml(sim, interval="10s"))
    cs.wait_live()
    a, b = mbs
    # A 429 storm on one mailbox: it waits its Retry-After; the other is not held up.
    sim.control("POST", "/graph/faults", {"kind": "http_429", "count": 4, "retry_after": 2, "mailbox": a,
                                          "code": "MailboxConcurrency"}, expect=201)
    ia = busy_now(sim, a, "Throttled one")
    ib = busy_now(sim, b, "Free flowing")
    cs.wait_state(b, 15, state="busy", subject="Free flowing")
    cs.wait_state(a, 30, state="busy", subject="Throttled one")
    assert counter_of(counters(sim), "graph_429", "fault") >= 1
    # Every token revoked: the next request gets 401, calsync takes a new token and goes on.
    issued = counter_of(counters(sim), "graph_tokens_issued", "secret")
    sim.control("POST", "/graph/tokens/revoke", expect=200)
    patch_item(sim, a, ia, subject="After revocation")
    cs.wait_state(a, 15, state="busy", subject="After revocation")
    assert counter_of(counters(sim), "graph_tokens_issued", "secret") > issued
    # The token expires on the simulator's clock: a new one is had before, nothing is lost.
    issued = counter_of(counters(sim), "graph_tokens_issued", "secret")
    sim.control("POST", "/clock", {"shift": 120}, expect=200)
    delete_item(sim, b, ib)
    cs.wait_state(b, 15, state="free")
    assert counter_of(counters(sim), "graph_tokens_issued", "secret") > issued
    cs.wait_mirrors_equal()
    assert cs.stop() == 0


def test_certificate_credential(sim_factory, calsync_factory, tmp_path):
    import subprocess
    key, crt = str(tmp_path / "g.key"), str(tmp_path / "g.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=calsync test app", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    sim = graph_sim(sim_factory, "--graph-client-cert", crt, cloud="1")
    m = user(1)
    clear_calendar(sim, m)
    busy_now(sim, m, "Signed in with a certificate")
    info = sim.info
    g = ('<graph tenant="%s" client_id="%s"><certificate cert="%s" key="%s"/>'
         '<endpoints authority="%s" graph="%s"/><delta interval="10s"/></graph>'
         % (info["tenant_id"], info["client_id"], xml_attr(crt), xml_attr(key), xml_attr(info["login"]),
            xml_attr(info["graph"])))
    cs = start(calsync_factory, sim, [m], extra=g)
    cs.wait_live()
    cs.wait_state(m, DEADLINE, state="busy", subject="Signed in with a certificate")
    c = counters(sim)
    assert counter_of(c, "graph_tokens_issued", "certificate") >= 1
    assert counter_of(c, "graph_tokens_issued", "secret") == 0
    assert cs.stop() == 0


def counter_of(c, name, label):
    v = c.get(name, {})
    return v.get(label, 0) if isinstance(v, dict) else 0


def test_access_denied_parks_with_the_fix_and_recovers(sim_factory, calsync_factory):
    sim = graph_sim(sim_factory, cloud="1")
    m = user(1)
    clear_calendar(sim, m)
    # The app registration without Calendars.Read: every Graph read is refused with 403 (and
    # without User.Read.All, which calsync does not need, the user lookup too).
    sim.control("POST", "/graph/app", {"roles": []}, expect=200)
    cs = start(calsync_factory, sim, [m], extra=graph_xml(sim, interval="10s"))
    wait_for(lambda: cs.mailbox_rows().get(m, {}).get("state") == "parked", timeout=DEADLINE,
             what="%s parked" % m)
    reason = cs.mailbox_rows()[m]["parked_reason"]
    assert "Calendars.Read" in reason, reason
    # Consent granted (Calendars.Read only): a reload retries parked mailboxes at once, with a
    # new token that carries the role.
    sim.control("POST", "/graph/app", {"roles": ["Calendars.Read"]}, expect=200)
    busy_now(sim, m, "Consented")
    cs.signal(signal.SIGHUP)
    cs.wait_live(timeout=DEADLINE)
    cs.wait_state(m, DEADLINE, state="busy", subject="Consented")
    assert cs.stop() == 0


def test_notification_endpoint_down_and_restart(sim_factory, calsync_factory, certs):
    """calsync killed (its endpoint down, Graph's POSTs failing and retried with a growing
    interval), appointments changed meanwhile, then started again: it replaces the stored
    subscriptions (their notifications are held back behind the retry interval), reads every
    window again, and misses nothing; notifications flow to the new process at once."""
    mbs = [user(1), user(2)]
    sim, cs = notify_sim_and_calsync(sim_factory, calsync_factory, certs, mbs)
    m = mbs[0]
    wait_for(lambda: subscription_of(sim, m), timeout=DEADLINE, what="a subscription of %s" % m)
    subs_before = {s["id"] for mb in mbs for s in subscription_of(sim, mb)}
    iid = busy_now(sim, m, "Before the outage")
    cs.wait_state(m, 10, state="busy", subject="Before the outage")
    cs.kill9()
    patch_item(sim, m, iid, subject="During the outage")
    busy_now(sim, mbs[1], "Also during the outage")
    # Graph tries to deliver and fails while nobody listens.
    wait_for(lambda: counter_of(counters(sim), "graph_notifications", "failed") >= 1, timeout=20,
             what="a failed notification POST")
    cs.start()
    cs.wait_state(m, DEADLINE, state="busy", subject="During the outage")
    cs.wait_state(mbs[1], DEADLINE, state="busy", subject="Also during the outage")
    cs.wait_live()
    # New subscriptions, one per mailbox; the old ones deleted.
    def replaced():
        now = {s["id"] for mb in mbs for s in subscription_of(sim, mb)}
        return len(now) == len(mbs) and not now & subs_before
    wait_for(replaced, timeout=DEADLINE, what="the stored subscriptions replaced")
    # And notifications flow to the new process.
    patch_item(sim, m, iid, subject="After the outage")
    cs.wait_state(m, 10, state="busy", subject="After the outage")
    cs.wait_mirrors_equal()
    assert cs.stop() == 0


def test_refused_secret_parks_and_recovers(sim_factory, calsync_factory):
    sim = graph_sim(sim_factory, cloud="1")
    m = user(1)
    clear_calendar(sim, m)
    iid = busy_now(sim, m, "Before the secret expired")
    cs = start(calsync_factory, sim, [m], extra=graph_xml(sim, interval="10s"))
    cs.wait_live()
    cs.wait_state(m, DEADLINE, state="busy", subject="Before the secret expired")
    # The secret expires and the token is revoked: the next request gets 401, the token
    # request is refused, and the mailbox is parked with Entra ID's reason.
    sim.control("POST", "/graph/app", {"expire_secrets": [SECRET]}, expect=200)
    sim.control("POST", "/graph/tokens/revoke", expect=200)
    wait_for(lambda: cs.mailbox_rows().get(m, {}).get("state") == "parked", timeout=DEADLINE,
             what="%s parked" % m)
    reason = cs.mailbox_rows()[m]["parked_reason"]
    assert "AADSTS" in reason, reason
    assert SECRET not in cs.stderr_text()
    # A new secret is valid again (the admin renewed it): calsync recovers by itself.
    sim.control("POST", "/graph/app", {"secrets": [SECRET]}, expect=200)
    patch_item(sim, m, iid, subject="After the secret was renewed")
    # The provider tries a refused credential once a minute; the probe then unparks at once.
    cs.wait_live(timeout=90)
    cs.wait_state(m, DEADLINE, state="busy", subject="After the secret was renewed")
    assert cs.stop() == 0
