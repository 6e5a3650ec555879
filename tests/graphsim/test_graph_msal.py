"""Microsoft's MSAL for Python (Debian's python3-msal) gets tokens from the simulator over
HTTPS, with a client secret and with a certificate, and the tokens work at Graph.

MSAL checks that the authority is https and reads its OpenID configuration from
{authority}/v2.0/.well-known/openid-configuration; validate_authority=False skips the
instance discovery at login.microsoftonline.com (there is no network here)."""

import msal
import pytest

import graphclient as gc


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return gc.client_certificate(tmp_path_factory.mktemp("msal-cert"))


@pytest.fixture(scope="module")
def tsim(module_sim_factory, certs, cert):
    return gc.graph_sim(module_sim_factory, "--graph-client-secret", gc.SECRET, "--graph-client-cert", cert["path"],
                        tls=certs)


@pytest.fixture(autouse=True)
def trust_test_ca(monkeypatch, certs):
    # requests lets REQUESTS_CA_BUNDLE (and CURL_CA_BUNDLE) override a session's verify,
    # which is where MSAL puts its verify argument: point them at the test CA too.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certs["ca"])
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def app(sim, certs, credential):
    return msal.ConfidentialClientApplication(sim.info["client_id"], client_credential=credential,
                                              authority=sim.info["authority"], validate_authority=False,
                                              verify=certs["ca"])


def works_at_graph(sim, certs, tok):
    g = gc.Graph(sim, tok, ctx=gc.ssl_ctx(sim, certs["ca"]))
    doc = g.ok("users/" + gc.A)
    assert doc["mail"] == gc.A


def test_msal_client_secret(tsim, certs):
    assert tsim.info["authority"].startswith("https://")
    r = app(tsim, certs, gc.SECRET).acquire_token_for_client(scopes=[gc.SCOPE])
    assert "access_token" in r, r
    assert r["token_type"] == "Bearer"
    works_at_graph(tsim, certs, r["access_token"])


def test_msal_wrong_secret_reports_the_aadsts_error(tsim, certs):
    r = app(tsim, certs, "wrong").acquire_token_for_client(scopes=[gc.SCOPE])
    assert r.get("error") == "invalid_client" and r.get("error_codes") == [7000215], r


def test_msal_certificate_thumbprint(tsim, certs, cert):
    cred = {"private_key": cert["key_pem"], "thumbprint": cert["thumbprint"]}
    r = app(tsim, certs, cred).acquire_token_for_client(scopes=[gc.SCOPE])
    assert "access_token" in r, r
    works_at_graph(tsim, certs, r["access_token"])


def test_msal_certificate_with_public_certificate(tsim, certs, cert):
    cred = {"private_key": cert["key_pem"], "thumbprint": cert["thumbprint"], "public_certificate": cert["pem"]}
    r = app(tsim, certs, cred).acquire_token_for_client(scopes=[gc.SCOPE])
    assert "access_token" in r, r


def test_msal_unregistered_certificate(tsim, certs, tmp_path):
    other = gc.client_certificate(tmp_path, "unregistered")
    cred = {"private_key": other["key_pem"], "thumbprint": other["thumbprint"]}
    r = app(tsim, certs, cred).acquire_token_for_client(scopes=[gc.SCOPE])
    assert r.get("error") == "invalid_client" and r.get("error_codes") == [700027], r
    counters = tsim.counters()
    assert counters["graph_tokens_issued"]["certificate"] >= 2
    assert counters["graph_requests"]["openid-configuration"] >= 1
