"""`calsync check` against ews-sim: every step passing over HTTPS, and each failure it must
explain with its fix: a wrong password, impersonation denied (by scope and by an injected
fault), an unknown mailbox, TLS problems (untrusted CA, a name mismatch, an expired and an
expiring certificate), a method the server does not offer, Extended Protection (on and
handled; a TLS-terminating relay with another certificate under Allow and under Require; a wrong
password under Require), throttling, a closed port and a configuration error. Also the JSON
document, Autodiscover, pull mode, progress, the exit statuses, and that no password ever
reaches the output. With <graph>, against the Graph simulator: the token (secret, certificate,
each refusal with its AADSTS fix), each cloud mailbox's permissions, pinned and probed
mailboxes, throttling and the notification endpoint.

The binary comes from the meson build directory in $CALSYNC_BUILD, or ./build at the top of
the source tree (scripts/test points CALSYNC_BUILD at the ASan+UBSan build)."""

import base64
import hashlib
import http.server
import json
import os
import pty
import socket
import subprocess
import sys
import threading
import urllib.parse

import pytest

from simharness import PASSWORD, sim_pool

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "ews"))

from tlsrelay import Relay  # noqa: E402
TIMEOUT = 60  # seconds; generous for a sanitizer build on a loaded machine
NTLM_USER = "CONTOSO\\svc"
PW_ENV = "CALSYNC_CHECK_PW"
GRAPH_SECRET_ENV = "CALSYNC_CHECK_GRAPH_SECRET"
GRAPH_SECRET = "sim~GraphSecret.0123456789-abcdefghijkl"  # the Graph simulator's default secret
MBX = ["user%05d@contoso.example" % i for i in range(1, 13)]
STEPS = ["config", "dns", "tcp", "tls", "auth-methods", "authentication", "ews-version"]
ROLE_ASSIGNMENT = ("New-ManagementRoleAssignment -Name \"calsync-impersonation\" -Role "
                   "ApplicationImpersonation -User '%s' -CustomRecipientWriteScope \"calsync-users\"")
SCOPE = "New-ManagementScope -Name \"calsync-users\" -RecipientRestrictionFilter {MemberOfGroup -eq"
THROTTLING_POLICY = ("New-ThrottlingPolicy -Name \"calsync\" -EwsMaxConcurrency Unlimited "
                     "-EwsMaxSubscriptions Unlimited -EwsMaxBurst Unlimited -EwsRechargeRate "
                     "Unlimited -EwsCutoffBalance Unlimited -RcaMaxConcurrency Unlimited "
                     "-CpaMaxConcurrency Unlimited")
THROTTLING_ASSOCIATION = "Set-ThrottlingPolicyAssociation -Identity '%s' -ThrottlingPolicy \"calsync\""


@pytest.fixture(scope="module")
def calsync():
    build = os.environ.get("CALSYNC_BUILD") or os.path.join(ROOT, "build")
    path = os.path.join(os.path.abspath(build), "calsync")
    if not os.access(path, os.X_OK):
        pytest.fail("calsync binary not found at %s: build it (meson setup build && ninja -C build) "
                    "or set CALSYNC_BUILD to a meson build directory" % path)
    return path


# -- certificates -----------------------------------------------------------------------------

def openssl(d, *args):
    subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)


CA_CNF = """[ca]
default_ca = ca_default
[ca_default]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = policy_any
[policy_any]
commonName = supplied
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and server certificates it signed: 'good' (127.0.0.1 and localhost, a year),
    'other' (names only mail.other.example), 'expired' (January 2020)."""
    d = tmp_path_factory.mktemp("check-pki")
    openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "400", "-subj", "/CN=calsync check test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    (d / "ca.cnf").write_text(CA_CNF)
    (d / "index.txt").write_text("")
    (d / "serial").write_text("01\n")
    out = {"ca": str(d / "ca.pem")}
    for name, san, dates in [("good", "DNS:localhost,IP:127.0.0.1", None),
                             ("other", "DNS:mail.other.example", None),
                             ("expired", "DNS:localhost,IP:127.0.0.1", ("20200101000000Z", "20200201000000Z"))]:
        (d / (name + ".ext")).write_text(
            "basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectAltName=%s\n" % san)
        openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + san.split(",")[0].split(":")[1])
        if dates is None:
            openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", name + ".pem", "-days", "365", "-extfile", name + ".ext")
        else:
            openssl(d, "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
                    "-startdate", dates[0], "-enddate", dates[1], "-in", name + ".csr",
                    "-out", name + ".pem", "-extfile", name + ".ext", "-notext")
        out[name] = (str(d / (name + ".pem")), str(d / (name + ".key")))
    return out


# -- simulators shared by this module ---------------------------------------------------------

@pytest.fixture(scope="module")
def module_sims():
    yield from sim_pool()


@pytest.fixture(scope="module")
def http_sim(module_sims):
    return module_sims("--mailboxes", "20")


@pytest.fixture
def sim(http_sim):
    """The shared plain-HTTP ews-sim, with faults and limits back to normal after each test."""
    yield http_sim
    http_sim.control("DELETE", "/faults", expect=200)
    http_sim.control("POST", "/limits", {"ews_max_subscriptions": 5000, "hanging_connection_limit": 10},
                     expect=200)


@pytest.fixture(scope="module")
def https_sim(module_sims, pki):
    cert, key = pki["good"]
    return module_sims("--tls-cert", cert, "--tls-key", key)


# -- running calsync check --------------------------------------------------------------------

def xml_attr(v):
    return str(v).replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def write_config(tmp_path, *, url=None, autodiscover=None, mode="EwsStream", user=NTLM_USER, auth="ntlm",
                 mailboxes=MBX[:4], ca_file=None, extra=""):
    server = ('<ews url="%s"/>' % xml_attr(url)) if url else ('<autodiscover url="%s"/>' % xml_attr(autodiscover))
    secret = 'token_env="%s"' % PW_ENV if auth == "bearer" else 'password_env="%s"' % PW_ENV
    account = ('<account %sauth="%s" %s/>' % ('user="%s" ' % xml_attr(user) if user else "", auth, secret)
               if auth else "")
    tls = '<tls ca_file="%s"/>' % xml_attr(ca_file) if ca_file else ""
    # A mailbox is an address, or (address, backend) for a pinned one.
    mbx = "".join('<mailbox backend="%s">%s</mailbox>' % (m[1], m[0]) if isinstance(m, tuple)
                  else "<mailbox>%s</mailbox>" % m for m in mailboxes)
    path = tmp_path / "calsync.xml"
    path.write_text("\n".join([
        '<?xml version="1.0" encoding="utf-8"?>',
        "<configuration><calendar_sync>",
        '<exchange><events><advise Object="%s"/></events></exchange>' % mode,
        "<calsync>", server, account, tls, "<mailboxes>%s</mailboxes>" % mbx, extra, "</calsync>",
        "</calendar_sync></configuration>", ""]))
    return str(path)


def run(calsync, config, *args, password=PASSWORD, stderr=subprocess.PIPE, graph_secret=GRAPH_SECRET):
    env = dict(os.environ)
    env.pop("http_proxy", None)
    env.pop("https_proxy", None)
    env[PW_ENV] = password
    env[GRAPH_SECRET_ENV] = graph_secret
    return subprocess.run([calsync, "check", "-c", config, *args], stdout=subprocess.PIPE, stderr=stderr,
                          env=env, timeout=TIMEOUT)


def check_json(calsync, config, *args, status=None, password=PASSWORD, graph_secret=GRAPH_SECRET):
    p = run(calsync, config, "--json", *args, password=password, graph_secret=graph_secret)
    out = p.stdout.decode()
    assert password not in out and password not in p.stderr.decode()
    assert graph_secret not in out and graph_secret not in p.stderr.decode()
    doc = json.loads(out)
    assert doc["exit_status"] == p.returncode
    if status is not None:
        assert p.returncode == status, out
    return doc


def steps(doc, name, mailbox=None):
    return [s for s in doc["steps"] if s["name"] == name and (mailbox is None or s["mailbox"] == mailbox)]


def step(doc, name, mailbox=None):
    found = steps(doc, name, mailbox)
    assert len(found) == 1, (name, mailbox, doc["steps"])
    return found[0]


def failed(doc):
    return [(s["name"], s["mailbox"]) for s in doc["steps"] if s["status"] == "fail"]


# -- everything passes ------------------------------------------------------------------------

def test_all_ok_over_https_as_json(calsync, https_sim, pki, tmp_path):
    config = write_config(tmp_path, url=https_sim.ews, ca_file=pki["ca"])
    doc = check_json(calsync, config, status=0)
    assert doc["ok"] is True and doc["config"] == config
    assert list(doc) == ["config", "ok", "exit_status", "counts", "steps"]
    for s in doc["steps"]:
        assert list(s) == ["name", "mailbox", "status", "detail", "fix", "commands"]
        assert s["status"] == "ok", s
        assert s["fix"] is None and s["commands"] == []
        assert isinstance(s["detail"], str) and s["detail"]
    names = [s["name"] for s in doc["steps"]]
    assert names == STEPS + ["impersonation", "subscription"] * 3 + ["throttling"]
    # The first three configured mailboxes are the sample.
    assert [s["mailbox"] for s in steps(doc, "impersonation")] == MBX[:3]
    assert doc["counts"] == {"ok": len(names), "warn": 0, "fail": 0, "skip": 0}
    assert "CN = calsync check test CA" in step(doc, "tls")["detail"]
    assert "offers Negotiate, NTLM, Basic, Bearer; configured: ntlm" in step(doc, "auth-methods")["detail"]
    assert "Exchange 2019 (15.2.1748.10)" in step(doc, "ews-version")["detail"]
    # This ews-sim checks no channel binding: calsync's second login without one says so.
    assert step(doc, "authentication")["detail"] == (
        "ntlm as CONTOSO\\svc accepted by the server; the server does not require channel binding "
        "(Extended Protection off, or Allow)")
    assert "streaming subscription: Subscribe, GetStreamingEvents" in step(doc, "subscription", MBX[0])["detail"]
    for limit in ["EWSMaxConcurrency not observed (default 27)", "HangingConnectionLimit not observed (default 10)",
                  "EWSMaxSubscriptions not observed (default 5000)"]:
        assert limit in step(doc, "throttling")["detail"]
    # Every subscription the check made is gone again.
    subs = https_sim.control("GET", "/notify/subscriptions", expect=200)[1]
    assert subs["count"] == 0, subs


def test_all_ok_for_a_person(calsync, https_sim, pki, tmp_path):
    config = write_config(tmp_path, url=https_sim.ews, ca_file=pki["ca"], mode="EwsPull")
    p = run(calsync, config, "--mailbox", MBX[5])
    assert p.returncode == 0, p.stdout.decode()
    lines = p.stdout.decode().splitlines()
    assert lines[0] == "calsync check: " + config
    assert lines[-1] == "10 ok, 0 warn, 0 FAIL, 0 skipped: passed"
    body = lines[1:-2]
    assert [line.split()[:2] for line in body] == [["ok", n] for n in STEPS + ["impersonation", "subscription", "throttling"]]
    assert "%s: pull subscription: Subscribe, GetEvents, Unsubscribe" % MBX[5] in p.stdout.decode()
    assert "(checking the 1 given with --mailbox)" in body[0]
    assert p.stderr == b""


def test_plain_http_and_pull_mode(calsync, sim, tmp_path):
    config = write_config(tmp_path, url=sim.ews, mode="EwsPull", mailboxes=MBX[:2])
    doc = check_json(calsync, config, status=0)
    assert step(doc, "tls")["status"] == "warn"
    assert "plain HTTP" in step(doc, "tls")["detail"]
    assert doc["counts"]["warn"] == 1 and doc["counts"]["fail"] == 0
    for m in MBX[:2]:
        assert step(doc, "subscription", m)["detail"].startswith("pull subscription: Subscribe, GetEvents, Unsubscribe")


def test_autodiscover(calsync, sim, tmp_path):
    config = write_config(tmp_path, autodiscover=sim.info["autodiscover"], mailboxes=MBX[:2])
    doc = check_json(calsync, config, status=0)
    names = [s["name"] for s in doc["steps"]]
    assert names[:6] == ["config", "dns", "tcp", "tls", "auth-methods", "autodiscover"]
    assert step(doc, "autodiscover")["detail"] == "EWS URL %s for 2 of 2 mailboxes" % sim.ews
    assert step(doc, "impersonation", MBX[1])["status"] == "ok"


def test_autodiscover_unknown_mailbox(calsync, sim, tmp_path):
    config = write_config(tmp_path, autodiscover=sim.info["autodiscover"], mailboxes=MBX[:1])
    doc = check_json(calsync, config, "--mailbox", MBX[0], "--mailbox", "ghost@contoso.example", status=1)
    assert failed(doc) == [("impersonation", "ghost@contoso.example")]
    s = step(doc, "impersonation", "ghost@contoso.example")
    assert "Autodiscover found no EWS URL: InvalidUser" in s["detail"]
    assert "Get-Recipient -Identity 'ghost@contoso.example' | fl Name,RecipientTypeDetails,PrimarySmtpAddress" in s["commands"]


# -- authentication ---------------------------------------------------------------------------

def test_wrong_password(calsync, sim, tmp_path):
    config = write_config(tmp_path, url=sim.ews)
    secret = "Wr0ng-S3cret-4711"
    doc = check_json(calsync, config, status=1, password=secret)
    s = step(doc, "authentication")
    assert s["status"] == "fail"
    assert "HTTP 401" in s["detail"] and "ntlm as CONTOSO\\svc" in s["detail"]
    assert "Get-WebServicesVirtualDirectory | fl *Authentication*" in s["commands"]
    assert "password" in s["fix"] and "locked out" in s["fix"]
    assert failed(doc) == [("authentication", None)]
    for name in ["ews-version", "impersonation", "subscription", "throttling"]:
        assert step(doc, name)["status"] == "skip"
    # The human form says the same, and never the secret either.
    p = run(calsync, config, password=secret)
    assert p.returncode == 1
    out = p.stdout.decode()
    assert secret not in out and secret not in p.stderr.decode()
    assert "FAIL  authentication ntlm as CONTOSO\\svc: POST to 127.0.0.1: HTTP 401" in out
    assert "\n          Get-WebServicesVirtualDirectory | fl *Authentication*\n" in out
    # Plain HTTP binds nothing: Extended Protection is not among the causes.
    assert not any("ExtendedProtection" in c for c in s["commands"])


def test_method_not_offered(calsync, sim_factory, tmp_path):
    s = sim_factory("--auth", "ntlm")
    config = write_config(tmp_path, url=s.ews, user="svc@contoso.example", auth="basic")
    doc = check_json(calsync, config, status=1)
    m = step(doc, "auth-methods")
    assert m["status"] == "fail"
    assert m["detail"] == "127.0.0.1 offers NTLM, not basic as configured"
    assert ("Get-WebServicesVirtualDirectory | Set-WebServicesVirtualDirectory -BasicAuthentication $true"
            in m["commands"])
    assert step(doc, "authentication")["status"] == "fail"


def test_negotiate_falls_back_to_ntlm(calsync, sim, tmp_path):
    config = write_config(tmp_path, url=sim.ews, auth="negotiate", mailboxes=MBX[:1])
    doc = check_json(calsync, config, status=0)
    assert step(doc, "auth-methods")["detail"].endswith("configured: negotiate")
    assert step(doc, "authentication")["detail"] == "negotiate as CONTOSO\\svc accepted by the server"


def test_bearer_token(calsync, sim, tmp_path):
    token = "t0ken-%d" % os.getpid()
    sim.control("POST", "/tokens", {"token": token, "account": "svc@contoso.example"}, expect=201)
    config = write_config(tmp_path, url=sim.ews, auth="bearer", user=None, mailboxes=MBX[:1])
    doc = check_json(calsync, config, status=0, password=token)
    assert step(doc, "authentication")["detail"] == "bearer accepted by the server"
    doc = check_json(calsync, config, status=1, password="expired-" + token)
    s = step(doc, "authentication")
    assert s["status"] == "fail" and "refused the bearer token" in s["detail"]
    assert "Get-WebServicesVirtualDirectory | fl *Authentication*" in s["commands"]


# -- impersonation ----------------------------------------------------------------------------

def test_impersonation_denied_by_scope(calsync, sim, tmp_path):
    # A second service account whose ApplicationImpersonation scope holds only user00001.
    sim.control("POST", "/accounts", {"smtp": "svc2@contoso.example", "password": "Sc0pe-Pw",
                                      "impersonation": [MBX[0]]}, expect=201)
    config = write_config(tmp_path, url=sim.ews, user="svc2@contoso.example", mailboxes=MBX[:3])
    doc = check_json(calsync, config, status=1, password="Sc0pe-Pw")
    assert failed(doc) == [("impersonation", MBX[1]), ("impersonation", MBX[2])]
    assert step(doc, "impersonation", MBX[0])["status"] == "ok"
    assert step(doc, "subscription", MBX[1])["status"] == "skip"
    s = step(doc, "impersonation", MBX[1])
    assert s["detail"].startswith("FindItem: ErrorImpersonateUserDenied: the service account may not impersonate")
    assert ROLE_ASSIGNMENT % "svc2@contoso.example" in s["commands"]
    assert any(c.startswith(SCOPE + ' "CN=calsync-users,CN=Users,DC=contoso,DC=example"}') for c in s["commands"])
    assert "Domain Admins" in s["fix"]


def test_impersonation_denied_for_one_mailbox(calsync, sim, tmp_path):
    sim.control("POST", "/faults", {"kind": "ews_error", "code": "ErrorImpersonateUserDenied",
                                    "mailbox": MBX[1], "count": None}, expect=201)
    config = write_config(tmp_path, url=sim.ews)
    doc = check_json(calsync, config, status=1)
    assert failed(doc) == [("impersonation", MBX[1])]
    s = step(doc, "impersonation", MBX[1])
    assert "ErrorImpersonateUserDenied" in s["detail"]
    assert ROLE_ASSIGNMENT % NTLM_USER in s["commands"]
    assert any(c.startswith(SCOPE) for c in s["commands"])
    # Human output names the mailbox on the FAIL line and prints the commands once.
    p = run(calsync, config)
    out = p.stdout.decode()
    assert "FAIL  impersonation  %s: FindItem: ErrorImpersonateUserDenied" % MBX[1] in out
    assert out.count("New-ManagementRoleAssignment") == 1


def test_unknown_mailbox(calsync, sim, tmp_path):
    config = write_config(tmp_path, url=sim.ews)
    doc = check_json(calsync, config, "--mailbox", "nobody@contoso.example", status=1)
    assert failed(doc) == [("impersonation", "nobody@contoso.example")]
    s = step(doc, "impersonation", "nobody@contoso.example")
    assert "ErrorNonExistentMailbox" in s["detail"]
    assert "Get-Recipient -Identity 'nobody@contoso.example' | fl Name,RecipientTypeDetails,PrimarySmtpAddress" \
        in s["commands"]


# -- TLS ----------------------------------------------------------------------------------------

def test_untrusted_certificate(calsync, https_sim, tmp_path):
    config = write_config(tmp_path, url=https_sim.ews)
    doc = check_json(calsync, config, status=1)
    s = step(doc, "tls")
    assert s["status"] == "fail"
    assert "is not trusted" in s["detail"] and "no <tls ca_file> is set" in s["detail"]
    assert "issued by CN = calsync check test CA" in s["detail"]
    assert '<tls ca_file="/etc/calsync/exchange-ca.pem"/>' in s["fix"]
    assert any(c.startswith("openssl s_client -connect 127.0.0.1:%d" % https_sim.port) for c in s["commands"])
    assert failed(doc) == [("tls", None)]
    assert [x["status"] for x in doc["steps"][doc["steps"].index(s) + 1:]] == ["skip"] * 6


def test_insecure_skip_tls_verify(calsync, https_sim, tmp_path):
    config = write_config(tmp_path, url=https_sim.ews, mailboxes=MBX[:1],
                          extra='<tls insecure_skip_tls_verify="true"/>')
    doc = check_json(calsync, config, status=0)
    t = step(doc, "tls")
    assert t["status"] == "warn"
    assert "is not trusted" in t["detail"] and "connects anyway" in t["detail"]
    assert [s["status"] for s in doc["steps"] if s["name"] not in ("config", "tls")] == ["ok"] * 8
    # The configuration's own warning about it makes the config step a warning too.
    assert step(doc, "config")["status"] == "warn"


def test_wrong_ca_file(calsync, https_sim, certs, tmp_path):
    config = write_config(tmp_path, url=https_sim.ews, ca_file=certs["ca"])
    doc = check_json(calsync, config, status=1)
    assert "the CA file does not hold its CA" in step(doc, "tls")["detail"]


def test_name_mismatch(calsync, sim_factory, pki, tmp_path):
    cert, key = pki["other"]
    s = sim_factory("--tls-cert", cert, "--tls-key", key)
    config = write_config(tmp_path, url=s.ews, ca_file=pki["ca"])
    doc = check_json(calsync, config, status=1)
    t = step(doc, "tls")
    assert t["status"] == "fail"
    assert t["detail"].startswith("the certificate names DNS:mail.other.example, not 127.0.0.1")
    assert "Enable-ExchangeCertificate -Thumbprint <thumbprint> -Services IIS" in t["commands"]


def test_expired_certificate(calsync, sim_factory, pki, tmp_path):
    cert, key = pki["expired"]
    s = sim_factory("--tls-cert", cert, "--tls-key", key)
    config = write_config(tmp_path, url=s.ews, ca_file=pki["ca"])
    doc = check_json(calsync, config, status=1)
    t = step(doc, "tls")
    assert t["status"] == "fail"
    assert "expired on Feb  1 00:00:00 2020 GMT" in t["detail"]
    assert "Enable-ExchangeCertificate -Thumbprint <thumbprint of the new certificate> -Services IIS" in t["commands"]


def test_certificate_expiring_soon(calsync, sim_factory, certs, tmp_path):
    # tests/conftest.py's certificate is valid for two days.
    s = sim_factory("--tls-cert", certs["cert"], "--tls-key", certs["key"])
    config = write_config(tmp_path, url=s.ews, ca_file=certs["ca"], mailboxes=MBX[:1])
    doc = check_json(calsync, config, status=0)
    t = step(doc, "tls")
    assert t["status"] == "warn"
    assert "expires in 1 day, on" in t["detail"] or "expires in 2 days, on" in t["detail"]
    assert step(doc, "authentication")["status"] == "ok"


# -- throttling ---------------------------------------------------------------------------------

def test_server_busy_is_retried_and_reported(calsync, sim, tmp_path):
    sim.control("POST", "/faults", {"kind": "ews_fault", "code": "ErrorServerBusy", "back_off_ms": 150,
                                    "operation": "FindItem", "mailbox": MBX[0]}, expect=201)
    config = write_config(tmp_path, url=sim.ews, mailboxes=MBX[:2])
    doc = check_json(calsync, config, status=0)
    imp = step(doc, "impersonation", MBX[0])
    assert imp["status"] == "ok"
    assert "(after ErrorServerBusy, retried 150 ms later)" in imp["detail"]
    t = step(doc, "throttling")
    assert t["status"] == "warn"
    assert "ErrorServerBusy on FindItem for %s" % MBX[0] in t["detail"]
    assert "ErrorServerBusy 1 time (BackOffMilliseconds up to 150)" in t["detail"]
    assert THROTTLING_POLICY in t["commands"]
    assert THROTTLING_ASSOCIATION % NTLM_USER in t["commands"]


def test_inner_server_busy_is_throttling(calsync, sim, tmp_path):
    # The verdict (ews-verdict.h) acts on the inner code of an ErrorInternalServerError: the
    # retry names ErrorServerBusy, as the daemon reads it.
    sim.control("POST", "/faults", {"kind": "ews_error", "code": "ErrorInternalServerError",
                                    "inner_code": "ErrorServerBusy", "operation": "FindItem",
                                    "mailbox": MBX[0], "count": 1}, expect=201)
    config = write_config(tmp_path, url=sim.ews, mailboxes=MBX[:1])
    doc = check_json(calsync, config, status=0)
    imp = step(doc, "impersonation", MBX[0])
    assert imp["status"] == "ok"
    assert "(after ErrorServerBusy, retried 1000 ms later)" in imp["detail"]
    t = step(doc, "throttling")
    assert t["status"] == "warn" and "ErrorServerBusy on FindItem for %s" % MBX[0] in t["detail"]


def test_every_throttled_code_counts(calsync, sim, tmp_path):
    # A code of the THROTTLED class that check has no words of its own for is still
    # throttling: counted, and retried once.
    sim.control("POST", "/faults", {"kind": "ews_error", "code": "ErrorExceededFindCountLimit",
                                    "operation": "FindItem", "mailbox": MBX[0], "count": 1}, expect=201)
    config = write_config(tmp_path, url=sim.ews, mailboxes=MBX[:1])
    doc = check_json(calsync, config, status=0)
    assert "(after ErrorExceededFindCountLimit, retried 1000 ms later)" in step(doc, "impersonation", MBX[0])["detail"]
    t = step(doc, "throttling")
    assert t["status"] == "warn"
    assert "ErrorExceededFindCountLimit on FindItem for %s" % MBX[0] in t["detail"]
    assert "1 other busy answer" in t["detail"]


def test_http_503_is_throttling(calsync, sim, tmp_path):
    sim.control("POST", "/faults", {"kind": "http_503", "operation": "FindItem", "mailbox": MBX[0],
                                    "count": 2}, expect=201)
    config = write_config(tmp_path, url=sim.ews, mailboxes=MBX[:1])
    doc = check_json(calsync, config, status=0)
    imp = step(doc, "impersonation", MBX[0])
    assert imp["status"] == "warn" and "(after HTTP 503, retried 1000 ms later)" in imp["detail"]
    assert step(doc, "subscription", MBX[0])["status"] == "skip"
    t = step(doc, "throttling")
    assert t["status"] == "warn" and "HTTP 503 on FindItem for %s" % MBX[0] in t["detail"]
    assert "2 other busy answers" in t["detail"]


def test_subscription_and_hanging_limits(calsync, sim, tmp_path):
    sim.control("POST", "/limits", {"ews_max_subscriptions": 0}, expect=200)
    config = write_config(tmp_path, url=sim.ews, mailboxes=MBX[:1])
    doc = check_json(calsync, config, status=1)
    s = step(doc, "subscription", MBX[0])
    assert s["status"] == "fail" and "ErrorExceededSubscriptionCount" in s["detail"]
    t = step(doc, "throttling")
    assert t["status"] == "warn"
    assert "EWSMaxSubscriptions observed (1 answer)" in t["detail"]
    assert THROTTLING_POLICY in t["commands"]

    sim.control("POST", "/limits", {"ews_max_subscriptions": 5000, "hanging_connection_limit": 0}, expect=200)
    doc = check_json(calsync, config, status=0)
    assert step(doc, "subscription", MBX[0])["status"] == "warn"
    t = step(doc, "throttling")
    assert "HangingConnectionLimit observed (1 answer, limit 0)" in t["detail"]
    assert "web.config" in t["fix"]
    assert sim.control("GET", "/notify/subscriptions", expect=200)[1]["count"] == 0


# -- the network and the configuration ----------------------------------------------------------

def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_server(calsync, tmp_path):
    config = write_config(tmp_path, url="http://127.0.0.1:%d/EWS/Exchange.asmx" % closed_port())
    doc = check_json(calsync, config, status=1)
    t = step(doc, "tcp")
    assert t["status"] == "fail" and "cannot connect to 127.0.0.1 port" in t["detail"]
    assert any(c.startswith("curl -sv -o /dev/null http://127.0.0.1:") for c in t["commands"])
    assert failed(doc) == [("tcp", None)]
    assert step(doc, "throttling")["status"] == "skip"


def test_config_error(calsync, tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text('<configuration><calendar_sync><exchange><events><advise Object="EwsPoll"/>'
                    "</events></exchange></calendar_sync></configuration>\n")
    doc = check_json(calsync, str(path), status=2)
    assert doc["ok"] is False
    assert [(s["name"], s["status"]) for s in doc["steps"]] == [("config", "fail")]
    assert "unknown notification mode" in doc["steps"][0]["detail"]
    p = run(calsync, str(path))
    assert p.returncode == 2
    assert "FAIL  config" in p.stdout.decode()
    p = run(calsync, str(tmp_path / "missing.xml"))
    assert p.returncode == 2


def test_missing_password_is_a_config_error(calsync, sim, tmp_path):
    config = write_config(tmp_path, url=sim.ews)
    env = {k: v for k, v in os.environ.items() if k != PW_ENV}
    p = subprocess.run([calsync, "check", "-c", config], capture_output=True, env=env, timeout=TIMEOUT)
    assert p.returncode == 2
    assert PW_ENV in p.stdout.decode()


def test_command_line(calsync, tmp_path):
    p = subprocess.run([calsync, "check", "--help"], capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0 and b"Usage: calsync check" in p.stdout
    for args, what in [(["--frob"], "unknown option '--frob'"), (["extra"], "unexpected argument 'extra'"),
                       (["--mailbox", "not-an-address"], "not a mailbox address"),
                       (["-c"], "option needs an argument '-c'")]:
        p = subprocess.run([calsync, "check", *args], capture_output=True, timeout=TIMEOUT)
        assert p.returncode == 2, args
        assert what in p.stderr.decode() and p.stdout == b""
    p = subprocess.run([calsync, "--help"], capture_output=True, timeout=TIMEOUT)
    assert b"check" in p.stdout


# -- progress -----------------------------------------------------------------------------------

def test_progress_as_log_lines(calsync, sim, tmp_path):
    config = write_config(tmp_path, url=sim.ews, mode="EwsPull")
    args = [a for m in MBX for a in ("--mailbox", m)]
    p = run(calsync, config, *args)
    assert p.returncode == 0, p.stdout.decode()
    err = p.stderr.decode().splitlines()
    assert err[-1] == "calsync check: 12 of 12 mailboxes checked"
    assert err == ["calsync check: %d of 12 mailboxes checked" % n for n in range(1, 13)]
    assert p.stdout.decode().count("ok    impersonation") == 12


def test_progress_on_a_terminal(calsync, sim, tmp_path):
    config = write_config(tmp_path, url=sim.ews, mode="EwsPull")
    args = [a for m in MBX for a in ("--mailbox", m)]
    master, slave = pty.openpty()
    try:
        p = run(calsync, config, "--json", *args, stderr=slave)
    finally:
        os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert p.returncode == 0
    assert json.loads(p.stdout)["ok"] is True
    assert b"\r\x1b[Kchecking mailbox 1 of 12: " + MBX[0].encode() in seen
    assert b"checking mailbox 12 of 12: " + MBX[11].encode() in seen
    assert b"mailboxes checked" not in seen


# -- Extended Protection ------------------------------------------------------------------------

EP_SET_NONE = "Get-WebServicesVirtualDirectory | Set-WebServicesVirtualDirectory -ExtendedProtectionTokenChecking None"
EP_CERTS = "Get-ExchangeCertificate | Where-Object {$_.Services -match 'IIS'} | fl Thumbprint,Subject,CertificateDomains"


def thumbprint(pem):
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha1", "-in", pem], check=True,
                         capture_output=True, text=True).stdout
    return out.strip().split("=", 1)[1].replace(":", "").upper()


@pytest.fixture(scope="module")
def ep_sim(module_sims, pki):
    cert, key = pki["good"]
    return module_sims("--tls-cert", cert, "--tls-key", key, "--extended-protection", "require")


@pytest.fixture
def ep_mode(ep_sim):
    """Sets ews-sim's Extended Protection for one test; back to require afterwards."""
    def set_mode(mode):
        assert ep_sim.control("POST", "/auth", {"extended_protection": mode}, expect=200)[1][
            "extended_protection"] == mode
    yield set_mode
    set_mode("require")


@pytest.fixture(scope="module")
def mitm(pki):
    """A certificate for the same names from the same CA as ews-sim's: a TLS-terminating load
    balancer or inspecting proxy that calsync trusts."""
    d = os.path.dirname(pki["ca"])
    (open(os.path.join(d, "mitm.ext"), "w")).write(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "mitm.key", "-out", "mitm.csr",
            "-subj", "/CN=tls-inspection.contoso.example")
    openssl(d, "x509", "-req", "-in", "mitm.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "mitm.pem", "-days", "365", "-extfile", "mitm.ext")
    return os.path.join(d, "mitm.pem"), os.path.join(d, "mitm.key")


@pytest.fixture
def relay(ep_sim, pki, mitm):
    cert, key = mitm
    r = Relay(ep_sim.port, cert=cert, key=key, upstream_ca=pki["ca"])
    yield r
    r.stop()


def test_extended_protection_on_and_handled(calsync, ep_sim, pki, tmp_path):
    config = write_config(tmp_path, url=ep_sim.ews, ca_file=pki["ca"], mailboxes=MBX[:1])
    doc = check_json(calsync, config, status=0)
    assert step(doc, "authentication")["detail"] == (
        "ntlm as CONTOSO\\svc accepted by the server; Extended Protection is on: the server requires "
        "channel binding, which calsync sends")
    assert [s["status"] for s in doc["steps"]] == ["ok"] * len(doc["steps"])
    # The second login, without a binding, was the one refused.
    assert ep_sim.counters().get("auth_failures", {}).get("channel-binding-missing", 0) >= 1


def test_tls_terminated_in_between_under_allow(calsync, ep_sim, ep_mode, pki, mitm, relay, tmp_path):
    # Allow accepts NTLM without a binding but refuses one that does not match: the relay's
    # certificate is not ews-sim's.
    ep_mode("allow")
    config = write_config(tmp_path, url=relay.url(), ca_file=pki["ca"], mailboxes=MBX[:1])
    doc = check_json(calsync, config, status=1)
    assert failed(doc) == [("authentication", None)]
    assert step(doc, "tls")["status"] == "ok"  # the relay's certificate is trusted
    s = step(doc, "authentication")
    assert s["detail"].startswith(
        "ntlm as CONTOSO\\svc: Extended Protection refuses the channel binding calsync sends, but accepts NTLM "
        "without one: the certificate calsync sees (SHA-1 %s) is not the Exchange server's, so something in "
        "between terminates TLS" % thumbprint(mitm[0]))
    assert thumbprint(pki["good"][0]) not in s["detail"]
    assert EP_CERTS in s["commands"] and EP_SET_NONE in s["commands"]
    assert "SSL bridging" in s["fix"] and 'auth="basic"' in s["fix"]
    assert "If the account and password are right" not in s["fix"]
    assert "CN = tls-inspection.contoso.example" in s["fix"]
    # A person sees the same.
    p = run(calsync, config)
    out = p.stdout.decode()
    assert p.returncode == 1
    assert "FAIL  authentication ntlm as CONTOSO\\svc: Extended Protection refuses the channel binding" in out
    assert "\n          " + EP_SET_NONE + "\n" in out
    assert PASSWORD not in out


def test_tls_terminated_in_between_under_require(calsync, ep_sim, pki, mitm, relay, tmp_path):
    # Require refuses both logins, as it refuses a wrong password: the fix names both causes,
    # with the thumbprint to compare, which here is the relay's.
    config = write_config(tmp_path, url=relay.url(), ca_file=pki["ca"], mailboxes=MBX[:1])
    mismatches = ep_sim.counters().get("auth_failures", {}).get("channel-binding-mismatch", 0)
    doc = check_json(calsync, config, status=1)
    s = step(doc, "authentication")
    assert s["status"] == "fail"
    assert "HTTP 401" in s["detail"] and "Extended Protection refusing the channel binding" in s["detail"]
    assert "If the account and password are right: Extended Protection set to Require" in s["fix"]
    assert "SHA-1 thumbprint %s" % thumbprint(mitm[0]) in s["fix"]
    assert "Get-WebServicesVirtualDirectory | fl *Authentication*" in s["commands"]
    assert EP_CERTS in s["commands"] and EP_SET_NONE in s["commands"]
    assert ep_sim.counters()["auth_failures"]["channel-binding-mismatch"] == mismatches + 1


def test_wrong_password_under_require(calsync, ep_sim, pki, tmp_path):
    # Directly, the thumbprint in the fix is ews-sim's own: comparing it rules the relay out.
    config = write_config(tmp_path, url=ep_sim.ews, ca_file=pki["ca"], mailboxes=MBX[:1])
    secret = "Wr0ng-EP-S3cret"
    doc = check_json(calsync, config, status=1, password=secret)
    s = step(doc, "authentication")
    assert s["status"] == "fail" and "HTTP 401" in s["detail"]
    assert "password" in s["fix"] and "locked out" in s["fix"]
    assert "SHA-1 thumbprint %s" % thumbprint(pki["good"][0]) in s["fix"]
    assert EP_SET_NONE in s["commands"]


# -- Microsoft Graph ----------------------------------------------------------------------------
# One ews-sim with its Graph simulator (docs/graph-sim.md): user00001 and user00002 live in
# Exchange Online (Autodiscover answers RedirectAddress for them), the others on premises.

CLOUD = MBX[:2]
ONPREM = MBX[2]
GRAPH_STEPS = ["graph-token", "graph-mailbox", "graph-throttle"]
RBAC_ASSIGNMENT = ('New-ManagementRoleAssignment -App %s -Role "Application Calendars.Read" '
                   '-CustomResourceScope calsync-users')


@pytest.fixture(scope="module")
def graph_sim(module_sims):
    return module_sims("--mailboxes", "8", "--graph-listen", "127.0.0.1:0", "--cloud-mailboxes", "1-2",
                       "--graph-notify-insecure")


@pytest.fixture
def gsim(graph_sim):
    """The shared Graph simulator, with its faults and the app's roles back to normal after each test."""
    yield graph_sim
    graph_sim.control("DELETE", "/graph/faults", expect=200)
    graph_sim.control("POST", "/graph/app", {"roles": ["Calendars.Read", "User.Read.All"]}, expect=200)


def graph_xml(sim, cred=None, notify=""):
    """<graph> for sim's tenant and app, with the secret from the environment unless cred says otherwise."""
    info = sim.info
    cred = cred or '<secret env="%s"/>' % GRAPH_SECRET_ENV
    return ('<graph tenant="%s" client_id="%s">%s<endpoints authority="%s" graph="%s"/>%s</graph>'
            % (info["tenant_id"], info["client_id"], cred, xml_attr(info["login"]), xml_attr(info["graph"]), notify))


def graph_config(tmp_path, sim, mailboxes, *, ews_url=None, cred=None, notify="", ca_file=None, extra=""):
    """Autodiscover (or <ews url>) against sim's EWS, and <graph>."""
    return write_config(tmp_path, url=ews_url, autodiscover=None if ews_url else sim.info["autodiscover"],
                        mailboxes=mailboxes, ca_file=ca_file, extra=graph_xml(sim, cred, notify) + extra)


def graph_steps(doc):
    return [s for s in doc["steps"] if s["name"].startswith("graph-")]


def test_graph_all_good_with_a_secret(calsync, gsim, tmp_path):
    config = graph_config(tmp_path, gsim, MBX[:3])
    tokens = gsim.counters().get("graph_tokens_issued", {}).get("secret", 0)
    doc = check_json(calsync, config, status=0)
    assert doc["counts"]["fail"] == 0
    names = [s["name"] for s in doc["steps"]]
    # The Graph steps follow the EWS ones, one per Graph mailbox, in order.
    assert names[names.index("throttling") + 1:] == ["graph-token", "graph-mailbox", "graph-mailbox",
                                                     "graph-throttle"]
    assert "2 in Exchange Online (RedirectAddress)" in step(doc, "autodiscover")["detail"]
    for m in CLOUD:
        imp = step(doc, "impersonation", m)
        assert imp["status"] == "skip" and "in Exchange Online" in imp["detail"], imp
        s = step(doc, "graph-mailbox", m)
        assert s["status"] == "ok", s
        user_id = gsim.control("GET", "/graph/mailboxes/" + m, expect=200)[1]["user_id"]
        assert s["detail"].startswith("user %s (mail %s, UPN %s); calendarView of " % (user_id, m, m)), s
    assert step(doc, "impersonation", ONPREM)["status"] == "ok"
    assert steps(doc, "graph-mailbox", ONPREM) == []  # Autodiscover found it on premises
    tok = step(doc, "graph-token")
    assert tok["status"] == "ok"
    assert "app %s in tenant %s with a client secret" % (gsim.info["client_id"], gsim.info["tenant_id"]) in tok["detail"]
    assert "roles in it: Calendars.Read, User.Read.All" in tok["detail"]
    assert step(doc, "graph-throttle")["status"] == "ok"
    assert "Microsoft Graph: tenant %s" % gsim.info["tenant_id"] in step(doc, "config")["detail"]
    assert gsim.counters()["graph_tokens_issued"]["secret"] == tokens + 1

    # For a person: one line per step, the same steps.
    p = run(calsync, config)
    assert p.returncode == 0
    body = [line for line in p.stdout.decode().splitlines()[1:-2] if not line.startswith(" ")]
    assert [line.split()[1] for line in body] == names
    assert [line.split()[0] for line in body if line.split()[1].startswith("graph-")] == ["ok"] * 4
    assert GRAPH_SECRET not in p.stdout.decode() + p.stderr.decode()


def make_cert(d, name):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=" + name,
                    "-keyout", name + ".key", "-out", name + ".crt"], cwd=d, check=True, capture_output=True)
    der = subprocess.run(["openssl", "x509", "-in", name + ".crt", "-outform", "DER"], cwd=d, check=True,
                         capture_output=True).stdout
    s256 = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    return str(d / (name + ".crt")), str(d / (name + ".key")), hashlib.sha1(der).hexdigest().upper(), s256


def test_graph_certificate_credential(calsync, module_sims, tmp_path):
    cert, key, sha1, s256 = make_cert(tmp_path, "calsync-app")
    sim = module_sims("--mailboxes", "4", "--graph-listen", "127.0.0.1:0", "--cloud-mailboxes", "1",
                      "--graph-client-cert", cert)
    cred = '<certificate cert="%s" key="%s"/>' % (xml_attr(cert), xml_attr(key))
    config = graph_config(tmp_path, sim, MBX[:1], cred=cred)
    doc = check_json(calsync, config, status=0)
    tok = step(doc, "graph-token")
    assert tok["status"] == "ok", tok
    assert "with the certificate %s (x5t#S256 %s)" % (sha1, s256) in tok["detail"]
    assert step(doc, "graph-mailbox", MBX[0])["status"] == "ok"
    assert sim.counters()["graph_tokens_issued"] == {"certificate": 1}

    # A certificate the app registration does not hold: AADSTS700027 and its thumbprints to upload.
    other, other_key, other_sha1, other_s256 = make_cert(tmp_path, "not-registered")
    cred = '<certificate cert="%s" key="%s"/>' % (xml_attr(other), xml_attr(other_key))
    config = graph_config(tmp_path, sim, MBX[:1], cred=cred)
    doc = check_json(calsync, config, status=1)
    tok = step(doc, "graph-token")
    assert tok["status"] == "fail" and "AADSTS700027" in tok["detail"], tok
    assert "Upload the certificate" in tok["fix"]
    assert "thumbprint %s" % other_sha1 in tok["fix"] and "x5t#S256 %s" % other_s256 in tok["fix"]
    assert step(doc, "graph-mailbox")["status"] == "skip"
    out = json.dumps(doc)
    assert "PRIVATE KEY" not in out and open(other_key).read().splitlines()[1] not in out


def test_graph_wrong_secret(calsync, gsim, tmp_path):
    config = graph_config(tmp_path, gsim, MBX[:3])
    secret = "Wr0ng~GraphSecret-0000"
    doc = check_json(calsync, config, status=1, graph_secret=secret)
    assert failed(doc) == [("graph-token", None)]
    tok = step(doc, "graph-token")
    assert "HTTP 401 invalid_client" in tok["detail"] and "AADSTS7000215" in tok["detail"], tok
    assert "Create a new client secret under Certificates & secrets" in tok["fix"]
    assert '<secret file="...">' in tok["fix"]
    assert tok["commands"] == ["az ad app credential list --id %s" % gsim.info["client_id"]]
    assert step(doc, "graph-mailbox") == {"name": "graph-mailbox", "mailbox": None, "status": "skip",
                                          "detail": "not run: no access token", "fix": None, "commands": []}
    p = run(calsync, config, graph_secret=secret)
    assert p.returncode == 1
    assert "FAIL  graph-token" in p.stdout.decode()
    assert secret not in p.stdout.decode() + p.stderr.decode()


def test_graph_app_without_calendars_read(calsync, gsim, tmp_path):
    config = graph_config(tmp_path, gsim, MBX[:3])
    client = gsim.info["client_id"]
    gsim.control("POST", "/graph/app", {"roles": ["User.Read.All"]}, expect=200)
    doc = check_json(calsync, config, status=1)
    assert failed(doc) == [("graph-mailbox", m) for m in CLOUD]
    s = step(doc, "graph-mailbox", CLOUD[0])
    assert s["detail"].startswith("calendarView: ErrorAccessDenied"), s
    assert "application* permission Calendars.Read with admin consent" in s["fix"]
    assert RBAC_ASSIGNMENT % client in s["commands"]
    assert "Test-ServicePrincipalAuthorization -Identity %s -Resource %s" % (client, CLOUD[0]) in s["commands"]
    assert ("New-ApplicationAccessPolicy -AppId %s -PolicyScopeGroupId calsync-users@contoso.example "
            "-AccessRight RestrictAccess -Description \"calsync\"" % client) in s["commands"]
    assert "roles in it: User.Read.All" in step(doc, "graph-token")["detail"]
    # For a person the long fix is printed once.
    out = run(calsync, config).stdout.decode()
    assert out.count(RBAC_ASSIGNMENT % client) == 1
    assert "FAIL  graph-mailbox  %s: calendarView: ErrorAccessDenied" % CLOUD[1] in out
    assert "      (fix: as above)" in out

    # Without User.Read.All the user lookup is refused first.
    gsim.control("POST", "/graph/app", {"roles": ["Calendars.Read"]}, expect=200)
    doc = check_json(calsync, config, status=1)
    s = step(doc, "graph-mailbox", CLOUD[0])
    assert s["status"] == "fail" and s["detail"].startswith("user lookup: Authorization_RequestDenied"), s
    assert "application permission User.Read.All" in s["fix"]
    assert s["commands"] == ["az ad app permission admin-consent --id %s" % client]


def test_graph_pinned_mailboxes(calsync, gsim, tmp_path):
    ghost = "nobody@contoso.example"
    pinned_onprem = MBX[4]
    config = graph_config(tmp_path, gsim, [ONPREM, (ghost, "graph"), (pinned_onprem, "graph")])
    doc = check_json(calsync, config, status=1)
    assert sorted(failed(doc)) == sorted([("graph-mailbox", ghost), ("graph-mailbox", pinned_onprem)])
    # Pinned mailboxes are Graph's only: no EWS step names them.
    assert [s["mailbox"] for s in steps(doc, "impersonation")] == [ONPREM]
    s = step(doc, "graph-mailbox", ghost)
    assert s["detail"].startswith("not a user of the tenant: user lookup: Request_ResourceNotFound"), s
    assert ghost in s["detail"] and ghost in s["fix"]
    assert "Get-EXORecipient -Identity '%s' | fl RecipientTypeDetails,PrimarySmtpAddress,ExternalDirectoryObjectId" \
        % ghost in s["commands"]
    s = step(doc, "graph-mailbox", pinned_onprem)
    assert s["detail"].startswith('on premises, but <mailbox backend="graph"> pins it to Microsoft Graph: '
                                  "calendarView: MailboxNotEnabledForRESTAPI"), s
    assert 'Remove backend="graph"' in s["fix"]
    assert s["commands"] == ["Get-Recipient -Identity '%s' | fl RecipientTypeDetails" % pinned_onprem]
    assert "2 mailboxes pinned to graph" in step(doc, "config")["detail"]


def test_graph_without_autodiscover_tries_the_sample(calsync, gsim, tmp_path):
    # With <ews url> nothing says where a mailbox lives: Graph is asked about the sample too.
    config = graph_config(tmp_path, gsim, [CLOUD[0], ONPREM], ews_url=gsim.ews)
    doc = check_json(calsync, config, status=1)
    assert failed(doc) == [("impersonation", CLOUD[0])]  # EWS does not serve a cloud mailbox
    s = step(doc, "graph-mailbox", CLOUD[0])
    assert s["status"] == "warn" and s["detail"].startswith("in Exchange Online: user "), s
    assert "with <ews url> calsync serves every mailbox that is not pinned through EWS" in s["detail"]
    assert '<mailbox backend="graph">%s</mailbox>' % CLOUD[0] in s["fix"]
    s = step(doc, "graph-mailbox", ONPREM)
    assert s["status"] == "ok" and s["detail"].startswith(
        "on premises: Microsoft Graph does not serve it (calendarView: MailboxNotEnabledForRESTAPI"), s
    # A mailbox pinned to EWS is never asked about.
    config = graph_config(tmp_path, gsim, [(CLOUD[1], "ews")], ews_url=gsim.ews)
    doc = check_json(calsync, config, status=1)
    assert steps(doc, "graph-mailbox") == [{"name": "graph-mailbox", "mailbox": None, "status": "skip",
                                            "detail": "not run: Autodiscover found every sample mailbox on "
                                                      "premises; name one in Exchange Online with --mailbox",
                                            "fix": None, "commands": []}]


def test_graph_only_needs_no_ews(calsync, gsim, tmp_path):
    # Every mailbox pinned to Graph: the EWS steps do not apply, even with an EWS nobody answers.
    config = graph_config(tmp_path, gsim, [(m, "graph") for m in CLOUD],
                          ews_url="http://127.0.0.1:%d/EWS/Exchange.asmx" % closed_port())
    doc = check_json(calsync, config, status=0)
    assert [s["name"] for s in doc["steps"]] == ["config", "ews"] + ["graph-token"] + ["graph-mailbox"] * 2 + \
        ["graph-throttle"]
    assert step(doc, "ews")["status"] == "skip"
    assert [s["status"] for s in graph_steps(doc)] == ["ok"] * 4
    # --mailbox keeps a configured mailbox's pin.
    doc = check_json(calsync, config, "--mailbox", CLOUD[1], status=0)
    assert [(s["name"], s["mailbox"]) for s in doc["steps"]][1:3] == [("ews", None), ("graph-token", None)]
    assert [s["mailbox"] for s in steps(doc, "graph-mailbox")] == [CLOUD[1]]
    assert "(checking the 1 given with --mailbox)" in step(doc, "config")["detail"]


def test_graph_throttling_is_retried_and_reported(calsync, gsim, tmp_path):
    config = graph_config(tmp_path, gsim, CLOUD)
    gsim.control("POST", "/graph/faults", {"kind": "http_429", "count": 1, "retry_after": 1, "mailbox": CLOUD[0],
                                           "operation": "calendarView"}, expect=201)
    doc = check_json(calsync, config, status=0)
    s = step(doc, "graph-mailbox", CLOUD[0])
    assert s["status"] == "ok" and s["detail"].endswith("(after ApplicationThrottled, retried 1000 ms later)"), s
    t = step(doc, "graph-throttle")
    assert t["status"] == "warn", t
    assert t["detail"].startswith("throttled (first: HTTP 429 ApplicationThrottled on calendarView for %s): "
                                  "HTTP 429 1 time" % CLOUD[0]), t
    assert "(Retry-After up to 1 s)" in t["detail"]
    assert "10,000 per 10 minutes per mailbox" in t["fix"]
    assert gsim.counters()["graph_faults_injected"]["http_429"] >= 1


def notify_xml(listen_port, url_port, pki, tls=True):
    cert, key = pki["good"]
    tls_attrs = ' tls_cert="%s" tls_key="%s"' % (xml_attr(cert), xml_attr(key)) if tls else ""
    return ('<notifications listen="127.0.0.1:%d" url="https://127.0.0.1:%d/graph/notify"%s lifetime="1h" '
            'renew_before="10min"/>' % (listen_port, url_port, tls_attrs))


def test_graph_notification_endpoint(calsync, gsim, pki, tmp_path):
    port = closed_port()
    config = graph_config(tmp_path, gsim, CLOUD[:1], notify=notify_xml(port, port, pki), ca_file=pki["ca"])
    before = gsim.counters().get("graph_validations", {}).get("ok", 0)
    doc = check_json(calsync, config, status=0)
    assert [s["name"] for s in graph_steps(doc)] == ["graph-token", "graph-mailbox", "graph-listen", "graph-endpoint",
                                                     "graph-validate", "graph-throttle"]
    s = step(doc, "graph-listen")
    assert s["status"] == "ok" and s["detail"].startswith("127.0.0.1 port %d is free: calsync run can listen there "
                                                          "(HTTPS with the configured certificate)" % port), s
    s = step(doc, "graph-endpoint")
    assert s["status"] == "warn", s
    assert "https://127.0.0.1:%d/graph/notify answered the validation handshake from this host" % port in s["detail"]
    assert "127.0.0.1 is a private address: Microsoft Graph cannot reach it from the internet" in s["detail"]
    s = step(doc, "graph-validate")
    assert s["status"] == "ok", s
    assert s["detail"].startswith("Microsoft Graph validated https://127.0.0.1:%d/graph/notify: a subscription to "
                                  "%s's events was created" % (port, CLOUD[0])), s
    # Graph's validation (notificationUrl and lifecycleNotificationUrl) reached the check's listener,
    # and the subscription is gone again.
    assert gsim.counters()["graph_validations"]["ok"] == before + 2
    assert gsim.control("GET", "/graph/subscriptions", expect=200)[1]["count"] == 0


@pytest.fixture
def refused_port():
    """A port on 127.0.0.1 that refuses every connection for the whole test: bound, never
    listening, so no other socket gets it (not even as the source port of a connection to
    it, which would connect to itself) and closed_port() never hands it out."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def test_graph_notification_url_nobody_answers(calsync, gsim, pki, tmp_path, refused_port):
    listen, nobody = closed_port(), refused_port
    config = graph_config(tmp_path, gsim, CLOUD[:1], notify=notify_xml(listen, nobody, pki), ca_file=pki["ca"])
    doc = check_json(calsync, config, status=1)
    assert failed(doc) == [("graph-endpoint", None), ("graph-validate", None)]
    assert step(doc, "graph-listen")["status"] == "ok"
    s = step(doc, "graph-endpoint")
    url = "https://127.0.0.1:%d/graph/notify" % nobody
    assert s["detail"].startswith("%s: nobody answers the validation handshake from this host: " % url), s
    assert "POSTs %s?validationToken=... from the internet" % url in s["fix"]
    assert "inbound HTTPS to 127.0.0.1 port %d through the firewall" % nobody in s["fix"]
    assert "sends /graph/notify to 127.0.0.1 port %d" % listen in s["fix"]
    assert "Graph refuses every subscription (ValidationError)" in s["fix"]
    assert s["commands"] == ["curl -sv -X POST -H 'Content-Type: text/plain' --data '' '%s?validationToken=test'" % url]
    s = step(doc, "graph-validate")
    assert "ValidationError" in s["detail"], s
    out = run(calsync, config).stdout.decode()
    assert "FAIL  graph-validate" in out and "      (fix: as above)" in out


class _Listener(http.server.ThreadingHTTPServer):
    daemon_threads = True


def serve(answer):
    """A plain HTTP server on a free port in a thread; answer(path, query) gives (status, content type, body)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            path, _, query = self.path.partition("?")
            status, ctype, body = answer(path, urllib.parse.parse_qs(query))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    srv = _Listener(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_graph_listener_address_in_use(calsync, gsim, pki, tmp_path):
    # Something else listens where calsync run would: it does not answer a validation.
    other = serve(lambda path, q: (404, "text/html", "<h1>not here</h1>"))
    try:
        port = other.server_address[1]
        config = graph_config(tmp_path, gsim, CLOUD[:1], notify=notify_xml(port, port, pki, tls=False))
        doc = check_json(calsync, config, status=1)
        s = step(doc, "graph-listen")
        assert s["status"] == "fail", s
        assert s["detail"].startswith("127.0.0.1 port %d is in use by another program: http://127.0.0.1:%d/graph/notify "
                                      "did not answer a validation request as calsync does (HTTP 404" % (port, port)), s
        assert s["commands"] == ["ss -ltnp 'sport = :%d'" % port]
    finally:
        other.shutdown()
    # A running calsync answers the validation itself.
    running = serve(lambda path, q: (200, "text/plain", q["validationToken"][0]) if path == "/graph/notify"
                    else (404, "text/plain", "not found"))
    try:
        port = running.server_address[1]
        config = graph_config(tmp_path, gsim, CLOUD[:1], notify=notify_xml(port, port, pki, tls=False))
        doc = check_json(calsync, config)
        s = step(doc, "graph-listen")
        assert s["status"] == "ok" and s["detail"] == (
            "127.0.0.1 port %d is in use by a running calsync: http://127.0.0.1:%d/graph/notify answered a "
            "validation request" % (port, port)), s
    finally:
        running.shutdown()


@pytest.mark.parametrize("what", ["tenant", "client", "network"])
def test_graph_token_refused_or_unreachable(calsync, gsim, tmp_path, what):
    info = dict(gsim.info)
    port = closed_port()
    if what == "tenant":
        info["tenant_id"] = "fabrikam.onmicrosoft.com"
    elif what == "client":
        info["client_id"] = "11111111-2222-3333-4444-555555555555"
    else:
        info["login"] = "http://127.0.0.1:%d" % port
    sim = type("S", (), {"info": info, "ews": gsim.ews})()
    config = graph_config(tmp_path, sim, CLOUD[:1])
    doc = check_json(calsync, config, status=1)
    tok = step(doc, "graph-token")
    assert tok["status"] == "fail", tok
    if what == "tenant":
        assert "AADSTS90002" in tok["detail"]
        assert "Entra ID knows no tenant 'fabrikam.onmicrosoft.com' (AADSTS90002)" in tok["fix"]
    elif what == "client":
        assert "unauthorized_client" in tok["detail"] and "AADSTS700016" in tok["detail"]
        assert ("Entra ID finds no application 11111111-2222-3333-4444-555555555555 in tenant %s (AADSTS700016)"
                % info["tenant_id"]) in tok["fix"]
    else:
        assert "127.0.0.1" in tok["detail"] and str(port) in tok["detail"], tok
        assert "This machine must reach 127.0.0.1 on port %d" % port in tok["fix"]
        assert tok["commands"] == ["curl -sv -o /dev/null http://127.0.0.1:%d/" % port]
    assert step(doc, "graph-mailbox")["status"] == "skip"


def test_cloud_mailbox_without_graph_configured(calsync, gsim, tmp_path):
    config = write_config(tmp_path, autodiscover=gsim.info["autodiscover"], mailboxes=[CLOUD[0], ONPREM])
    doc = check_json(calsync, config, status=1)
    assert failed(doc) == [("impersonation", CLOUD[0])]
    s = step(doc, "impersonation", CLOUD[0])
    assert s["detail"] == ("in Exchange Online (Autodiscover: RedirectAddress user00001@contoso.mail.onmicrosoft.com), "
                           "and the configuration has no <graph>: calsync cannot serve it"), s
    assert "configure <graph> (docs/graph.md)" in s["fix"]
    assert graph_steps(doc) == []


def test_ews_bearer_from_entra_id(calsync, gsim, tmp_path):
    """<account auth="bearer" oauth="graph">: the check gets the EWS token from the same app
    registration and every EWS step goes through with it."""
    ews = gsim.info["ews"]
    scope = ews.split("/EWS/")[0] + "/.default"
    config = write_config(tmp_path, url=ews, user=None, auth=None, mailboxes=[MBX[5]],
                          extra='<account auth="bearer" oauth="graph" scope="%s"/>' % xml_attr(scope)
                          + graph_xml(gsim))
    doc = check_json(calsync, config)
    s = step(doc, "ews-token")
    assert s["status"] == "ok" and scope in s["detail"], s
    assert step(doc, "authentication")["status"] == "ok", step(doc, "authentication")
    # A wrong secret: no token, the step says why and never the secret.
    doc = check_json(calsync, config, status=1, graph_secret="wrong-secret-value")
    s = step(doc, "ews-token")
    assert s["status"] == "fail" and "AADSTS7000215" in s["detail"], s
    assert "wrong-secret-value" not in json.dumps(doc)
