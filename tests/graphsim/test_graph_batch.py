"""JSON $batch, Outlook's per-app-per-mailbox concurrency limit and the faults on demand
(forced 429/503 with Retry-After, slow answers)."""

import threading

import pytest

import graphclient as gc
from graphclient import A, B, C, WINDOW, wait_for_in_flight


@pytest.fixture
def bsim(sim_factory):
    return gc.graph_sim(sim_factory)


def batch(g, requests, tok=None):
    st, h, doc = g.call("POST", "$batch", body={"requests": requests}, tok=tok)
    return st, doc


def cv(i, mailbox=A, **kw):
    r = {"id": str(i), "method": "GET", "url": "/users/%s/calendarView?%s&$top=2" % (mailbox, WINDOW)}
    r.update(kw)
    return r


def test_batch_answers_each_request(bsim):
    g = gc.Graph(bsim)
    st, doc = batch(g, [
        {"id": "1", "method": "GET", "url": "/users/" + A},
        cv(2, headers={"Prefer": 'outlook.timezone="Tokyo Standard Time"'}),
        {"id": "3", "method": "GET", "url": "users/%s/mailFolders" % A},
        {"id": "4", "method": "GET", "url": "/v1.0/users/" + B},
        {"id": "5", "method": "GET", "url": "/users/user00009@contoso.example/calendarView?" + WINDOW},
    ])
    assert st == 200
    r = {x["id"]: x for x in doc["responses"]}
    assert set(r) == {"1", "2", "3", "4", "5"}
    assert r["1"]["status"] == 200 and r["1"]["body"]["mail"] == A
    assert r["1"]["headers"]["Content-Type"].startswith("application/json")
    assert r["2"]["status"] == 200 and len(r["2"]["body"]["value"]) == 2
    assert r["2"]["body"]["value"][0]["start"]["timeZone"] == "Tokyo Standard Time"
    assert r["2"]["headers"]["Preference-Applied"] == 'outlook.timezone="Tokyo Standard Time"'
    assert r["2"]["body"]["@odata.nextLink"].startswith(bsim.info["graph"] + "/users/")
    assert r["3"]["status"] == 400 and r["3"]["body"]["error"]["code"] == "BadRequest"
    assert r["4"]["status"] == 200 and r["4"]["body"]["mail"] == B
    assert r["5"]["status"] == 404 and r["5"]["body"]["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    c = bsim.counters()
    assert c["graph_batches"] == {"": 1} and c["graph_batch_requests"] == {"": 5}


def test_batch_limits_and_format(bsim):
    g = gc.Graph(bsim)
    st, doc = batch(g, [{"id": str(i), "method": "GET", "url": "/users/" + A} for i in range(21)])
    assert st == 400 and doc["error"]["code"] == "BadRequest" and "20" in doc["error"]["message"]
    st, doc = batch(g, [{"id": "1", "method": "GET", "url": "/users/" + A}] * 2)
    assert st == 400
    st, doc = batch(g, [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users/" + A}])
    assert st == 200 and doc["responses"][0]["status"] == 400
    st, doc = batch(g, [])
    assert st == 400
    st, _, doc = g.call("POST", "$batch", body={"requests": [{"id": "1", "method": "GET", "url": "/users/" + A}]},
                        tok="nope")
    assert st == 401 and doc["error"]["code"] == "InvalidAuthenticationToken"


def test_batch_depends_on(bsim):
    g = gc.Graph(bsim)
    st, doc = batch(g, [
        {"id": "a", "method": "GET", "url": "/users/nobody@contoso.example"},
        {"id": "b", "method": "GET", "url": "/users/" + A, "dependsOn": ["a"]},
        {"id": "c", "method": "GET", "url": "/users/" + B},
        {"id": "d", "method": "GET", "url": "/users/" + C, "dependsOn": ["c"]},
    ])
    r = {x["id"]: x["status"] for x in doc["responses"]}
    assert r == {"a": 404, "b": 424, "c": 200, "d": 200}
    st, doc = batch(g, [{"id": "a", "method": "GET", "url": "/users/" + A, "dependsOn": ["zz"]}])
    assert st == 400


def test_batch_of_more_than_four_to_one_mailbox_is_throttled_inside(bsim):
    g = gc.Graph(bsim)
    st, doc = batch(g, [cv(i) for i in range(6)] + [cv(10 + i, B) for i in range(4)])
    statuses = sorted(x["status"] for x in doc["responses"] if int(x["id"]) < 10)
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert all(x["status"] == 200 for x in doc["responses"] if int(x["id"]) >= 10)
    t = [x for x in doc["responses"] if x["status"] == 429][0]
    assert t["headers"]["Retry-After"] == "1"
    assert t["body"]["error"] == {"code": "ApplicationThrottled", "message": "Application is over its "
                                  "MailboxConcurrency limit.", "innerError": t["body"]["error"]["innerError"]}
    # Sequenced with dependsOn they do not overlap.
    reqs = [cv(0)] + [cv(i, dependsOn=[str(i - 1)]) for i in range(1, 6)]
    st, doc = batch(g, reqs)
    assert all(x["status"] == 200 for x in doc["responses"])
    assert bsim.counters()["graph_429"]["MailboxConcurrency"] == 2


def test_concurrency_limit_across_requests(bsim):
    g = gc.Graph(bsim)
    bsim.control("POST", "/graph/faults", {"kind": "delay", "seconds": 8, "count": 4, "mailbox": A}, expect=201)
    out = []

    def slow():
        out.append(g.get("users/%s/calendarView?%s" % (A, WINDOW))[0])

    threads = [threading.Thread(target=slow) for _ in range(4)]
    for t in threads:
        t.start()
    wait_for_in_flight(bsim, 4)
    st, h, doc = g.get("users/%s/calendarView?%s" % (A, WINDOW))
    assert st == 429 and h["retry-after"] == "1" and doc["error"]["code"] == "ApplicationThrottled"
    assert g.get("users/%s/calendarView?%s" % (B, WINDOW))[0] == 200  # another mailbox has its own slots
    assert g.get("users/" + A)[0] == 200  # the directory is not a mailbox resource
    for t in threads:
        t.join(30)
    assert out == [200] * 4
    bsim.control("POST", "/graph/config", {"mailbox_concurrency": None}, expect=200)
    assert bsim.control("GET", "/graph", expect=200)[1]["limits"]["mailbox_concurrency"] is None


@pytest.mark.parametrize("kind, status, code", [("http_429", 429, "ApplicationThrottled"),
                                                ("http_503", 503, "ServiceUnavailable"),
                                                ("http_500", 500, "UnknownError")])
def test_forced_errors(bsim, kind, status, code):
    g = gc.Graph(bsim)
    bsim.control("POST", "/graph/faults", {"kind": kind, "count": 2, "retry_after": 7, "mailbox": A,
                                           "operation": "calendarView"}, expect=201)
    assert g.get("users/%s/calendarView/delta?%s" % (A, WINDOW))[0] == 200  # another operation
    assert g.get("users/%s/calendarView?%s" % (B, WINDOW))[0] == 200  # another mailbox
    for _ in range(2):
        st, h, doc = g.get("users/%s/calendarView?%s" % (A, WINDOW))
        assert st == status and h["retry-after"] == "7" and doc["error"]["code"] == code
    assert g.get("users/%s/calendarView?%s" % (A, WINDOW))[0] == 200
    assert bsim.control("GET", "/graph/faults", expect=200)[1]["faults"] == []
    assert bsim.counters()["graph_faults_injected"][kind] == 2


def test_forced_429_everywhere_and_inside_a_batch(bsim):
    g = gc.Graph(bsim)
    bsim.control("POST", "/graph/faults", {"kind": "http_429", "count": None, "code": "TooManyRequests",
                                           "message": "Too many requests"}, expect=201)
    st, h, doc = g.get("users/" + A)
    assert st == 429 and h["retry-after"] == "10" and doc["error"]["code"] == "TooManyRequests"
    st, doc = batch(g, [{"id": "1", "method": "GET", "url": "/users/" + B}])
    assert st == 429  # the $batch request itself
    bsim.control("DELETE", "/graph/faults", expect=200)
    bsim.control("POST", "/graph/faults", {"kind": "http_429", "count": 1, "operation": "users.get"}, expect=201)
    st, doc = batch(g, [{"id": "1", "method": "GET", "url": "/users/" + B}, {"id": "2", "method": "GET",
                                                                             "url": "/users/" + C}])
    got = sorted((x["status"], x["headers"].get("Retry-After")) for x in doc["responses"])
    assert got == [(200, None), (429, "10")]


def test_fault_validation(bsim):
    for bad in ({"kind": "nope"}, {"kind": "delay"}, {"kind": "http_429", "count": 0},
                {"kind": "http_429", "bogus": 1}, {"kind": "http_503", "retry_after": "soon"}):
        assert bsim.control("POST", "/graph/faults", bad)[0] == 400, bad
    f = bsim.control("POST", "/graph/faults", {"kind": "http_503"}, expect=201)[1]
    assert bsim.control("DELETE", "/graph/faults/%d" % f["id"], expect=200)[1] == {"cleared": 1}
    assert bsim.control("DELETE", "/graph/faults/%d" % f["id"])[0] == 404
