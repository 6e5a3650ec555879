"""The HTTP API's read endpoints against a running calsync syncing ews-sim: users, presence,
agendas (private items keep their details), metrics that match reality, health and readiness,
the bearer token, and every error status a client can provoke."""

import socket
import time

import pytest

from apiclient import TOKEN, q, sample, start_calsync
from calsyncproc import clear_calendar, create_item, iso, user
from simharness import wait_for

N = 4
MBS = [user(100 + i) for i in range(N)]
BUSY, PRIVATE = MBS[0], MBS[1]


@pytest.fixture(scope="module")
def sim(module_sim_factory):
    return module_sim_factory("--mailboxes", "200")


@pytest.fixture(scope="module")
def env(sim, module_calsync_factory):
    """One daemon for the module: MBS live, BUSY in a public meeting now, PRIVATE in a private
    one, and each with a later appointment."""
    now = int(time.time()) // 60 * 60
    for m in MBS:
        clear_calendar(sim, m)
    create_item(sim, BUSY, subject="Planning", location="Room 1", categories=["Customer visit"],
                start=now - 600, end=now + 3600)
    create_item(sim, PRIVATE, subject="Doctor", location="Clinic", sensitivity="Private",
                categories=["Health"], start=now - 600, end=now + 3600)
    for m in MBS:
        create_item(sim, m, subject="Later " + m, start=now + 7200, end=now + 9000)
    cs, api = start_calsync(module_calsync_factory, sim, MBS)
    cs.wait_live()
    for m in MBS:
        cs.wait_line(m, 10, reason="initial")
    cs.now = now
    return cs, api


def test_healthz_needs_no_token(env):
    cs, api = env
    r = api.get("/healthz", token=None)
    assert r.status == 200 and r.json == {"status": "ok"}, r
    assert r.header("Content-Type") == "application/json"
    assert api.get("/healthz").status == 200
    assert api.get("/healthz", token="wrong").status == 200


@pytest.mark.parametrize("path", ["/v1/users", "/v1/users/%s/presence" % BUSY, "/v1/events", "/metrics",
                                  "/readyz", "/nonexistent"])
def test_token_required(env, path):
    cs, api = env
    r = api.get(path, token=None)
    assert r.status == 401, r
    assert r.header("WWW-Authenticate").startswith("Bearer"), r.headers
    assert "error" in r.json
    r = api.get(path, token="not-the-token")
    assert r.status == 401, r
    assert 'error="invalid_token"' in r.header("WWW-Authenticate")
    r = api.get(path, token=TOKEN + "x")
    assert r.status == 401, r
    r = api.request("GET", path, token=None, headers={"Authorization": "Basic " + TOKEN})
    assert r.status == 401, r


def test_users_list(env):
    cs, api = env
    doc = api.ok("GET", "/v1/users")
    assert doc["next"] is None
    users = {u["smtp"]: u for u in doc["users"]}
    assert sorted(users) == sorted(MBS)
    assert [u["smtp"] for u in doc["users"]] == sorted(MBS)
    rows = cs.mailbox_rows()
    for m in MBS:
        u = users[m]
        assert u["state"] == "live" and u["parked_reason"] is None, u
        assert u["by_api"] is False
        assert u["last_refresh"].endswith("Z")
        assert u["window"] == {"start": iso(rows[m]["window_start"]), "end": iso(rows[m]["window_end"])}
        assert set(u["presence"]) == {"state", "profile", "forward", "subject", "since", "until",
                                      "next_change", "updated"}
    assert users[BUSY]["presence"]["state"] == "busy"
    assert users[PRIVATE]["presence"]["subject"] == "private"
    assert users[MBS[2]]["presence"]["state"] == "free"


def test_users_filter_and_paging(env):
    cs, api = env
    assert [u["smtp"] for u in api.ok("GET", "/v1/users?state=live")["users"]] == sorted(MBS)
    for st in ("parked", "syncing", "unresolved"):
        assert api.ok("GET", "/v1/users?state=" + st) == {"users": [], "next": None}
    seen, after = [], None
    for _ in range(N + 1):
        doc = api.ok("GET", "/v1/users?limit=1" + ("" if after is None else "&after=" + q(after)))
        seen += [u["smtp"] for u in doc["users"]]
        after = doc["next"]
        if after is None:
            break
        assert doc["users"][-1]["smtp"] == after
    assert seen == sorted(MBS)
    doc = api.ok("GET", "/v1/users?limit=3")
    assert len(doc["users"]) == 3 and doc["next"] == sorted(MBS)[2]
    # after compares without case, as the store does.
    doc = api.ok("GET", "/v1/users?after=" + q(sorted(MBS)[1].upper()))
    assert [u["smtp"] for u in doc["users"]] == sorted(MBS)[2:]
    for bad in ("state=bogus", "limit=0", "limit=1001", "limit=-1", "limit=x", "after=%zz"):
        r = api.get("/v1/users?" + bad)
        assert r.status == 400 and "error" in r.json, (bad, r)


def test_user_get(env):
    cs, api = env
    u = api.ok("GET", "/v1/users/" + q(BUSY))
    assert u["smtp"] == BUSY and u["state"] == "live"
    # Case-insensitive and percent-encoded either way.
    assert api.ok("GET", "/v1/users/" + BUSY.upper())["smtp"] == BUSY
    assert api.get("/v1/users/" + q(user(199))).status == 404
    assert api.get("/v1/users/nobody%40nowhere.example/presence").status == 404


def test_presence(env):
    cs, api = env
    now = cs.now
    p = api.ok("GET", "/v1/users/%s/presence" % q(BUSY))
    assert p == {"user": BUSY, "state": "busy", "profile": "In a meeting", "forward": None,
                 "subject": "Planning", "since": iso(now - 600), "until": iso(now + 3600),
                 "next_change": p["next_change"], "updated": p["updated"]}, p
    assert p["next_change"] == iso(now + 3600)
    assert p["updated"].endswith("Z")
    p = api.ok("GET", "/v1/users/%s/presence" % q(PRIVATE))
    assert p["subject"] == "private" and p["state"] == "busy"
    # The output's last line for the user says the same.
    ln = cs.current(PRIVATE)
    assert {k: ln[k] for k in ("state", "profile", "forward", "subject", "since", "until")} == \
        {k: p[k] for k in ("state", "profile", "forward", "subject", "since", "until")}
    free = api.ok("GET", "/v1/users/%s/presence" % q(MBS[2]))
    assert free["state"] == "free" and free["subject"] is None and free["since"] is None
    assert free["until"] == iso(now + 7200)


def test_agenda_hides_private_details(env):
    cs, api = env
    now = cs.now
    doc = api.ok("GET", "/v1/users/%s/agenda" % q(PRIVATE))
    assert doc["user"] == PRIVATE
    assert (doc["from"], doc["to"]) == (doc["window"]["start"], doc["window"]["end"])
    occ = doc["occurrences"]
    assert [o["start"] for o in occ] == [iso(now - 600), iso(now + 7200)]
    private = occ[0]
    assert private["private"] is True and private["free_busy"] == "busy"
    for k in ("subject", "location", "organizer", "categories"):
        assert k not in private, private
    body = api.get("/v1/users/%s/agenda" % q(PRIVATE)).body
    for secret in ("Doctor", "Clinic", "Health"):
        assert secret not in body
    assert occ[1]["subject"] == "Later " + PRIVATE and occ[1]["private"] is False
    pub = api.ok("GET", "/v1/users/%s/agenda" % q(BUSY))["occurrences"][0]
    assert (pub["subject"], pub["location"], pub["categories"]) == ("Planning", "Room 1", ["Customer visit"])
    assert pub["end"] == iso(now + 3600) and pub["all_day"] is False and pub["cancelled"] is False
    assert pub["type"] == "single" and pub["id"]


def test_agenda_range(env):
    cs, api = env
    now = cs.now
    path = "/v1/users/%s/agenda" % q(BUSY)
    # [from, to) keeps what overlaps it.
    doc = api.ok("GET", path + "?from=%s&to=%s" % (iso(now + 3600), iso(now + 7200)))
    assert doc["occurrences"] == [] and doc["from"] == iso(now + 3600)
    doc = api.ok("GET", path + "?from=%s&to=%s" % (iso(now + 3599), iso(now + 7201)))
    assert [o["start"] for o in doc["occurrences"]] == [iso(now - 600), iso(now + 7200)]
    doc = api.ok("GET", path + "?from=%s" % q(iso(now + 4000).replace("Z", "+00:00")))
    assert [o["start"] for o in doc["occurrences"]] == [iso(now + 7200)]
    for bad in ("from=yesterday", "to=2025-13-01T00:00:00Z", "from=%s&to=%s" % (iso(now), iso(now)),
                "from=%s&to=%s" % (iso(now + 60), iso(now))):
        r = api.get(path + "?" + bad)
        assert r.status == 400 and "error" in r.json, (bad, r)
    assert api.get("/v1/users/%s/agenda" % q(user(199))).status == 404


def test_readyz_when_live(env):
    cs, api = env
    # The engine publishes its stats every second, so readiness may lag "all live" by that.
    r = wait_for(lambda: (lambda r: r if r.status == 200 else None)(api.get("/readyz")), timeout=5,
                 what="/readyz 200")
    assert r.json == {"status": "ready", "mailboxes": N, "live": N}


def test_metrics_match_reality(env, sim):
    cs, api = env

    def settled():
        m = api.metrics()
        return m if (sample(m, "calsync_mailboxes", state="live") == N and
                     sample(m, "calsync_streaming_connections") == 1) else None
    # The engine publishes its stats every second.
    m = wait_for(settled, timeout=10, what="metrics to show every mailbox live on one stream")
    assert sim.counters()["streaming_subscriptions_connected"]["total"] == N
    assert m["types"]["calsync_mailboxes"] == "gauge"
    assert m["types"]["calsync_ews_requests_total"] == "counter"
    assert m["types"]["calsync_ews_request_duration_seconds"] == "histogram"
    for st in ("syncing", "parked", "unresolved"):
        assert sample(m, "calsync_mailboxes", state=st) == 0
    subs = cs.subscriptions()
    assert sample(m, "calsync_subscriptions", kind="streaming") == len(subs) == N
    assert sample(m, "calsync_subscriptions", kind="pull") == 0
    assert sample(m, "calsync_streaming_groups") == 1
    assert sample(m, "calsync_streaming_connections") == 1
    assert sample(m, "calsync_presence_changes_total") >= N
    assert sample(m, "calsync_window_refreshes_total") >= N
    assert sample(m, "calsync_ews_requests_total", operation="FindItem", result="ok") >= N
    assert sample(m, "calsync_ews_requests_total", operation="Subscribe", result="ok") >= N
    assert sample(m, "calsync_sse_clients") == 0
    for name in ("calsync_ews_throttled_total", "calsync_mailboxes_backing_off", "calsync_refresh_queue_depth",
                 "calsync_streaming_groups_backing_off", "calsync_ews_requests_in_flight"):
        assert sample(m, name) >= 0
    # Every histogram: buckets cumulative, +Inf equal to _count, and FindItem counted.
    ops = {dict(k[1])["operation"] for k in m["samples"] if k[0] == "calsync_ews_request_duration_seconds_count"}
    assert {"GetUserSettings", "Subscribe", "FindItem", "GetEvents", "Unsubscribe", "GetStreamingEvents"} <= ops
    for op in ops:
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in m["samples"].items()
                          if k[0] == "calsync_ews_request_duration_seconds_bucket" and dict(k[1])["operation"] == op))
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), (op, buckets)
        assert buckets[-1][0] == float("inf")
        assert buckets[-1][1] == sample(m, "calsync_ews_request_duration_seconds_count", operation=op)
    assert sample(m, "calsync_ews_request_duration_seconds_count", operation="FindItem") >= N
    assert sample(m, "calsync_ews_request_duration_seconds_sum", operation="FindItem") > 0
    assert not any("webhook" in k[0] for k in m["samples"])


def test_errors(env):
    cs, api = env
    r = api.get("/nope")
    assert r.status == 404 and r.json["error"], r
    r = api.get("/v1/users/")
    assert r.status == 404, r
    r = api.request("PUT", "/v1/users")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD, POST", r
    r = api.request("GET", "/v1/users/%s/resync" % q(BUSY))
    assert r.status == 405 and r.header("Allow") == "POST", r
    r = api.request("PATCH", "/healthz")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD", r
    r = api.request("POST", "/v1/users/%s" % q(BUSY))
    assert r.status == 405 and r.header("Allow") == "GET, HEAD, DELETE", r
    r = api.get("/v1/users/a%zzb/presence")
    assert r.status == 400 and "percent" in r.json["error"], r
    r = api.get("/v1/users/a%00b/presence")
    assert r.status == 400, r
    r = api.get("/v1/users/" + "a" * 400 + "/presence")
    assert r.status == 400, r
    r = api.get("/v1/events", headers={"Last-Event-ID": "abc"})
    assert r.status == 400, r
    r = api.get("/v1/events?after=-1")
    assert r.status == 400, r
    # 413: a declared body over 64 KiB, and a chunked one.
    r = api.request("POST", "/v1/users", raw=b"{" + b" " * (64 * 1024 + 1) + b"}",
                    headers={"Content-Type": "application/json"})
    assert r.status == 413 and "error" in r.json, r
    c = api.connection()
    c.putrequest("POST", "/v1/users")
    c.putheader("Authorization", "Bearer " + TOKEN)
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    for _ in range(20):
        c.send(b"1000\r\n" + b"x" * 4096 + b"\r\n")
    c.send(b"0\r\n\r\n")
    resp = c.getresponse()
    assert resp.status == 413, resp.read()
    c.close()
    r = api.request("HEAD", "/v1/users")
    assert r.status == 200 and r.body == ""


def test_junk_never_crashes(env):
    cs, api = env
    junk = [b"\x00\xff\xfe garbage\r\n\r\n", b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n",
            b"GET /v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
            b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{", b"GET /v1/events?after=%\r\n\r\n",
            b"GET /v1/users?limit=%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n"]
    for data in junk:
        s = socket.create_connection((api.host, api.port), timeout=10)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            s.close()
    cs.assert_running()
    assert api.get("/healthz").status == 200
    # Bodies that are not what POST /v1/users takes.
    for raw in (b"", b"{", b"[]", b'{"smtp": 5}', b'{"smtp": "a\\u0000b@c"}', b'{"smtp": "x"}',
                b'{"smtp": "a@b", "smtp": "c@d"}', b"\xff\xfe", b'"a@b"'):
        r = api.request("POST", "/v1/users", raw=raw, headers={"Content-Type": "application/json"})
        assert r.status == 400 and r.json["error"], (raw, r)
    cs.assert_running()


def test_clean_stop_after_everything(env):
    """Last in the module: after every request above, calsync stops cleanly (under ASan this
    is the leak check of the API's request paths)."""
    cs, api = env
    assert cs.stop() == 0
    assert "ERROR: AddressSanitizer" not in cs.stderr_text()
