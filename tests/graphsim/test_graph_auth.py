"""The Graph simulator's Entra ID side: the client-credentials token endpoint with a client
secret or a certificate assertion, its AADSTS error bodies, and access tokens (expiry on
the sim clock, revocation, roles) as Graph checks them."""

import json

import pytest

import graphclient as gc
from graphclient import SCOPE, SECRET


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return gc.client_certificate(tmp_path_factory.mktemp("app-cert"))


@pytest.fixture(scope="module")
def other_cert(tmp_path_factory):
    return gc.client_certificate(tmp_path_factory.mktemp("other-cert"), "stranger")


@pytest.fixture(scope="module")
def gsim(module_sim_factory, cert):
    return gc.graph_sim(module_sim_factory, "--graph-client-secret", SECRET, "--graph-client-cert", cert["path"])


def form(sim, **kw):
    f = {"grant_type": "client_credentials", "client_id": sim.info["client_id"], "scope": SCOPE}
    f.update(kw)
    return {k: v for k, v in f.items() if v is not None}


def aad_error(status, doc, expect_status, error, code):
    assert status == expect_status, doc
    assert doc["error"] == error, doc
    assert doc["error_codes"] == [code], doc
    assert doc["error_description"].startswith("AADSTS%d: " % code), doc
    assert "\r\nTrace ID: " in doc["error_description"] and "\r\nCorrelation ID: " in doc["error_description"]
    assert set(doc) == {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id",
                        "error_uri"}
    assert doc["error_uri"] == "https://login.microsoftonline.com/error?code=%d" % code


def test_secret_grant_issues_a_bearer_jwt(gsim):
    status, headers, doc = gc.token_request(gsim, form(gsim, client_secret=SECRET))
    assert status == 200, doc
    assert set(doc) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert doc["token_type"] == "Bearer" and doc["expires_in"] == 3599
    assert headers["cache-control"].startswith("no-store")
    head, claims, _sig = doc["access_token"].split(".")
    claims = json.loads(gc.base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["appid"] == gsim.info["client_id"] and claims["tid"] == gsim.info["tenant_id"]
    assert claims["roles"] == ["Calendars.Read", "User.Read.All"] and claims["appidacr"] == "1"
    assert claims["exp"] - claims["nbf"] == 3599


@pytest.mark.parametrize("scope", [SCOPE, "00000003-0000-0000-c000-000000000000/.default", "<graph>/.default"])
def test_graph_default_scopes_are_accepted(gsim, scope):
    scope = scope.replace("<graph>", gsim.info["graph"])
    status, _, doc = gc.token_request(gsim, form(gsim, client_secret=SECRET, scope=scope))
    assert status == 200, doc


def test_the_tenant_answers_to_its_names(gsim):
    for tenant in (gsim.info["tenant_id"], "contoso.onmicrosoft.com", "contoso.example"):
        status, _, doc = gc.token_request(gsim, form(gsim, client_secret=SECRET), tenant=tenant)
        assert status == 200, (tenant, doc)


@pytest.mark.parametrize("kw, status, error, code", [
    ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
    ({"client_secret": SECRET, "client_id": "11111111-2222-3333-4444-555555555555"}, 400, "unauthorized_client",
     700016),
    ({"client_secret": SECRET, "scope": "https://graph.microsoft.com/Calendars.Read"}, 400, "invalid_scope", 1002012),
    ({"client_secret": SECRET, "scope": "https://outlook.office365.com/.default"}, 400, "invalid_resource", 500011),
    ({"client_secret": SECRET, "grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ({"client_secret": SECRET, "grant_type": None}, 400, "invalid_request", 900144),
    ({"client_secret": SECRET, "scope": None}, 400, "invalid_request", 900144),
    ({}, 401, "invalid_client", 7000218),
])
def test_token_errors_are_entra_bodies(gsim, kw, status, error, code):
    st, _, doc = gc.token_request(gsim, form(gsim, **kw))
    aad_error(st, doc, status, error, code)


def test_unknown_tenant_and_common(gsim):
    st, _, doc = gc.token_request(gsim, form(gsim, client_secret=SECRET), tenant="fabrikam.onmicrosoft.com")
    aad_error(st, doc, 400, "invalid_request", 90002)
    st, _, doc = gc.token_request(gsim, form(gsim, client_secret=SECRET), tenant="common")
    aad_error(st, doc, 400, "invalid_request", 9001023)


def test_get_on_the_token_endpoint_is_refused(gsim):
    st, _, doc = gc.http("GET", gsim.info["token_endpoint"])
    aad_error(st, doc, 400, "invalid_request", 900561)


def test_secret_rotation_and_expiry(sim_factory):
    s = gc.graph_sim(sim_factory, "--graph-client-secret", "old-secret")
    assert gc.token(s, "old-secret")
    s.control("POST", "/graph/app", {"add_secret": "new-secret"}, expect=200)
    assert gc.token(s, "new-secret") and gc.token(s, "old-secret")
    s.control("POST", "/graph/app", {"expire_secrets": ["old-secret"]}, expect=200)
    st, _, doc = gc.token_request(s, form(s, client_secret="old-secret"))
    aad_error(st, doc, 401, "invalid_client", 7000222)
    s.control("POST", "/graph/app", {"remove_secret": "old-secret"}, expect=200)
    st, _, doc = gc.token_request(s, form(s, client_secret="old-secret"))
    aad_error(st, doc, 401, "invalid_client", 7000215)
    assert s.control("POST", "/graph/app", {"bogus": 1})[0] == 400
    counters = s.counters()
    assert counters["graph_tokens_issued"]["secret"] == 3
    assert counters["graph_token_failures"] == {"AADSTS7000222": 1, "AADSTS7000215": 1}


def test_secret_from_a_file(sim_factory, tmp_path):
    p = tmp_path / "secret"
    p.write_text("file-secret\n")
    s = gc.graph_sim(sim_factory, "--graph-client-secret-file", str(p))
    assert gc.token(s, "file-secret")
    st, _, doc = gc.token_request(s, form(s, client_secret=SECRET))
    assert st == 401 and doc["error_codes"] == [7000215]


# -- client assertions ------------------------------------------------------------------------------


def assertion_form(sim, jwt):
    return form(sim, client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                client_assertion=jwt)


def test_certificate_assertion_rs256_x5t_s256(gsim, cert):
    jwt = gc.assertion(cert, gsim.info["token_endpoint"], gsim.info["client_id"])
    st, _, doc = gc.token_request(gsim, assertion_form(gsim, jwt))
    assert st == 200, doc
    claims = doc["access_token"].split(".")[1]
    assert json.loads(gc.base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["appidacr"] == "2"


def test_certificate_assertion_ps256_and_sha1_x5t(gsim, cert):
    x5t = gc.b64url(bytes.fromhex(cert["thumbprint"]))
    jwt = gc.assertion(cert, gsim.info["token_endpoint"], gsim.info["client_id"], alg="PS256",
                       header={"x5t": x5t}, drop=("x5t#S256",))
    st, _, doc = gc.token_request(gsim, assertion_form(gsim, jwt))
    assert st == 200, doc


def test_assertion_without_nbf_is_accepted(gsim, cert):
    # MSAL Python (Debian's 1.21) sends no nbf; Entra accepts that.
    jwt = gc.assertion(cert, gsim.info["token_endpoint"], gsim.info["client_id"], drop=("nbf",))
    assert gc.token_request(gsim, assertion_form(gsim, jwt))[0] == 200


@pytest.mark.parametrize("case, code", [
    ("bad-signature", 700027),
    ("unknown-cert", 700027),
    ("no-thumbprint", 700027),
    ("hs256", 700027),
    ("audience", 50027),
    ("issuer", 700021),
    ("subject", 50048),
    ("expired", 700024),
    ("not-yet", 700024),
    ("too-long", 700024),
    ("no-exp", 700024),
    ("no-jti", 50027),
    ("garbage", 50027),
])
def test_assertion_checks(gsim, cert, other_cert, case, code):
    te, cid = gsim.info["token_endpoint"], gsim.info["client_id"]
    now = int(gc.time.time())
    kw = {
        "bad-signature": dict(key=other_cert["key"]),
        "unknown-cert": dict(header={"x5t#S256": gc.b64url(gc.hashlib.sha256(other_cert["der"]).digest())},
                             key=other_cert["key"]),
        "no-thumbprint": dict(drop=("x5t#S256",)),
        "hs256": dict(header={"alg": "HS256"}),
        "audience": dict(claims={"aud": "https://login.microsoftonline.com/other/oauth2/v2.0/token"}),
        "issuer": dict(claims={"iss": "someone-else", "sub": "someone-else"}),
        "subject": dict(claims={"sub": "someone-else"}),
        "expired": dict(claims={"exp": now - 3600, "nbf": now - 7200}),
        "not-yet": dict(claims={"nbf": now + 3600, "exp": now + 4000}),
        "too-long": dict(claims={"exp": now + 3 * 86400}),
        "no-exp": dict(drop=("exp",)),
        "no-jti": dict(drop=("jti",)),
    }.get(case, {})
    jwt = "not.a.jwt" if case == "garbage" else gc.assertion(cert, te, cid, **kw)
    st, _, doc = gc.token_request(gsim, assertion_form(gsim, jwt))
    aad_error(st, doc, 401, "invalid_client", code)


def test_assertion_type_is_checked(gsim, cert):
    jwt = gc.assertion(cert, gsim.info["token_endpoint"], gsim.info["client_id"])
    st, _, doc = gc.token_request(gsim, form(gsim, client_assertion=jwt))
    aad_error(st, doc, 400, "invalid_request", 900144)
    st, _, doc = gc.token_request(gsim, form(gsim, client_assertion=jwt, client_assertion_type="jwt"))
    aad_error(st, doc, 400, "invalid_request", 50027)


def test_revoking_the_certificate(sim_factory, cert):
    s = gc.graph_sim(sim_factory, "--graph-client-cert", cert["path"])
    jwt = gc.assertion(cert, s.info["token_endpoint"], s.info["client_id"])
    assert gc.token_request(s, assertion_form(s, jwt))[0] == 200
    # Only a certificate was configured, so no secret is accepted, not even the default.
    assert gc.token_request(s, form(s, client_secret=SECRET))[0] == 401
    s.control("POST", "/graph/app", {"certificates": []}, expect=200)
    st, _, doc = gc.token_request(s, assertion_form(s, jwt))
    aad_error(st, doc, 401, "invalid_client", 700027)
    assert "is not registered on application" in doc["error_description"]


# -- access tokens at Graph -----------------------------------------------------------------------------


def graph_401(status, headers, doc, message):
    assert status == 401, doc
    assert doc["error"]["code"] == "InvalidAuthenticationToken"
    assert doc["error"]["message"].startswith(message), doc
    assert set(doc["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    assert headers["www-authenticate"].startswith('Bearer realm="", authorization_uri="')
    assert 'client_id="00000003-0000-0000-c000-000000000000"' in headers["www-authenticate"]


def test_graph_refuses_missing_and_malformed_tokens(gsim):
    g = gc.Graph(gsim)
    st, h, doc = gc.http("GET", gsim.info["graph"] + "/users/" + gc.A)
    graph_401(st, h, doc, "Access token is empty.")
    graph_401(*g.get("users/" + gc.A, tok="opaque"), "IDX14100: JWT is not well formed")
    graph_401(*g.get("users/" + gc.A, tok="a.b.c"), "Access token validation failure.")
    assert g.get("users/" + gc.A)[0] == 200


def test_request_ids_are_echoed(gsim):
    g = gc.Graph(gsim)
    st, h, doc = g.get("users/nobody@contoso.example", headers={"client-request-id": "abc-123"})
    assert st == 404 and h["client-request-id"] == "abc-123"
    assert doc["error"]["innerError"]["client-request-id"] == "abc-123"
    assert doc["error"]["innerError"]["request-id"] == h["request-id"]


def test_tokens_expire_on_the_sim_clock(sim_factory):
    s = gc.graph_sim(sim_factory, "--token-lifetime", "600")
    g = gc.Graph(s)
    assert g.get("users/" + gc.A)[0] == 200
    s.control("POST", "/clock", {"shift": 601}, expect=200)
    graph_401(*g.get("users/" + gc.A), "Lifetime validation failed, the token is expired.")
    g2 = gc.Graph(s)
    assert g2.get("users/" + gc.A)[0] == 200


def test_revoking_all_tokens(sim_factory):
    s = gc.graph_sim(sim_factory)
    g = gc.Graph(s)
    assert g.get("users/" + gc.A)[0] == 200
    assert s.control("POST", "/graph/tokens/revoke", expect=200)[1] == {"revoked": 1}
    graph_401(*g.get("users/" + gc.A), "Access token validation failure.")


def test_roles_of_the_app(sim_factory):
    s = gc.graph_sim(sim_factory)
    s.control("POST", "/graph/app", {"roles": ["User.Read.All"]}, expect=200)
    g = gc.Graph(s)
    st, _, doc = g.get("users/%s/calendarView?%s" % (gc.A, gc.WINDOW))
    assert st == 403 and doc["error"]["code"] == "ErrorAccessDenied"
    s.control("POST", "/graph/app", {"roles": ["Calendars.Read"]}, expect=200)
    g = gc.Graph(s)
    st, _, doc = g.get("users/" + gc.A)
    assert st == 403 and doc["error"]["code"] == "Authorization_RequestDenied"
    assert g.get("users/%s/calendarView?%s" % (gc.A, gc.WINDOW))[0] == 200


def test_openid_configuration_and_keys(gsim):
    st, _, doc = gc.http("GET", "%s/%s/v2.0/.well-known/openid-configuration" % (gsim.info["login"],
                                                                                 gsim.info["tenant_id"]))
    assert st == 200
    assert doc["token_endpoint"] == gsim.info["token_endpoint"]
    assert doc["authorization_endpoint"].endswith("/oauth2/v2.0/authorize")
    st, _, keys = gc.http("GET", doc["jwks_uri"])
    assert st == 200 and keys["keys"][0]["kty"] == "RSA"
    st, _, doc = gc.http("GET", "%s/nowhere.example/v2.0/.well-known/openid-configuration" % gsim.info["login"])
    assert st == 400 and doc["error_codes"] == [90002]
