"""The HTTP API's life cycle: /readyz says 503 (with its reasons) until Exchange answers and
enough mailboxes are live, then 200; HTTPS with the configured certificate; IPv6; an address
in use stops calsync with a clear error; <api enabled="false"> serves nothing."""

import http.client
import socket
import ssl

import pytest

from apiclient import TOKEN, Api, start_calsync, wait_api
from calsyncproc import user
from simharness import wait_for


@pytest.fixture(scope="module")
def sim(module_sim_factory):
    return module_sim_factory("--mailboxes", "200")


def status_is(api, path, status):
    def check():
        r = api.get(path)
        return r if r.status == status else None
    return check


def test_readyz_503_until_live(sim, calsync_factory):
    mbs = [user(1), user(2)]
    # Exchange answers nothing but 503 until the fault is cleared.
    sim.control("POST", "/faults", {"kind": "http_503", "count": None}, expect=201)
    try:
        cs, api = start_calsync(calsync_factory, sim, mbs)
        r = wait_for(status_is(api, "/readyz", 503), timeout=10, what="/readyz 503")
        # Once the stats are published the reasons name both problems.
        r = wait_for(lambda: (lambda r: r if r.json["mailboxes"] == 2 else None)(api.get("/readyz")), timeout=5,
                     what="/readyz to count the mailboxes")
        assert r.status == 503
        assert r.json["status"] == "not ready" and r.json["live"] == 0
        assert "no EWS request has succeeded yet" in r.json["reasons"]
        assert "0 of 2 mailboxes live, 90% needed" in r.json["reasons"]
        assert r.json["error"] == "; ".join(r.json["reasons"])
        assert api.get("/healthz").status == 200
    finally:
        sim.control("DELETE", "/faults", expect=200)
    cs.wait_live(timeout=20)
    r = wait_for(status_is(api, "/readyz", 200), timeout=5, what="/readyz 200")
    assert r.json == {"status": "ready", "mailboxes": 2, "live": 2}


def test_ready_live_percentage(sim, calsync_factory):
    # One of two mailboxes does not exist: 50% live is ready at ready_live="50".
    cs, api = start_calsync(calsync_factory, sim, [user(5), "nobody@contoso.example"], api_attrs='ready_live="50"')
    cs.wait_live([user(5)])
    r = wait_for(status_is(api, "/readyz", 200), timeout=15, what="/readyz 200 at 50%")
    assert r.json["live"] == 1 and r.json["mailboxes"] == 2


def test_https(sim, calsync_factory, certs):
    cs, _ = start_calsync(calsync_factory, sim, [user(10)],
                          api_attrs='tls_cert="%s" tls_key="%s"' % (certs["cert"], certs["key"]))
    api = wait_api(cs, TOKEN, cafile=certs["ca"])
    assert api.scheme == "https"
    assert api.get("/healthz").json == {"status": "ok"}
    cs.wait_live()
    assert [u["smtp"] for u in api.ok("GET", "/v1/users")["users"]] == [user(10)]
    assert api.get("/v1/users", token=None).status == 401
    # Plain HTTP to the HTTPS port gets nowhere, and harms nothing.
    try:
        answered = Api("http", api.host, api.port, TOKEN).get("/healthz").status == 200
    except (http.client.HTTPException, OSError):
        answered = False
    assert not answered
    # A client that does not trust the certificate is refused by its own TLS check.
    with pytest.raises(ssl.SSLError):
        Api("https", api.host, api.port, TOKEN, cafile=None).get("/healthz")
    cs.assert_running()
    assert api.get("/healthz").status == 200


def test_ipv6(sim, calsync_factory):
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    cs = calsync_factory(sim, [user(15)], env={"CALSYNC_TEST_API_TOKEN": TOKEN},
                         api='<api listen="[::1]:0" token_env="CALSYNC_TEST_API_TOKEN"/>')
    cs.start()
    api = wait_api(cs, TOKEN)
    assert api.host == "::1"
    assert "api: listening on http://[::1]:%d" % api.port in cs.stderr_text()
    assert api.get("/healthz").status == 200


def test_address_in_use_stops_calsync(sim, calsync_factory):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        cs = calsync_factory(sim, [user(20)], api='<api listen="127.0.0.1:%d"/>' % port)
        cs.start()
        assert cs.proc.wait(20) == 1
        err = cs.stderr_text()
        assert "api: cannot listen on 127.0.0.1:%d: Address already in use" % port in err, err
    finally:
        taken.close()


def test_disabled(sim, calsync_factory):
    cs = calsync_factory(sim, [user(25)], api='<api enabled="false"/>')
    cs.start()
    cs.wait_live()
    assert "api:" not in cs.stderr_text()
