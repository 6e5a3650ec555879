"""`calsync run` with auth="ntlm" against an ews-sim that serves HTTPS with Extended
Protection set to require (Exchange 2019 CU14 and later): every mailbox goes live, streaming
and pull, and a calendar change made on the server reaches the presence output. Nothing is
refused for its channel binding, no NTLM handshake happens without a new connection, and
the password is in no log line."""

import time

import pytest

from calsyncproc import clear_calendar, create_item, iso, user
from simharness import PASSWORD

CHANGE_DEADLINE = {"stream": 10.0, "pull": 15.0}  # seconds: pull interval 5 s + slack
BASE = {"stream": 1, "pull": 6}  # each mode its own mailboxes on the module's sim


@pytest.fixture(scope="module")
def sim(module_sim_factory, certs):
    return module_sim_factory("--mailboxes", "12", "--log-level", "info", "--tls-cert", certs["cert"],
                              "--tls-key", certs["key"], "--extended-protection", "require")


def auth_failures(sim):
    return sim.counters().get("auth_failures", {})


@pytest.mark.parametrize("mode", ["stream", "pull"])
def test_live_and_a_change_through_with_channel_binding(sim, certs, calsync_factory, mode):
    assert sim.ews.startswith("https://")
    assert sim.control("GET", "/auth", expect=200)[1]["extended_protection"] == "require"
    mbs = [user(BASE[mode] + i) for i in range(4)]
    for m in mbs:
        clear_calendar(sim, m)
    failures = auth_failures(sim)

    cs = calsync_factory(sim, mbs, mode=mode, sync={"pull_interval": "5s"},
                         extra='<tls ca_file="%s"/>' % certs["ca"])
    cs.start()
    cs.wait_live()
    for m in mbs:
        cs.wait_line(m, 10, reason="initial", state="free")

    now = int(time.time()) // 60 * 60
    after = cs.max_id()
    create_item(sim, mbs[0], subject="Extended Protection review", start=now - 15 * 60, end=now + 45 * 60)
    cs.wait_line(mbs[0], CHANGE_DEADLINE[mode], after_id=after, what="the meeting in presence",
                 reason="calendar-changed", state="busy", subject="Extended Protection review",
                 until=iso(now + 45 * 60))
    cs.assert_running()

    # No authentication failed (a refused channel binding would count here), and the
    # connections stayed authenticated: fewer handshakes than requests.
    assert auth_failures(sim) == failures
    handshakes = sim.output().count("auth: NTLM ok")
    requests = sum(sim.counters().get("requests_by_op", {}).values())
    assert 0 < handshakes < requests, (handshakes, requests)
    log = cs.stderr_text()
    assert PASSWORD not in log and "TlRMTVNTUA" not in log
    cs.stop()
