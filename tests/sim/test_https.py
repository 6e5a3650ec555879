"""ews-sim over HTTPS (--tls-cert/--tls-key) with a throwaway CA: verified clients get in,
unverified ones are stopped by TLS, and NTLM works over TLS like over plain HTTP."""

import subprocess

from exchangelib import IMPERSONATION, NTLM, Account, Build, Configuration, Credentials, FailFast, Version
from exchangelib.protocol import close_connections

import ews

GETFOLDER = ews.envelope(
    '<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>'
    '<m:FolderIds><t:DistinguishedFolderId Id="calendar"/></m:FolderIds></m:GetFolder>',
    impersonate="user00001@contoso.example",
)


def curl(*args, data=GETFOLDER):
    p = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-H", "Content-Type: text/xml",
                        "--data-binary", "@-", *args], input=data, capture_output=True, timeout=60)
    body, _, code = p.stdout.rpartition(b"\n")
    return p.returncode, int(code or 0), body


def test_https_ntlm_and_basic(sim_factory, certs):
    s = sim_factory("--tls-cert", certs["cert"], "--tls-key", certs["key"])
    assert s.ews.startswith("https://127.0.0.1:")
    for auth in (["--ntlm", "-u", "CONTOSO\\svc:Passw0rd!"], ["--basic", "-u", "svc@contoso.example:Passw0rd!"]):
        rc, code, body = curl("--cacert", certs["ca"], *auth, s.ews)
        assert (rc, code) == (0, 200), body[:300]
        assert b"<m:ResponseCode>NoError</m:ResponseCode>" in body
    rc, code, _ = curl("--cacert", certs["ca"], "--ntlm", "-u", "CONTOSO\\svc:wrong", s.ews)
    assert (rc, code) == (0, 401)


def test_https_certificate_is_verified(sim_factory, certs):
    s = sim_factory("--tls-cert", certs["cert"], "--tls-key", certs["key"])
    rc, _, _ = curl("--ntlm", "-u", "CONTOSO\\svc:Passw0rd!", s.ews)  # system CAs only
    assert rc == 60  # CURLE_PEER_FAILED_VERIFICATION


def test_https_exchangelib(sim_factory, certs, monkeypatch):
    s = sim_factory("--tls-cert", certs["cert"], "--tls-key", certs["key"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certs["ca"])
    try:
        config = Configuration(service_endpoint=s.ews, credentials=Credentials("CONTOSO\\svc", "Passw0rd!"),
                               auth_type=NTLM, version=Version(build=Build(15, 1)), retry_policy=FailFast())
        a = Account(primary_smtp_address="user00002@contoso.example", config=config, autodiscover=False,
                    access_type=IMPERSONATION)
        assert a.calendar.total_count >= 1
    finally:
        close_connections()
