"""Graph subscriptions: the validation handshake, change notifications from calendar
changes, renewal, expiry on the sim clock, retries with back-off, dropped and delayed
notifications, lifecycle notifications, and HTTPS notification endpoints."""

import pytest

import graphclient as gc
from graphclient import A, B, ONPREM, Receiver, wait_for

CHANGES = "created,updated,deleted"


@pytest.fixture
def rx():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def ssim(sim_factory):
    return gc.graph_sim(sim_factory, "--graph-notify-allow-http", "--time-scale", "60")


def subscribe(g, rx, mailbox=A, minutes=60, **kw):
    body = {"changeType": CHANGES, "notificationUrl": rx.url(), "resource": "users/%s/events" % mailbox,
            "expirationDateTime": gc.iso_in(minutes * 60, gc.sim_now(g.sim)), "clientState": "secret-state"}
    body.update(kw)
    return g.call("POST", "subscriptions", body=body)


def subscribed(g, rx, **kw):
    st, _, doc = subscribe(g, rx, **kw)
    assert st == 201, doc
    return doc


def test_create_validates_the_endpoint(ssim, rx):
    g = gc.Graph(ssim)
    doc = subscribed(g, rx, lifecycleNotificationUrl=rx.url("/lifecycle"))
    assert [v["path"].split("?")[0] for v in rx.validations] == ["/notify", "/lifecycle"]
    v = rx.validations[0]
    assert v["token"].startswith("Validation: Testing client application reachability for subscription Request-Id: ")
    assert v["content_type"].startswith("text/plain")
    assert doc["resource"] == "users/%s/events" % A and doc["changeType"] == CHANGES
    assert doc["clientState"] == "secret-state" and doc["applicationId"] == ssim.info["client_id"]
    assert doc["notificationUrl"] == rx.url() and doc["lifecycleNotificationUrl"] == rx.url("/lifecycle")
    assert doc["expirationDateTime"].endswith("Z") and len(doc["id"]) == 36
    assert g.ok("subscriptions/" + doc["id"])["id"] == doc["id"]
    assert [s["id"] for s in g.ok("subscriptions")["value"]] == [doc["id"]]
    assert ssim.counters()["graph_validations"] == {"sent": 2, "ok": 2}


@pytest.mark.parametrize("mode, code, text", [
    ("wrong", "ValidationError", "Response must exactly match validationToken query parameter."),
    ("plain-json", "ValidationError", "Response must exactly match validationToken query parameter."),
    ("status", "ValidationError", "Notification endpoint must respond with 200 OK to validation request."),
])
def test_failed_validation(ssim, rx, mode, code, text):
    rx.mode = mode
    st, _, doc = subscribe(gc.Graph(ssim), rx)
    assert st == 400 and doc["error"]["code"] == code and doc["error"]["message"].endswith(text), doc
    assert ssim.control("GET", "/graph/subscriptions", expect=200)[1]["count"] == 0


def test_validation_timeout_and_unreachable_endpoint(ssim, rx):
    g = gc.Graph(ssim)
    ssim.control("POST", "/graph/config", {"validation_timeout_seconds": 0.5}, expect=200)
    rx.mode, rx.slow_seconds = "slow", 2.0
    st, _, doc = subscribe(g, rx)
    assert st == 400 and doc["error"] ["message"] == "Subscription validation request timed out."
    st, _, doc = g.call("POST", "subscriptions", body={
        "changeType": "created", "notificationUrl": "http://127.0.0.1:%d/x" % gc.free_port(),
        "resource": "users/%s/events" % A, "expirationDateTime": gc.iso_in(3600, gc.sim_now(ssim))})
    assert st == 400 and doc["error"]["code"] == "ValidationError"


@pytest.mark.parametrize("change, status, code", [
    ({"changeType": "created,moved"}, 400, "InvalidRequest"),
    ({"notificationUrl": "ftp://x/y"}, 400, "InvalidRequest"),
    ({"clientState": "x" * 129}, 400, "InvalidRequest"),
    ({"resource": "me/events"}, 400, "ExtensionError"),
    ({"resource": "users/%s/messages" % A}, 400, "InvalidRequest"),
    ({"resource": "users/nobody@contoso.example/events"}, 404, "ExtensionError"),
    ({"resource": "users/%s/events" % ONPREM}, 404, "ExtensionError"),
    ({"includeResourceData": True}, 400, "InvalidRequest"),
])
def test_create_errors(ssim, rx, change, status, code):
    st, _, doc = subscribe(gc.Graph(ssim), rx, **change)
    assert st == status and doc["error"]["code"] == code, doc
    assert rx.validations == []  # refused before the handshake


def test_resource_forms(ssim, rx):
    g = gc.Graph(ssim)
    uid = g.ok("users/" + A)["id"]
    for res in ("/users/%s/events" % A, "Users/%s/Events" % uid, "users/%s/calendar/events" % A):
        assert subscribe(g, rx, resource=res)[0] == 201, res


def test_expiration_limits(ssim, rx):
    g = gc.Graph(ssim)
    st, _, doc = subscribe(g, rx, minutes=10081)
    assert st == 400 and doc["error"] == {"code": "ExtensionError", "message": "Subscription expiration can only be "
                                          "10080 minutes in the future.", "innerError": doc["error"]["innerError"]}
    assert subscribe(g, rx, minutes=10079)[0] == 201
    now = gc.sim_now(ssim)
    doc = subscribed(g, rx, minutes=5)
    exp = gc.dt.datetime.fromisoformat(doc["expirationDateTime"].replace("Z", "+00:00")[:26] + "+00:00")
    assert 44 * 60 < (exp - now).total_seconds() < 46 * 60  # raised to 45 minutes
    st, _, doc = subscribe(g, rx, expirationDateTime=gc.iso_in(-60, now))
    assert st == 400


def test_change_notifications(ssim, rx):
    g = gc.Graph(ssim)
    sub = subscribed(g, rx)
    uid = g.ok("users/" + A)["id"]
    it = gc.create_item(ssim, A, subject="notify me")
    rid = gc.rest_id(it["id"])
    wait_for(lambda: len(rx.notifications()) >= 2, what="created and updated")
    ns = rx.notifications()
    assert [n["changeType"] for n in ns] == ["created", "updated"]
    n = ns[0]
    assert set(n) == {"subscriptionId", "subscriptionExpirationDateTime", "changeType", "resource", "resourceData",
                      "clientState", "tenantId"}
    assert n["subscriptionId"] == sub["id"] and n["clientState"] == "secret-state"
    assert n["tenantId"] == ssim.info["tenant_id"]
    assert n["resource"] == "Users/%s/Events/%s" % (uid, rid)
    assert n["resourceData"] == {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": n["resource"],
                                 "@odata.etag": 'W/"%s"' % it["change_key"], "id": rid}
    assert rx.posts[0]["headers"]["Content-Type"].startswith("application/json")
    ssim.control("PATCH", gc.item_path(A, it["id"]), {"subject": "changed"}, expect=200)
    wait_for(lambda: len(rx.notifications()) >= 3, what="updated")
    assert rx.notifications()[2]["changeType"] == "updated"
    ssim.control("DELETE", gc.item_path(A, it["id"]), expect=200)
    wait_for(lambda: len(rx.notifications()) >= 4, what="deleted")
    assert rx.notifications()[3]["changeType"] == "deleted" and rx.notifications()[3]["resourceData"]["id"] == rid
    # Changes of another mailbox do not reach this subscription.
    gc.create_item(ssim, B)
    assert g.get("users/%s/events/%s" % (A, rid))[0] == 404
    assert len(rx.notifications()) == 4
    c = ssim.counters()["graph_notifications"]
    assert c["sent"] == 4 and c["queued"] == 4


def test_change_type_filter_and_occurrence_edits(ssim, rx):
    g = gc.Graph(ssim)
    subscribed(g, rx, changeType="deleted", clientState=None)
    s = gc.create_item(ssim, A, recurrence={"pattern": "daily", "count": 3})
    ssim.control("DELETE", gc.item_path(A, s["id"]) + "/occurrences/2", expect=200)  # an update of the master
    ssim.control("DELETE", gc.item_path(A, s["id"]) + "?hard=1", expect=200)
    wait_for(lambda: rx.notifications(), what="deleted")
    (n,) = rx.notifications()
    assert n["changeType"] == "deleted" and "clientState" not in n
    assert n["resourceData"]["id"] == gc.rest_id(s["id"])


def test_renew_delete_and_expiry(ssim, rx):
    g = gc.Graph(ssim)
    sub = subscribed(g, rx, minutes=60)
    st, _, doc = g.call("PATCH", "subscriptions/" + sub["id"],
                        body={"expirationDateTime": gc.iso_in(3 * 3600, gc.sim_now(ssim))})
    assert st == 200 and doc["expirationDateTime"] > sub["expirationDateTime"]
    assert g.call("PATCH", "subscriptions/" + sub["id"], body={"resource": "x"})[0] == 400
    st, _, doc = g.call("PATCH", "subscriptions/" + sub["id"], body={"expirationDateTime": gc.iso_in(
        11000 * 60, gc.sim_now(ssim))})
    assert st == 400 and doc["error"]["code"] == "ExtensionError"
    other = subscribed(g, rx, minutes=60)
    assert g.call("DELETE", "subscriptions/" + other["id"])[0] == 204
    st, _, doc = g.get("subscriptions/" + other["id"])
    assert st == 404 and doc["error"]["code"] == "ResourceNotFound"
    assert g.call("DELETE", "subscriptions/" + other["id"])[0] == 404
    ssim.control("POST", "/clock", {"shift": 3 * 3600 + 1}, expect=200)
    assert g.get("subscriptions/" + sub["id"])[0] == 401  # the token expired too
    g = gc.Graph(ssim)
    assert g.get("subscriptions/" + sub["id"])[0] == 404
    gc.create_item(ssim, A)
    assert g.ok("subscriptions")["value"] == []
    c = ssim.counters()["graph_subscriptions"]
    assert c["created"] == 2 and c["renewed"] == 1 and c["deleted"] == 1 and c["expired"] == 1
    assert rx.notifications() == []


def test_retries_with_back_off(ssim, rx):
    g = gc.Graph(ssim)
    subscribed(g, rx)
    rx.fail_next = 2
    gc.create_item(ssim, A)
    # 10 s then 20 s of sim time at --time-scale 60: delivered on the third attempt.
    wait_for(lambda: rx.notifications(), what="the retried notifications")
    assert rx.attempts == 3
    assert [n["changeType"] for n in rx.notifications()] == ["created", "updated"]
    c = ssim.counters()["graph_notifications"]
    assert c["retries"] == 2 and c["failed"] == 4 and c["sent"] == 2


def test_endpoint_down_until_given_up_then_missed(ssim, rx):
    g = gc.Graph(ssim)
    life = Receiver()
    try:
        subscribed(g, rx, lifecycleNotificationUrl=life.url("/life"))
        ssim.control("POST", "/graph/config", {"retry_give_up_seconds": 60, "retry_initial_seconds": 20}, expect=200)
        rx.fail_next = 1000
        gc.create_item(ssim, A)
        wait_for(lambda: ssim.counters()["graph_notifications"].get("given_up"), what="giving up")
        wait_for(lambda: life.notifications(), what="the missed lifecycle notification")
        (n,) = life.notifications()
        assert n["lifecycleEvent"] == "missed" and n["clientState"] == "secret-state"
        assert rx.notifications() == []
    finally:
        life.stop()


def test_dropped_and_delayed_notifications(ssim, rx):
    g = gc.Graph(ssim)
    subscribed(g, rx)
    ssim.control("POST", "/graph/faults", {"kind": "notify_drop", "count": 1}, expect=201)
    gc.create_item(ssim, A, subject="dropped")
    wait_for(lambda: ssim.counters()["graph_notifications"].get("dropped_fault") == 2, what="the drop")
    ssim.control("POST", "/graph/faults", {"kind": "notify_delay", "seconds": 120, "count": 1}, expect=201)
    t0 = gc.time.monotonic()
    gc.create_item(ssim, A, subject="late")
    wait_for(lambda: rx.notifications(), what="the delayed notifications")
    assert gc.time.monotonic() - t0 >= 1.5  # 120 sim seconds at --time-scale 60
    assert len(rx.notifications()) == 2


def test_lifecycle_notifications(ssim, rx):
    g = gc.Graph(ssim)
    life = Receiver()
    try:
        sub = subscribed(g, rx, lifecycleNotificationUrl=life.url("/life"))
        ssim.control("POST", "/graph/subscriptions/%s/lifecycle" % sub["id"],
                     {"event": "reauthorizationRequired"}, expect=200)
        wait_for(lambda: life.notifications(), what="reauthorizationRequired")
        n = life.notifications()[0]
        assert set(n) == {"subscriptionId", "subscriptionExpirationDateTime", "tenantId", "clientState",
                          "lifecycleEvent"}
        assert n["lifecycleEvent"] == "reauthorizationRequired" and n["subscriptionId"] == sub["id"]
        assert ssim.control("GET", "/graph/subscriptions/" + sub["id"], expect=200)[1]["needs_reauth"] is True
        assert g.call("POST", "subscriptions/%s/reauthorize" % sub["id"])[0] == 204
        assert ssim.control("GET", "/graph/subscriptions/" + sub["id"], expect=200)[1]["needs_reauth"] is False
        # Not reauthorized within the deadline: removed.
        ssim.control("POST", "/graph/subscriptions/%s/lifecycle" % sub["id"],
                     {"event": "reauthorizationRequired", "deadline_seconds": 60}, expect=200)
        ssim.control("POST", "/clock", {"shift": 61}, expect=200)
        wait_for(lambda: [x["lifecycleEvent"] for x in life.notifications()] ==
                 ["reauthorizationRequired", "reauthorizationRequired", "subscriptionRemoved"], what="removal")
        assert g.get("subscriptions/" + sub["id"])[0] == 404
        sub2 = subscribed(g, rx, lifecycleNotificationUrl=life.url("/life"))
        ssim.control("POST", "/graph/subscriptions/%s/lifecycle" % sub2["id"], {"event": "missed"}, expect=200)
        ssim.control("POST", "/graph/subscriptions/%s/lifecycle" % sub2["id"], {"event": "subscriptionRemoved"},
                     expect=200)
        wait_for(lambda: len(life.notifications()) == 5, what="missed and subscriptionRemoved")
        assert [x["lifecycleEvent"] for x in life.notifications()[3:]] == ["missed", "subscriptionRemoved"]
        assert g.get("subscriptions/" + sub2["id"])[0] == 404
        assert ssim.control("POST", "/graph/subscriptions/%s/lifecycle" % sub2["id"], {"event": "missed"})[0] == 404
        assert ssim.counters()["graph_lifecycle_notifications"]["reauthorizationRequired"] == 2
    finally:
        life.stop()


def test_http_endpoints_need_the_option(sim_factory, rx):
    s = gc.graph_sim(sim_factory)
    st, _, doc = subscribe(gc.Graph(s), rx)
    assert st == 400 and "https" in doc["error"]["message"]


def test_https_endpoint_verified_with_the_ca_option(sim_factory, certs):
    rx = Receiver(certs["cert"], certs["key"])
    try:
        plain = gc.graph_sim(sim_factory)
        st, _, doc = subscribe(gc.Graph(plain), rx)
        assert st == 400 and doc["error"]["code"] == "ValidationError"  # the test CA is not trusted
        trusted = gc.graph_sim(sim_factory, "--graph-notify-ca", certs["ca"])
        g = gc.Graph(trusted)
        subscribed(g, rx)
        gc.create_item(trusted, A)
        wait_for(lambda: len(rx.notifications()) == 2, what="notifications over https")
        insecure = gc.graph_sim(sim_factory, "--graph-notify-insecure")
        subscribed(gc.Graph(insecure), rx, resource="users/%s/events" % B)
    finally:
        rx.stop()


def test_clean_shutdown_with_live_subscriptions(ssim, rx):
    g = gc.Graph(ssim)
    subscribed(g, rx)
    rx.fail_next = 100  # a delivery task is retrying when the simulator stops
    gc.create_item(ssim, A)
    wait_for(lambda: ssim.counters()["graph_notifications"].get("retries"), what="a retry")
    ssim.proc.terminate()
    assert ssim.proc.wait(20) == 0
    assert "Traceback" not in ssim.output()
