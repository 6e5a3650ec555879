"""calsync run with EWS bearer tokens from the OAuth provider: <account auth="bearer"
oauth="graph"> against ews-sim, whose EWS endpoint accepts the JWTs its Entra token endpoint
issues for the EWS host's resource, as on-premises Exchange with Hybrid Modern Authentication
does (docs/graph.md, "EWS with Hybrid Modern Authentication"). The token expires on the sim
clock and is revoked mid-run; changes still reach presence."""

import pytest

from calsyncproc import clear_calendar, create_item, patch_item, user
from simharness import wait_for
from test_run_graph import SECRET, SECRET_ENV, counter_of, counters, graph_sim, graph_xml

DEADLINE = 30


def start(calsync_factory, sim, mbs, mode):
    cs = calsync_factory(sim, mbs, mode=mode, auth="oauth", extra=graph_xml(sim, interval="10s"),
                         env={SECRET_ENV: SECRET})
    cs.start()
    return cs


def busy(sim, smtp, subject):
    import time
    now = time.time()
    return create_item(sim, smtp, subject=subject, start=now - 300, end=now + 1800)["id"]


@pytest.mark.parametrize("mode", ["stream", "pull"])
def test_ews_bearer_from_the_token_provider(sim_factory, calsync_factory, mode):
    # Mailboxes 1-2 live in Exchange Online; 3-4 on premises, read through EWS with tokens.
    sim = graph_sim(sim_factory, "--auth", "bearer", "--token-lifetime", "60")
    mbs = [user(3), user(4)]
    for m in mbs:
        clear_calendar(sim, m)
    ids = {m: busy(sim, m, "Before start " + m) for m in mbs}
    cs = start(calsync_factory, sim, mbs, mode)
    cs.wait_live()
    for m in mbs:
        cs.wait_state(m, DEADLINE, state="busy", subject="Before start " + m)
    issued = counter_of(counters(sim), "graph_tokens_issued", "secret")
    assert issued >= 1
    assert "bearer tokens from tenant" in cs.stderr_text()

    # The token expires on the simulator's clock (calsync's provider still thinks it valid):
    # EWS answers 401, calsync takes a new token and goes on.
    sim.control("POST", "/clock", {"shift": 120}, expect=200)
    a, b = mbs
    patch_item(sim, a, ids[a], subject="After expiry")
    cs.wait_state(a, DEADLINE, state="busy", subject="After expiry")
    c = counters(sim)
    assert counter_of(c, "graph_tokens_issued", "secret") > issued
    assert counter_of(c, "ews_bearer_refused", "2000007") >= 1

    # Every token revoked: the same again.
    issued = counter_of(c, "graph_tokens_issued", "secret")
    sim.control("POST", "/graph/tokens/revoke", expect=200)
    patch_item(sim, b, ids[b], subject="After revocation")
    cs.wait_state(b, DEADLINE, state="busy", subject="After revocation")
    c = counters(sim)
    assert counter_of(c, "graph_tokens_issued", "secret") > issued
    assert counter_of(c, "ews_bearer_refused", "2000003") >= 1
    assert SECRET not in cs.stderr_text()
    assert cs.stop() == 0


def test_a_refused_token_request_names_aadsts(sim_factory, calsync_factory):
    # The app's secret is wrong: the token endpoint refuses it (AADSTS7000215); every EWS call
    # fails with that message as a service-account error, and nothing reaches EWS.
    sim = graph_sim(sim_factory, "--auth", "bearer")
    m = user(3)
    clear_calendar(sim, m)
    cs = calsync_factory(sim, [m], mode="pull", auth="oauth", extra=graph_xml(sim),
                         env={SECRET_ENV: "not-the-secret"})
    cs.start()
    wait_for(lambda: "AADSTS7000215" in cs.stderr_text(), timeout=DEADLINE, what="the AADSTS error")
    text = cs.stderr_text()
    assert "the service account's configuration" in text
    assert "not-the-secret" not in text
    assert counter_of(counters(sim), "ews_bearer_refused", "2000003") == 0
    assert cs.stop() == 0
