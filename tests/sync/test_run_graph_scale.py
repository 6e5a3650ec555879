"""Hybrid Exchange at scale: 2,000 mailboxes in Exchange Online (Graph) and 2,000 on premises
(EWS streaming) live in one daemon, in each of Graph's change modes; changes on both sides
reach presence, and a sample of mirrors equals the simulator's calendars."""

import collections
import random

import pytest

from calsyncproc import clear_calendar, user, xml_attr
from test_run_graph import busy_now, free_port, graph_xml, SECRET, SECRET_ENV

N_CLOUD = 2000
N_ONPREM = 2000


@pytest.mark.parametrize("mode", ["delta", "notify"])
def test_2000_cloud_and_2000_onprem_live(sim_factory, calsync_factory, certs, mode):
    n = N_CLOUD + N_ONPREM
    sim = sim_factory("--mailboxes", str(n), "--graph-listen", "127.0.0.1:0", "--cloud-mailboxes",
                      "1-%d" % N_CLOUD, "--tls-cert", certs["cert"], "--tls-key", certs["key"],
                      "--graph-notify-insecure")
    mbs = [user(i) for i in range(1, n + 1)]
    cloud, onprem = mbs[:N_CLOUD], mbs[N_CLOUD:]
    rnd = random.Random(7)
    changed = rnd.sample(cloud, 5) + rnd.sample(onprem, 5)
    for m in changed:
        clear_calendar(sim, m)  # no generated appointment outranks the test's
    notify = {"port": free_port(), "cert": certs["cert"], "key": certs["key"]}
    g = graph_xml(sim, mode=mode, interval="10s", notify=notify)
    cs = calsync_factory(sim, mbs, mode="stream", autodiscover=True, log_level="info",
                         extra='<tls ca_file="%s"/>' % xml_attr(certs["ca"]) + g, env={SECRET_ENV: SECRET})
    cs.start()
    cs.wait_live(timeout=240)
    backends = collections.Counter(r[0] for r in cs.query("SELECT backend FROM mailboxes"))
    assert backends == {"graph": N_CLOUD, "ews": N_ONPREM}, backends

    c = sim.counters()
    reqs = c.get("graph_requests", {})
    # One token for the whole run, users looked up 20 to a $batch.
    assert c["graph_tokens_issued"].get("secret", 0) == 1, c["graph_tokens_issued"]
    assert reqs.get("$batch", 0) <= N_CLOUD // 20 + 10, reqs
    if mode == "notify":
        assert c.get("graph_subscriptions_live", {}).get("total") == N_CLOUD, c.get("graph_subscriptions_live")

    for m in changed:
        busy_now(sim, m, "Scale " + m)
    deadline = 15 if mode == "delta" else 10
    for m in changed:
        cs.wait_state(m, deadline, state="busy", subject="Scale " + m)
    cs.wait_mirrors_equal(rnd.sample(cloud, 20) + rnd.sample(onprem, 20) + changed)
    assert cs.stop() == 0
