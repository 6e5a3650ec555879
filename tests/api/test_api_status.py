"""GET /v1/status against a running calsync: mailbox counts, the parked mailbox (impersonation
denied by the service account's scope) with its reason, streaming groups, the last errors, the
loop's activity, the same token rules as every read, and a document of the documented shape."""

import pytest

from apiclient import TOKEN, start_calsync
from calsyncproc import user
from simharness import PASSWORD, SVC, wait_for

MBS = [user(i) for i in range(1, 5)]
DENIED = user(3)
OTHERS = [m for m in MBS if m != DENIED]
PARK_DEADLINE = 30.0


@pytest.fixture(scope="module")
def sim(module_sim_factory):
    """A simulator of its own: the service account may impersonate every mailbox but DENIED."""
    s = module_sim_factory("--mailboxes", "8")
    allowed = [user(i) for i in range(1, 9) if user(i) != DENIED]
    s.control("POST", "/accounts", {"smtp": SVC, "password": PASSWORD, "impersonation": allowed},
              expect=201)
    return s


@pytest.fixture(scope="module")
def env(sim, module_calsync_factory):
    cs, api = start_calsync(module_calsync_factory, sim, MBS)
    cs.wait_live(OTHERS)
    wait_for(lambda: (cs.mailbox_rows() or {}).get(DENIED, {}).get("state") == "parked",
             timeout=PARK_DEADLINE, what="%s parked" % DENIED)
    for m in OTHERS:
        cs.wait_line(m, 10, reason="initial")
    return cs, api


def healthy(api):
    """The status once every group is connected and the counts have settled, else None."""
    st = api.ok("GET", "/v1/status")
    groups = st["groups"]
    if (st["mailboxes"]["live"] == len(OTHERS) and groups
            and all(g["connected"] and g["failures"] == 0 for g in groups)
            and sum(g["subscribed"] for g in groups) == len(OTHERS)):
        return st
    return None


def test_status_document(env):
    cs, api = env
    st = wait_for(lambda: healthy(api), timeout=20, interval=0.1, what="every group connected")
    assert list(st) == ["mailboxes", "parked", "groups", "errors", "streams_open", "in_flight",
                        "queued", "backing_off", "presence_changes", "webhooks"], list(st)
    assert st["mailboxes"] == {"total": 4, "live": 3, "syncing": 0, "parked": 1, "unresolved": 0}
    assert len(st["parked"]) == 1 and st["parked"][0]["smtp"] == DENIED, st["parked"]
    assert "ImpersonateUserDenied" in st["parked"][0]["reason"], st["parked"]
    # The same reason as the store's.
    assert st["parked"][0]["reason"] == cs.mailbox_rows()[DENIED]["parked_reason"]
    for g in st["groups"]:
        assert set(g) == {"key", "anchor", "members", "subscribed", "connected", "failures"}, g
        assert g["key"] and g["anchor"] in MBS and g["members"] >= g["subscribed"]
    assert st["streams_open"] == len(st["groups"])
    assert st["presence_changes"] >= len(OTHERS)
    for k in ("in_flight", "queued", "backing_off"):
        assert isinstance(st[k], int) and st[k] >= 0, (k, st[k])
    assert st["webhooks"] == []


def test_errors_name_the_parked_mailbox(env):
    cs, api = env

    def found():
        errs = api.ok("GET", "/v1/status")["errors"]
        return [e for e in errs if e["mailbox"] == DENIED] or None
    errs = wait_for(found, timeout=10, interval=0.1, what="an error for %s" % DENIED)
    e = errs[0]
    assert set(e) == {"time", "mailbox", "what", "message"}, e
    assert "ImpersonateUserDenied" in e["message"], e
    assert e["time"].endswith("Z") and len(e["time"]) == 20, e
    all_errs = api.ok("GET", "/v1/status")["errors"]
    assert len(all_errs) <= 20
    # Newest first.
    times = [x["time"] for x in all_errs]
    assert times == sorted(times, reverse=True), times


def test_token_rules(env):
    cs, api = env
    r = api.get("/v1/status", token=None)
    assert r.status == 401 and r.header("WWW-Authenticate").startswith("Bearer"), r
    r = api.get("/v1/status", token=TOKEN + "x")
    assert r.status == 401 and 'error="invalid_token"' in r.header("WWW-Authenticate"), r
    r = api.request("HEAD", "/v1/status")
    assert r.status == 200 and r.body == "", r
    r = api.request("POST", "/v1/status", body={})
    assert r.status == 405 and r.header("Allow") == "GET, HEAD", r
    r = api.get("/v1/status")
    assert r.status == 200 and r.header("Content-Type") == "application/json", r
    assert r.header("Cache-Control") == "no-store"


def test_open_without_token(sim, calsync_factory):
    cs, api = start_calsync(calsync_factory, sim, [user(5)], token=False)
    cs.wait_live([user(5)])
    st = api.ok("GET", "/v1/status", token=None)
    assert st["mailboxes"]["total"] == 1 and st["parked"] == []
    assert cs.stop() == 0
