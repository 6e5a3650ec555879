"""Changes through the HTTP API: adding and removing mailboxes at run time (the mailbox goes
live, or is unsubscribed on ews-sim, and the change survives a restart), resync (ews-sim sees
FindItem again), and the rules for tokens: changes always need one, and without one configured
they are refused with 403."""

import pytest

from apiclient import TOKEN, q, start_calsync, wait_api
from calsyncproc import counter, sim_subscriptions, user
from simharness import wait_for


@pytest.fixture(scope="module")
def sim(module_sim_factory):
    return module_sim_factory("--mailboxes", "200")


def test_without_token_reads_work_and_changes_are_403(sim, calsync_factory):
    mbs = [user(1)]
    cs, api = start_calsync(calsync_factory, sim, mbs, token=False)
    cs.wait_live()
    assert "(no token: read-only)" in cs.stderr_text()
    assert api.get("/v1/users").status == 200
    assert api.get("/v1/users/%s/presence" % q(mbs[0])).status == 200
    for method, path, body in (("POST", "/v1/users", {"smtp": user(2)}),
                               ("DELETE", "/v1/users/" + q(mbs[0]), None),
                               ("POST", "/v1/users/%s/resync" % q(mbs[0]), None)):
        for token in (None, "anything"):
            r = api.request(method, path, body, token=token)
            assert r.status == 403, (method, path, r)
            assert "token" in r.json["error"], r
    # Nothing happened.
    assert [u["smtp"] for u in api.ok("GET", "/v1/users")["users"]] == mbs


def test_changes_need_the_token(sim, calsync_factory):
    mbs = [user(3)]
    cs, api = start_calsync(calsync_factory, sim, mbs)
    cs.wait_live()
    for method, path, body in (("POST", "/v1/users", {"smtp": user(4)}),
                               ("DELETE", "/v1/users/" + q(mbs[0]), None),
                               ("POST", "/v1/users/%s/resync" % q(mbs[0]), None)):
        for token in (None, "wrong"):
            r = api.request(method, path, body, token=token)
            assert r.status == 401, (method, path, r)
            assert r.header("WWW-Authenticate").startswith("Bearer")
    assert sorted(cs.states()) == mbs


def test_add_and_remove_at_run_time(sim, calsync_factory):
    base, added = user(10), user(11)
    cs, api = start_calsync(calsync_factory, sim, [base])
    cs.wait_live()

    r = api.request("POST", "/v1/users", {"smtp": added})
    assert r.status == 201, r
    assert r.header("Location") == "/v1/users/" + added  # "@" needs no encoding in a path
    assert r.json["smtp"] == added and r.json["by_api"] is True
    cs.wait_live([base, added])
    wait_for(lambda: len(sim_subscriptions(sim, added)) == 1, timeout=10, what="ews-sim subscription of %s" % added)
    u = wait_for(lambda: (lambda u: u if u["presence"] else None)(api.ok("GET", "/v1/users/" + q(added))),
                 timeout=10, what="presence of the added mailbox")
    assert u["state"] == "live" and u["by_api"] is True
    assert [x["smtp"] for x in api.ok("GET", "/v1/users?state=live")["users"]] == [base, added]

    # Again, in another case: it exists.
    r = api.request("POST", "/v1/users", {"smtp": added.upper()})
    assert r.status == 409 and r.json["error"], r
    r = api.request("POST", "/v1/users", {"smtp": base})
    assert r.status == 409, r
    for bad in ({"smtp": "no-at-sign"}, {"smtp": "a b@c.example"}, {"smtp": ""}, {"address": added},
                {"smtp": "x" * 400 + "@contoso.example"}, {"smtp": "user@bad..domain"}):
        r = api.request("POST", "/v1/users", bad)
        assert r.status == 400 and r.json["error"], (bad, r)

    # Removed: unsubscribed on ews-sim, gone from the API, disabled in the store.
    r = api.request("DELETE", "/v1/users/" + q(added))
    assert r.status == 204 and r.body == "", r
    wait_for(lambda: sim_subscriptions(sim, added) == [], timeout=10, what="%s unsubscribed on ews-sim" % added)
    assert api.get("/v1/users/" + q(added)).status == 404
    assert api.get("/v1/users/%s/presence" % q(added)).status == 404
    assert [x["smtp"] for x in api.ok("GET", "/v1/users")["users"]] == [base]
    assert cs.mailbox_rows()[added]["enabled"] == 0
    r = api.request("DELETE", "/v1/users/" + q(added))
    assert r.status == 404 and r.json["error"], r
    r = api.request("DELETE", "/v1/users/" + q(user(12)))
    assert r.status == 404, r
    assert sim_subscriptions(sim, base) != []


def test_added_mailbox_survives_a_restart(sim, calsync_factory):
    base, added = user(20), user(21)
    cs, api = start_calsync(calsync_factory, sim, [base])
    cs.wait_live()
    assert api.request("POST", "/v1/users", {"smtp": added}).status == 201
    cs.wait_live([base, added])
    assert cs.stop() == 0
    cs.start()
    api = wait_api(cs, TOKEN)
    cs.wait_live([base, added])
    assert [x["smtp"] for x in api.ok("GET", "/v1/users")["users"]] == [base, added]


def test_unknown_mailbox_parks_and_plus_addresses(sim, calsync_factory):
    base, ghost = user(30), "ghost+tag@contoso.example"
    cs, api = start_calsync(calsync_factory, sim, [base])
    cs.wait_live()
    assert api.request("POST", "/v1/users", {"smtp": ghost}).status == 201
    u = wait_for(lambda: (lambda u: u if u["state"] == "parked" else None)(api.ok("GET", "/v1/users/" + q(ghost))),
                 timeout=15, what="%s parked" % ghost)
    assert u["parked_reason"], u
    assert [x["smtp"] for x in api.ok("GET", "/v1/users?state=parked")["users"]] == [ghost]
    # '+' percent-encoded in a path or a query is a '+'; a raw '+' in a query is a space, as in
    # every form-encoded query.
    assert api.ok("GET", "/v1/users/ghost%2Btag@contoso.example")["smtp"] == ghost
    assert api.ok("GET", "/v1/users/ghost+tag@contoso.example")["smtp"] == ghost
    assert api.ok("GET", "/v1/users?after=" + q(ghost))["users"] == [] or \
        all(x["smtp"] > ghost for x in api.ok("GET", "/v1/users?after=" + q(ghost))["users"])
    assert [x["smtp"] for x in api.ok("GET", "/v1/users?after=ghost%2Btag@contoso.example")["users"]] == \
        [x for x in sorted([base, ghost]) if x.lower() > ghost]
    r = wait_for(lambda: (lambda r: r if r.status == 503 else None)(api.get("/readyz")), timeout=5,
                 what="/readyz 503 with a parked mailbox")
    assert "1 of 2 mailboxes live" in r.json["error"], r


def test_resync_reads_the_window_again(sim, calsync_factory):
    m = user(40)
    cs, api = start_calsync(calsync_factory, sim, [m])
    cs.wait_live()

    def finditems():
        return counter(sim.counters(), "requests_by_op", "FindItem")
    before = finditems()
    r = api.request("POST", "/v1/users/%s/resync" % q(m))
    assert r.status == 202, r
    assert r.json == {"smtp": m, "status": "resync scheduled"}
    wait_for(lambda: finditems() > before, timeout=10, what="a FindItem after the resync")
    r = api.request("POST", "/v1/users/%s/resync" % q(user(41)))
    assert r.status == 404 and r.json["error"], r
    cs.assert_running()
