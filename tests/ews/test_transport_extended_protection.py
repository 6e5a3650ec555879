"""calsync's own NTLM with channel binding (src/ews/ews-transport.c with ews-ntlm.c) against
ews-sim's Extended Protection (--extended-protection / POST /auth): NTLM works over HTTPS in
every mode, and over plain HTTP; behind a TLS-terminating relay with another certificate (a
MITM, trusted through the CA file) the binding cannot match and is refused under require and
allow with a clear -EACCES, accepted under off; an authenticated connection is reused, so
handshakes equal connections for sequential and concurrent calls, under the connection caps;
the password appears in no output."""

import os
import subprocess

import pytest

from ewstry import EwsTry
from simharness import PASSWORD, wait_for
from tlsrelay import Relay

MBX = "user00001@contoso.example"
MODES = ["off", "allow", "require"]


def ntlm_handshakes(sim):
    return sim.output().count("auth: NTLM ok")


def counter(sim, group, key):
    return sim.counters().get(group, {}).get(key, 0)


def set_mode(sim, mode):
    doc = sim.control("POST", "/auth", {"extended_protection": mode}, expect=200)[1]
    assert doc["extended_protection"] == mode


@pytest.fixture(scope="module")
def ep_sim(module_sims, certs):
    return module_sims("--log-level", "info", "--tls-cert", certs["cert"], "--tls-key", certs["key"],
                       "--extended-protection", "require")


@pytest.fixture(scope="module")
def ep_http_sim(module_sims):
    return module_sims("--log-level", "info", "--extended-protection", "require")


@pytest.fixture
def mode(request, ep_sim):
    set_mode(ep_sim, request.param)
    yield request.param
    set_mode(ep_sim, "require")


@pytest.fixture(scope="module")
def mitm_cert(certs, tmp_path_factory):
    """Another certificate for the same names, signed by the same CA as ews-sim's: calsync
    trusts it, but its hash is not the one ews-sim binds to."""
    d = tmp_path_factory.mktemp("mitm")
    ca_dir = os.path.dirname(certs["ca"])

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "mitm.key", "-out", "mitm.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                               "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "mitm.csr", "-CA", certs["ca"], "-CAkey", os.path.join(ca_dir, "ca.key"),
        "-CAcreateserial", "-out", "mitm.pem", "-days", "2", "-extfile", "ext.cnf")
    return str(d / "mitm.pem"), str(d / "mitm.key")


@pytest.fixture
def relays():
    made = []

    def make(*args, **kw):
        r = Relay(*args, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def no_secret(r):
    assert PASSWORD not in r.out and PASSWORD not in r.err
    # No NTLM message either: every one starts with "NTLMSSP\0", base64 "TlRMTVNTUA".
    assert "TlRMTVNTUA" not in r.out and "TlRMTVNTUA" not in r.err


# -- every mode ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_ntlm_over_https_in_every_mode(ews_try_bin, ep_sim, certs, mode):
    c = EwsTry(ews_try_bin, ep_sim, auth="ntlm", cacert=certs["ca"])
    before, failures = ntlm_handshakes(ep_sim), ep_sim.counters().get("auth_failures", {})
    r = c.ok("--debug", "--impersonate", MBX, "repeat", "3", "get-folder")
    assert [x["http"] for x in r.lines] == [200, 200, 200]
    assert [x["new_connections"] for x in r.lines] == [1, 0, 0]
    assert r.lines[0]["response"]["messages"][0]["code"] == "NoError"
    wait_for(lambda: ntlm_handshakes(ep_sim) - before == 1, what="one NTLM handshake")
    assert ep_sim.counters().get("auth_failures", {}) == failures
    no_secret(r)


def test_libcurl_ntlm_is_refused_under_require(ep_sim, certs):
    # What calsync did before: libcurl 7.88's NTLM sends no channel binding. The reason the
    # transport does NTLM itself.
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--ntlm", "-u",
                        "CONTOSO\\svc:" + PASSWORD, "--cacert", certs["ca"], "-H", "Content-Type: text/xml",
                        "--data", "<x/>", ep_sim.ews], capture_output=True, text=True, timeout=60)
    assert p.stdout == "401"
    wait_for(lambda: counter(ep_sim, "auth_failures", "channel-binding-missing") >= 1,
             what="a channel-binding-missing failure")


def test_negotiate_falls_back_to_ntlm_with_channel_binding(ews_try_bin, ep_sim, certs):
    c = EwsTry(ews_try_bin, ep_sim, auth="negotiate", cacert=certs["ca"])
    before = ntlm_handshakes(ep_sim)
    r = c.ok("--impersonate", MBX, "repeat", "3", "get-folder", env={"KRB5CCNAME": "FILE:/nonexistent/ccache"})
    assert [x["http"] for x in r.lines] == [200, 200, 200]
    assert [x["new_connections"] for x in r.lines] == [1, 0, 0]
    wait_for(lambda: ntlm_handshakes(ep_sim) - before == 1, what="one NTLM handshake")


def test_plain_http_binds_nothing_and_still_works(ews_try_bin, ep_http_sim):
    # No TLS, no channel: IIS (and ews-sim) check nothing, and the token is 16 zero bytes.
    c = EwsTry(ews_try_bin, ep_http_sim, auth="ntlm")
    before = ntlm_handshakes(ep_http_sim)
    r = c.ok("--impersonate", MBX, "repeat", "2", "get-folder")
    assert [x["new_connections"] for x in r.lines] == [1, 0]
    wait_for(lambda: ntlm_handshakes(ep_http_sim) - before == 1, what="one NTLM handshake")


# -- a TLS-terminating relay in between ---------------------------------------------------------

@pytest.mark.parametrize("mode, accepted", [("require", False), ("allow", False), ("off", True)],
                         indirect=["mode"])
def test_tls_terminating_relay_breaks_the_binding(ews_try_bin, ep_sim, certs, mitm_cert, relays, mode,
                                                  accepted):
    cert, key = mitm_cert
    relay = relays(ep_sim.port, cert=cert, key=key, upstream_ca=certs["ca"])
    c = EwsTry(ews_try_bin, ep_sim, auth="ntlm", cacert=certs["ca"])
    mismatches = counter(ep_sim, "auth_failures", "channel-binding-mismatch")
    before = ntlm_handshakes(ep_sim)
    r = c.run("--debug", "--impersonate", MBX, "get-folder", url=relay.url())
    no_secret(r)
    assert relay.connections == 1, relay.errors  # the whole handshake ran on one connection
    if accepted:
        assert r.rc == 0 and r.line["http"] == 200, r
        wait_for(lambda: ntlm_handshakes(ep_sim) - before == 1, what="one NTLM handshake")
        return
    assert r.rc == 1
    line = r.line
    assert line["http"] == 401 and line["errno"] == "EACCES", line
    assert "authentication (ntlm) failed" in line["error"]
    assert "Extended Protection refusing the channel binding" in line["error"]
    assert "TLS terminated in between" in line["error"]
    wait_for(lambda: counter(ep_sim, "auth_failures", "channel-binding-mismatch") == mismatches + 1,
             what="one channel-binding-mismatch")
    assert ntlm_handshakes(ep_sim) == before
    # The transport tried once: one challenge, one refused AUTHENTICATE, no loop.
    assert line["new_connections"] == 1


def test_the_same_relay_passing_tls_through_is_fine(ews_try_bin, ep_sim, certs, relays):
    relay = relays(ep_sim.port)
    c = EwsTry(ews_try_bin, ep_sim, auth="ntlm", cacert=certs["ca"])
    r = c.ok("--impersonate", MBX, "get-folder", url=relay.url())
    assert r.line["http"] == 200 and relay.connections == 1


# -- connection reuse ---------------------------------------------------------------------------

def test_handshakes_equal_connections(ews_try_bin, ep_sim, certs, relays):
    # A TCP relay that passes TLS through counts the connections calsync opens; ews-sim's log
    # counts the NTLM handshakes and its 401 counter the challenges.
    c = EwsTry(ews_try_bin, ep_sim, auth="ntlm", cacert=certs["ca"])

    def run(relay, *args):
        hs, chal = ntlm_handshakes(ep_sim), counter(ep_sim, "rejections", "http_401")
        r = c.ok("--impersonate", MBX, *args, url=relay.url())
        assert all(x["http"] == 200 for x in r.lines)
        wait_for(lambda: ntlm_handshakes(ep_sim) - hs == relay.connections,
                 what="%d NTLM handshakes" % relay.connections)
        assert counter(ep_sim, "rejections", "http_401") - chal == relay.connections
        assert sum(x["new_connections"] for x in r.lines) == relay.connections
        no_secret(r)
        return r

    # Sequential: one connection, one handshake, five requests.
    relay = relays(ep_sim.port)
    r = run(relay, "repeat", "5", "get-folder")
    assert relay.connections == 1
    assert [x["new_connections"] for x in r.lines] == [1, 0, 0, 0, 0]

    # Concurrent: three calls at once need three connections; the nine after them reuse them,
    # authenticated, without another handshake.
    relay = relays(ep_sim.port)
    r = run(relay, "--concurrency", "3", "repeat", "12", "get-folder")
    assert relay.connections == 3 and len(r.lines) == 12

    # Four at once under a cap of two connections: two wait for a free one; still two
    # handshakes for eight calls.
    relay = relays(ep_sim.port)
    r = run(relay, "--max-connections", "2", "--concurrency", "4", "repeat", "8", "get-folder")
    assert relay.connections == 2 and len(r.lines) == 8
