"""The EWS client's transport (src/ews/ews-transport.c) and its request writer, response
reader and stream framer, end to end against ews-sim through tests/ews/ews-try: every
operation over HTTP and HTTPS with Basic and NTLM, TLS verification, NTLM keep-alive,
bearer tokens, affinity cookies, request ids, the response size limit, incremental
streaming, an HTTP proxy and timeouts."""

import datetime
import select
import socket
import subprocess
import threading
import time

import pytest

from ewstry import EwsTry
from simharness import wait_for

MBX = "user00001@contoso.example"
MBX2 = "user00002@contoso.example"

def sim_now(sim):
    now = sim.control("GET", "/clock", expect=200)[1]["now"]
    return datetime.datetime.fromisoformat(now.replace("Z", "+00:00"))


def iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def window(sim, back_days=7, ahead_days=14):
    now = sim_now(sim)
    return iso(now - datetime.timedelta(days=back_days)), iso(now + datetime.timedelta(days=ahead_days))


def ntlm_handshakes(sim):
    return sim.output().count("auth: NTLM ok")


def http_401s(sim):
    return sim.counters().get("rejections", {}).get("http_401", 0)


def create_item(sim, mailbox, subject):
    start = sim_now(sim) + datetime.timedelta(hours=2)
    body = {"subject": subject, "start": iso(start), "end": iso(start + datetime.timedelta(hours=1))}
    return sim.control("POST", "/mailboxes/%s/items" % mailbox, body, expect=201)[1]


def backend_of(sim, mailbox):
    return sim.control("GET", "/mailboxes/%s" % mailbox, expect=200)[1]["backend"]


# -- simulators shared by this module -----------------------------------------------------------

@pytest.fixture(scope="module")
def http_sim(module_sims):
    # --time-scale 60: ConnectionTimeout 1 minute closes a stream after one real second.
    return module_sims("--time-scale", "60", "--log-level", "info")


@pytest.fixture(scope="module")
def https_sim(module_sims, certs):
    return module_sims("--time-scale", "60", "--log-level", "info", "--tls-cert", certs["cert"], "--tls-key", certs["key"])


@pytest.fixture(params=["http-basic", "http-ntlm", "https-basic", "https-ntlm"])
def client(request, ews_try_bin, certs):
    scheme, auth = request.param.split("-")
    if scheme == "https":
        sim = request.getfixturevalue("https_sim")
        assert sim.ews.startswith("https://")
        return EwsTry(ews_try_bin, sim, auth=auth, cacert=certs["ca"])
    return EwsTry(ews_try_bin, request.getfixturevalue("http_sim"), auth=auth)


def first_message(r, i=0):
    msgs = r.messages(i)
    assert msgs, r
    return msgs[0]


# -- every operation ----------------------------------------------------------------------------

def test_every_operation(client):
    sim = client.sim
    imp = ["--impersonate", MBX]
    start, end = window(sim)

    r = client.ok(*imp, "get-folder")
    line = r.line
    assert line["http"] == 200 and line["rc"] == 0
    assert line["response"]["operation"] == "GetFolder"
    m = first_message(r)
    assert m["class"] == "Success" and m["code"] == "NoError" and m["folder_id"]
    assert "commit_time" in m and m["deleted_count_total"] >= 0

    r = client.ok(*imp, "find-calendar", start, end)
    m = first_message(r)
    assert r.line["response"]["operation"] == "FindItem"
    assert m["code"] == "NoError" and m["items"] > 0 and len(m["item_ids"]) == m["items"]
    ids = m["item_ids"][:2]

    r = client.ok(*imp, "get-item", *ids)
    msgs = r.messages()
    assert r.line["response"]["operation"] == "GetItem"
    assert [x["code"] for x in msgs] == ["NoError", "NoError"]
    assert [x["item_ids"] for x in msgs] == [[ids[0]], [ids[1]]]

    r = client.ok(*imp, "sync")
    m = first_message(r)
    assert r.line["response"]["operation"] == "SyncFolderItems"
    assert m["code"] == "NoError" and m["sync_state"] and len(m["changes"]) > 0
    assert {c["type"] for c in m["changes"]} == {"Create"}
    state = m["sync_state"]
    while not m["includes_last"]:
        r = client.ok(*imp, "sync", state)
        m = first_message(r)
        state = m["sync_state"]
    r = client.ok(*imp, "sync", state)
    m = first_message(r)
    assert m["code"] == "NoError" and m["changes"] == [] and m["includes_last"] is True

    r = client.ok(*imp, "availability", MBX, MBX2, start, iso(sim_now(sim) + datetime.timedelta(days=2)))
    msgs = r.messages()
    assert r.line["response"]["operation"] == "GetUserAvailability"
    assert [x["code"] for x in msgs] == ["NoError", "NoError"]
    assert all(x["free_busy"]["merged"] for x in msgs)

    ad_url = sim.info["autodiscover"]
    r = client.ok("user-settings", MBX, "nobody@contoso.example", url=ad_url)
    users = r.line["response"]["users"]
    assert r.line["response"]["operation"] == "GetUserSettings"
    assert users[0]["error_code"] == "NoError"
    assert users[0]["internal_ews_url"].lower().endswith("/ews/exchange.asmx")
    assert users[0]["internal_ews_url"].startswith(sim.ews.split(":")[0])
    assert users[0]["grouping_information"]
    assert users[1]["error_code"] == "InvalidUser"

    # Pull notifications: Subscribe, GetEvents (a StatusEvent, then our own change), Unsubscribe.
    r = client.ok(*imp, "subscribe-pull")
    m = first_message(r)
    assert r.line["response"]["operation"] == "Subscribe" and m["code"] == "NoError"
    sub, wm = m["subscription_id"], m["watermark"]
    assert sub and wm
    r = client.ok(*imp, "get-events", sub, wm)
    m = first_message(r)
    assert r.line["response"]["operation"] == "GetEvents" and m["code"] == "NoError"
    events = m["notifications"][0]["events"]
    assert [e["type"] for e in events] == ["Status"]
    item = create_item(sim, MBX, "pull test")
    r = client.ok(*imp, "get-events", sub, events[-1]["watermark"])
    types = [e["type"] for e in first_message(r)["notifications"][0]["events"]]
    assert "Created" in types, types
    created = [e for e in first_message(r)["notifications"][0]["events"] if e["type"] == "Created"][0]
    assert created["item_id"] == item["id"]
    r = client.ok(*imp, "unsubscribe", sub)
    assert r.line["response"]["operation"] == "Unsubscribe"
    assert first_message(r)["code"] == "NoError"
    r = client.ok(*imp, "unsubscribe", sub)
    assert first_message(r)["code"] == "ErrorSubscriptionNotFound"

    # Streaming: Subscribe, then GetStreamingEvents until Closed at ConnectionTimeout (1 minute
    # of sim time, one real second at --time-scale 60).
    r = client.ok(*imp, "subscribe-stream")
    sub = first_message(r)["subscription_id"]
    assert sub
    r = client.ok(*imp, "stream", sub, "--timeout-min", "1")
    envelopes, done = r.lines[:-1], r.lines[-1]
    assert done["done"] is True and done["rc"] == 0 and done["http"] == 200
    assert done["envelopes"] == len(envelopes) >= 2
    statuses = [first_message(Result1(e))["connection_status"] for e in envelopes]
    assert statuses[0] == "OK" and statuses[-1] == "Closed", statuses
    assert all(e["response"]["operation"] == "GetStreamingEvents" for e in envelopes)
    assert [e["offset"] for e in envelopes] == sorted(e["offset"] for e in envelopes)


class Result1:
    """Adapts one parsed JSON line to first_message()."""

    def __init__(self, line):
        self.line = line

    def messages(self, i=0):
        return self.line["response"]["messages"]


def test_raw_file_and_soap_fault(ews_try_bin, http_sim, tmp_path):
    c = EwsTry(ews_try_bin, http_sim)
    good = tmp_path / "getfolder.xml"
    good.write_text(
        '<?xml version="1.0" encoding="utf-8"?>'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
        'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
        '<s:Header><t:RequestServerVersion Version="Exchange2013_SP1"/>'
        '<t:ExchangeImpersonation><t:ConnectingSID><t:SmtpAddress>%s</t:SmtpAddress></t:ConnectingSID>'
        '</t:ExchangeImpersonation></s:Header><s:Body><m:GetFolder><m:FolderShape>'
        '<t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>'
        '<t:DistinguishedFolderId Id="calendar"/></m:FolderIds></m:GetFolder></s:Body></s:Envelope>' % MBX)
    r = c.ok("raw", good)
    assert first_message(r)["code"] == "NoError"

    bad = tmp_path / "bad.xml"
    bad.write_text(good.read_text().replace("IdOnly", "NoSuchShape"))
    r = c.run("raw", bad)
    assert r.rc == 1
    assert r.line["rc"] == 0 and r.line["http"] == 500  # a SOAP fault is an EWS answer
    assert r.line["response"]["fault"]["code"] == "ErrorSchemaValidation"


def test_impersonation_id_types_and_password_file(ews_try_bin, http_sim, tmp_path):
    c = EwsTry(ews_try_bin, http_sim)
    r = c.ok("--id-type", "principal", "--impersonate", "user00001@ad.contoso.example", "get-folder")
    assert first_message(r)["code"] == "NoError"
    r = c.ok("--id-type", "smtp", "--impersonate", "user00001.alias@contoso.example", "get-folder")
    assert first_message(r)["code"] == "NoError"
    r = c.run("--id-type", "primary", "--impersonate", "user00001.alias@contoso.example", "get-folder")
    assert r.rc == 1 and r.line["http"] == 500
    assert r.line["response"]["fault"]["code"] == "ErrorNonPrimarySmtpAddress"

    # The password from a file (a trailing newline is not part of it), for NTLM too.
    pw = tmp_path / "pw"
    pw.write_text("Passw0rd!\n")
    for auth, user in (("basic", "svc@contoso.example"), ("ntlm", "CONTOSO\\svc")):
        argv = [ews_try_bin, "--url", http_sim.ews, "--auth", auth, "--user", user, "--password-file", str(pw),
                "--impersonate", MBX, "get-folder"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=c.env())
        assert p.returncode == 0, (p.stdout, p.stderr)
    # A missing variable is a usage error, and nothing is sent.
    p = subprocess.run([ews_try_bin, "--url", http_sim.ews, "--user", "u", "--password-env", "NO_SUCH_VAR_X",
                        "get-folder"], capture_output=True, text=True, timeout=60, env=c.env())
    assert p.returncode == 2 and "NO_SUCH_VAR_X" in p.stderr


# -- TLS ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    d = tmp_path_factory.mktemp("other-ca")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                    "-days", "2", "-subj", "/CN=some other CA"], cwd=d, check=True, capture_output=True)
    return str(d / "ca.pem")


def test_tls_verification(ews_try_bin, https_sim, certs, other_ca):
    c = EwsTry(ews_try_bin, https_sim)
    r = c.ok("--impersonate", MBX, "get-folder", cacert=certs["ca"])
    assert r.line["http"] == 200

    for ca in (None, other_ca):
        r = c.run("--impersonate", MBX, "get-folder", cacert=ca or "")
        assert r.rc == 1, r
        line = r.line
        assert line["errno"] == "EKEYREJECTED" and line["http"] == 0, line
        assert "TLS certificate not trusted" in line["error"]
        assert "certificate" in line["error"].split(": ", 2)[-1]  # libcurl's own reason follows

    r = c.run("get-folder", cacert="/nonexistent/ca.pem")
    assert r.rc == 1 and r.line["errno"] == "ENOENT" and "CA file" in r.line["error"], r

    # The loud opt-out works, and plain HTTP to the TLS port is not an EWS answer.
    r = c.ok("--insecure", "--impersonate", MBX, "get-folder")
    assert r.line["http"] == 200
    r = c.run("get-folder", url=https_sim.ews.replace("https://", "http://"))
    assert r.rc == 1 and r.line["rc"] < 0, r


# -- authentication -----------------------------------------------------------------------------

def test_ntlm_keeps_its_connection(ews_try_bin, http_sim):
    c = EwsTry(ews_try_bin, http_sim, auth="ntlm")
    before, before_401 = ntlm_handshakes(http_sim), http_401s(http_sim)
    r = c.ok("--impersonate", MBX, "repeat", "5", "get-folder")
    assert [x["n"] for x in r.lines] == [0, 1, 2, 3, 4]
    assert all(x["http"] == 200 for x in r.lines)
    assert [x["new_connections"] for x in r.lines] == [1, 0, 0, 0, 0]
    # One handshake for five requests: one 401 challenge, one NTLM authentication.
    wait_for(lambda: ntlm_handshakes(http_sim) - before == 1, what="one NTLM handshake in the sim's log")
    assert http_401s(http_sim) - before_401 == 1
    # A second process is a new connection and a new handshake.
    c.ok("--impersonate", MBX, "get-folder")
    wait_for(lambda: ntlm_handshakes(http_sim) - before == 2, what="a second NTLM handshake")


def test_negotiate_falls_back_to_ntlm(ews_try_bin, http_sim):
    # No Kerberos ticket here: GSS-API cannot make a token, the transport retries with NTLM and
    # keeps using it, still one handshake per connection.
    c = EwsTry(ews_try_bin, http_sim, auth="negotiate")
    before = ntlm_handshakes(http_sim)
    r = c.ok("--impersonate", MBX, "repeat", "3", "get-folder", env={"KRB5CCNAME": "FILE:/nonexistent/ccache"})
    assert [x["http"] for x in r.lines] == [200, 200, 200]
    assert [x["new_connections"] for x in r.lines] == [1, 0, 0]
    wait_for(lambda: ntlm_handshakes(http_sim) - before == 1, what="one NTLM handshake")


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_wrong_password_is_a_clear_401(ews_try_bin, http_sim, auth):
    c = EwsTry(ews_try_bin, http_sim, auth=auth)
    secret = "Wr0ng-S3cret!"
    r = c.run("--impersonate", MBX, "get-folder", env={"EWS_TRY_PASSWORD": secret})
    assert r.rc == 1
    line = r.line
    assert line["http"] == 401 and line["errno"] == "EACCES"
    assert "HTTP 401" in line["error"] and "authentication (%s) failed" % auth in line["error"]
    assert "password" in line["error"]
    # The credential never shows up, in the output or in the debug log.
    r = c.run("--debug", "--impersonate", MBX, "get-folder", env={"EWS_TRY_PASSWORD": secret})
    assert secret not in r.out and secret not in r.err
    assert "debug: ews: POST to" in r.err


def test_bearer_token(ews_try_bin, sim_factory):
    token = "eyJ0eXAiOiJKV1QifQ.test-token.sig"
    s = sim_factory("--bearer-token", token)
    c = EwsTry(ews_try_bin, s, auth="bearer")
    r = c.ok("--token-env", "TOK", "--impersonate", MBX, "get-folder", env={"TOK": token})
    assert r.line["http"] == 200 and first_message(r)["code"] == "NoError"
    r = c.run("--debug", "--token-env", "TOK", "--impersonate", MBX, "get-folder", env={"TOK": token + "x"})
    assert r.rc == 1 and r.line["http"] == 401 and r.line["errno"] == "EACCES"
    assert "bearer token" in r.line["error"]
    assert token not in r.out and token not in r.err


# -- headers: affinity, request ids -------------------------------------------------------------

def test_affinity_cookie_routes_to_the_anchor_backend(ews_try_bin, http_sim):
    c = EwsTry(ews_try_bin, http_sim, auth="ntlm")
    anchor_be = backend_of(http_sim, MBX)
    other = next(m for m in ("user%05d@contoso.example" % i for i in range(2, 11)) if backend_of(http_sim, m) != anchor_be)
    other_be = backend_of(http_sim, other)

    # The anchor's Subscribe with X-AnchorMailbox + X-PreferServerAffinity gets the cookie.
    r = c.ok("--impersonate", MBX, "--anchor", MBX, "--prefer-affinity", "subscribe-stream")
    cookie = r.line["cookie"]
    assert cookie and "~" in cookie
    assert r.line["be_server"] == anchor_be
    backends = http_sim.control("GET", "/backends", expect=200)[1]
    assert cookie == next(b["cookie"] for b in backends if b["name"] == anchor_be)

    # A mailbox on the other backend: routed by itself (or its own anchor) it reaches its own
    # backend; with the cookie replayed the cookie wins over X-AnchorMailbox, and the anchor's
    # backend answers (X-BEServer), setting no new cookie.
    r = c.ok("--impersonate", other, "get-folder")
    assert r.line["be_server"] == other_be
    r = c.ok("--impersonate", other, "--anchor", other, "--prefer-affinity", "--cookie", cookie, "get-folder")
    assert r.line["be_server"] == anchor_be
    assert "cookie" not in r.line

    # --replay-cookie: the cookie the first call got is sent on the next ones.
    r = c.ok("--impersonate", MBX, "--anchor", MBX, "--prefer-affinity", "--replay-cookie",
             "repeat", "2", "subscribe-pull")
    assert r.lines[0]["cookie"] == cookie and "cookie" not in r.lines[1]
    assert [x["be_server"] for x in r.lines] == [anchor_be, anchor_be]

    # A cookie value that could smuggle a header is refused before anything is sent.
    r = c.run("--impersonate", MBX, "--cookie", "a;b", "get-folder")
    assert r.rc == 1 and "X-BackEndOverrideCookie" in r.line["error"], r


def test_client_request_id_is_echoed(ews_try_bin, http_sim):
    c = EwsTry(ews_try_bin, http_sim)
    r = c.ok("--client-request-id", "calsync-test-0042", "--impersonate", MBX, "get-folder")
    assert r.line["client_request_id"] == "calsync-test-0042"
    assert r.line["echoed_request_id"] == "calsync-test-0042"
    assert r.line["request_id"]
    r = c.ok("--impersonate", MBX, "repeat", "2", "get-folder")
    ids = [x["client_request_id"] for x in r.lines]
    assert ids[0] != ids[1]
    for x in r.lines:
        assert x["echoed_request_id"] == x["client_request_id"]
        assert len(x["client_request_id"]) == 36 and x["client_request_id"][14] == "4"  # a UUIDv4


# -- limits and failures ------------------------------------------------------------------------

def test_response_over_the_size_limit_is_aborted(ews_try_bin, http_sim):
    c = EwsTry(ews_try_bin, http_sim)
    start, end = window(http_sim)
    r = c.ok("--impersonate", MBX, "find-calendar", start, end)
    size = r.line["bytes"]
    assert size > 4000
    r = c.run("--max-response", "4000", "--impersonate", MBX, "find-calendar", start, end)
    assert r.rc == 1
    assert r.line["errno"] == "EMSGSIZE" and "4000 bytes" in r.line["error"], r.line
    assert r.line["bytes"] <= 4000
    # The limit is not off by one.
    r = c.ok("--max-response", str(size), "--impersonate", MBX, "find-calendar", start, end)
    assert r.line["bytes"] == size


def test_http_errors_are_explained(ews_try_bin, http_sim):
    c = EwsTry(ews_try_bin, http_sim)
    http_sim.control("POST", "/faults", {"kind": "http_503", "operation": "GetFolder"}, expect=201)
    r = c.run("--impersonate", MBX, "get-folder")
    assert r.line["http"] == 503 and r.line["errno"] == "EAGAIN" and "back off" in r.line["error"]
    http_sim.control("POST", "/faults", {"kind": "http_500", "operation": "GetFolder"}, expect=201)
    r = c.run("--impersonate", MBX, "get-folder")
    assert r.line["http"] == 500 and r.line["errno"] == "EIO" and "without a SOAP body" in r.line["error"]
    http_sim.control("POST", "/faults", {"kind": "ews_fault", "code": "ErrorServerBusy", "back_off_ms": 2500,
                                         "operation": "GetFolder"}, expect=201)
    r = c.run("--impersonate", MBX, "get-folder")
    assert r.line["http"] == 500 and r.line["rc"] == 0
    assert r.line["response"]["fault"]["code"] == "ErrorServerBusy"
    assert r.line["response"]["fault"]["back_off_ms"] == 2500
    r = c.run("--impersonate", MBX, "get-folder", url=http_sim.ews.replace("/EWS/Exchange.asmx", "/EWS/nothing"))
    assert r.line["errno"] in ("EPROTO", "EACCES") and r.line["http"] in (404, 401), r.line
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    closed = port.getsockname()[1]
    port.close()
    r = c.run("get-folder", url="http://127.0.0.1:%d/EWS/Exchange.asmx" % closed)
    assert r.line["errno"] == "ECONNREFUSED" and "cannot connect" in r.line["error"]


def test_server_that_stops_answering_hits_the_timeout(ews_try_bin, http_sim):
    c = EwsTry(ews_try_bin, http_sim)
    # 600 sim seconds = 10 real seconds at --time-scale 60; the call gives up after 1.5 s.
    http_sim.control("POST", "/faults", {"kind": "delay", "seconds": 600, "operation": "GetFolder"}, expect=201)
    t0 = time.monotonic()
    r = c.run("--timeout-ms", "1500", "--impersonate", MBX, "get-folder")
    assert r.rc == 1 and r.line["errno"] == "ETIMEDOUT", r
    assert "no complete answer within 1500 ms" in r.line["error"]
    assert 1.4 < time.monotonic() - t0 < 8


def test_a_call_waiting_for_a_connection_times_out(ews_try_bin, http_sim):
    # One connection allowed, two calls: the second waits for the first's connection, which a
    # delayed answer holds past both calls' timeout. Each fails with its own reason.
    c = EwsTry(ews_try_bin, http_sim)
    http_sim.control("POST", "/faults", {"kind": "delay", "seconds": 600, "operation": "GetFolder"}, expect=201)
    t0 = time.monotonic()
    r = c.run("--max-connections", "1", "--concurrency", "2", "--timeout-ms", "1500", "--impersonate", MBX,
              "repeat", "2", "get-folder")
    assert r.rc == 1 and len(r.lines) == 2, r
    errors = sorted(x["error"] for x in r.lines)
    assert all(x["errno"] == "ETIMEDOUT" for x in r.lines), r.lines
    assert "no complete answer within 1500 ms" in errors[0], errors
    assert "no connection free within 1500 ms (at most 1 to a host, 1 in all, all busy)" in errors[1], errors
    assert [x["new_connections"] for x in r.lines if "no connection free" in x["error"]] == [0]
    assert time.monotonic() - t0 < 8


def test_half_open_stream_hits_the_idle_watchdog(ews_try_bin, http_sim):
    c = EwsTry(ews_try_bin, http_sim)
    sub = first_message(c.ok("--impersonate", MBX, "subscribe-stream"))["subscription_id"]
    http_sim.control("POST", "/faults", {"kind": "stream_half_open"}, expect=201)
    t0 = time.monotonic()
    r = c.run("--idle-timeout-ms", "1000", "--impersonate", MBX, "stream", sub, "--timeout-min", "30")
    elapsed = time.monotonic() - t0
    assert r.rc == 1
    done = r.lines[-1]
    assert done["errno"] == "ETIMEDOUT" and "stream idle" in done["error"], done
    assert done["http"] == 200 and done["envelopes"] == 0
    # The idle check runs once a second, so it fires up to a second late; a 30-minute
    # ConnectionTimeout (30 real seconds here) was not what ended it.
    assert 1 <= elapsed < 20


# -- streaming ----------------------------------------------------------------------------------

def test_streaming_notification_arrives_while_streaming(ews_try_bin, sim_factory, stream_procs):
    # --time-scale 10: ConnectionTimeout 1 minute is six real seconds.
    s = sim_factory("--time-scale", "10")
    c = EwsTry(ews_try_bin, s, auth="ntlm")
    sub = first_message(c.ok("--impersonate", MBX, "--anchor", MBX, "--prefer-affinity", "subscribe-stream"))["subscription_id"]
    st = c.popen("--impersonate", MBX, "stream", sub, "--timeout-min", "1")
    stream_procs.append(st)
    first = st.next_line()
    assert first["envelope"] == 0 and first["_running"]
    assert Result1(first).messages()[0]["connection_status"] == "OK"

    item = create_item(s, MBX, "streaming test")
    notes = None
    while notes is None:
        line = st.next_line()
        assert "done" not in line, st.lines
        for m in Result1(line).messages():
            if m.get("notifications"):
                notes = m["notifications"]
    events = notes[0]["events"]
    assert notes[0]["subscription_id"] == sub
    assert any(e["type"] == "Created" and e["item_id"] == item["id"] for e in events), events
    assert all("watermark" not in e for e in events)  # streaming events carry none
    # The notification was read while the stream was still open.
    assert line["_running"]

    rc, err = st.wait(60)
    assert rc == 0, (st.lines, err)
    done = st.lines[-1]
    assert done["done"] is True and done["rc"] == 0
    last = st.lines[-2]
    assert Result1(last).messages()[-1]["connection_status"] == "Closed"
    assert line["t_ms"] < done["elapsed_ms"]


def test_stream_body_is_delivered_in_pieces(ews_try_bin, http_sim, stream_procs):
    c = EwsTry(ews_try_bin, http_sim)
    sub = first_message(c.ok("--impersonate", MBX, "subscribe-stream"))["subscription_id"]
    # Every write of the stream cut into 7-byte pieces, 2 ms apart.
    http_sim.control("POST", "/faults", {"kind": "stream_write", "split_every": 7, "pause_ms": 2, "count": None},
                     expect=201)
    try:
        st = c.popen("--impersonate", MBX, "stream", sub, "--timeout-min", "1")
        stream_procs.append(st)
        first = st.next_line()
        # The first envelope was framed and parsed while the body was still arriving.
        assert first["_running"] and first["chunk"] > 1
        rc, err = st.wait(60)
        assert rc == 0, (st.lines, err)
    finally:
        http_sim.control("DELETE", "/faults", expect=200)
    envelopes = [x for x in st.lines if "envelope" in x]
    done = st.lines[-1]
    assert done["rc"] == 0 and done["envelopes"] == len(envelopes) >= 2
    assert done["chunks"] > 5 * len(envelopes), done
    assert Result1(envelopes[-1]).messages()[-1]["connection_status"] == "Closed"
    assert [e["chunk"] for e in envelopes] == sorted(e["chunk"] for e in envelopes)
    assert envelopes[0]["chunk"] < done["chunks"]


def test_stream_cancelled_from_inside_its_callback(ews_try_bin, http_sim):
    c = EwsTry(ews_try_bin, http_sim)
    sub = first_message(c.ok("--impersonate", MBX, "subscribe-stream"))["subscription_id"]
    gone = http_sim.counters().get("streams_closed", {}).get("client_gone", 0)
    r = c.ok("--impersonate", MBX, "--max-envelopes", "1", "stream", sub, "--timeout-min", "30")
    assert len(r.lines) == 2 and r.lines[1]["cancelled"] is True
    # The cancel closed the connection: the sim sees the client go.
    wait_for(lambda: http_sim.counters().get("streams_closed", {}).get("client_gone", 0) > gone,
             what="the sim to see the stream's client go")


# -- proxy --------------------------------------------------------------------------------------

class ConnectProxy:
    """A tiny HTTP proxy that only does CONNECT tunnels (the transport always tunnels), counting
    the tunnels it opened."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.tunnels = []
        self.lock = threading.Lock()
        self.stopping = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        upstream = None
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            request_line = head.split(b"\r\n", 1)[0].decode()
            method, target, _ = request_line.split(" ", 2)
            if method != "CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)), timeout=30)
            with self.lock:
                self.tunnels.append(target)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                upstream.sendall(rest)
            socks = [conn, upstream]
            while True:
                readable, _, _ = select.select(socks, [], [], 60)
                if not readable:
                    return
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is conn else conn).sendall(data)
        except OSError:
            return
        finally:
            conn.close()
            if upstream is not None:
                upstream.close()

    def stop(self):
        self.stopping = True
        self.sock.close()


@pytest.fixture
def proxy():
    p = ConnectProxy()
    yield p
    p.stop()


def test_proxy(ews_try_bin, http_sim, https_sim, certs, proxy):
    c = EwsTry(ews_try_bin, http_sim, auth="ntlm")
    before = ntlm_handshakes(http_sim)
    r = c.ok("--proxy", proxy.url, "--impersonate", MBX, "repeat", "3", "get-folder")
    assert [x["http"] for x in r.lines] == [200, 200, 200]
    # One tunnel carried all three requests and one NTLM handshake.
    assert proxy.tunnels == ["127.0.0.1:%d" % http_sim.port]
    wait_for(lambda: ntlm_handshakes(http_sim) - before == 1, what="one NTLM handshake")

    t = EwsTry(ews_try_bin, https_sim, auth="basic", cacert=certs["ca"])
    r = t.ok("--proxy", proxy.url, "--impersonate", MBX, "get-folder")
    assert r.line["http"] == 200
    assert proxy.tunnels[-1] == "127.0.0.1:%d" % https_sim.port and len(proxy.tunnels) == 2

    # Without --proxy nothing goes through it, whatever the environment says.
    r = c.ok("--impersonate", MBX, "get-folder", env={"http_proxy": proxy.url, "HTTPS_PROXY": proxy.url})
    assert len(proxy.tunnels) == 2

    # A dead proxy is reported as such.
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    dead = port.getsockname()[1]
    port.close()
    r = c.run("--proxy", "http://127.0.0.1:%d" % dead, "get-folder")
    assert r.line["errno"] == "ECONNREFUSED" and "through the proxy" in r.line["error"], r.line
