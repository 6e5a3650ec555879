"""The Entra ID side of the Graph simulator: one tenant with one app registration, the v2.0
token endpoint for the client-credentials grant (client secret, or a client assertion JWT
signed with a registered certificate), the OpenID configuration and signing keys MSAL asks
for, and the access tokens Graph accepts.

Errors are the token endpoint's JSON bodies (AADSTS codes); where Entra's exact text is
not documented the wording is ours and docs/graph-sim.md marks it as a choice.

Access tokens are RS256 JWTs with Graph's audience, the app's roles and a lifetime on the
sim clock (--token-lifetime); the simulator also keeps every token it issued, so that the
control API can revoke them all. Client assertions are checked against the real clock (a
client and Entra share NTP time), access tokens against the sim clock.
"""

import base64
import hashlib
import json
import secrets
import time
from datetime import datetime
from urllib.parse import parse_qs

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import graph_util as gu
from .graph_util import AadError, GraphError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW = 300  # seconds of clock skew allowed on assertion times
MAX_ASSERTION_LIFETIME = 86400  # an assertion valid for longer than a day is refused (choice)
DEFAULT_ROLES = ("Calendars.Read", "User.Read.All")
# The roles of a token for an on-premises Exchange resource (Hybrid Modern Authentication): the
# Office 365 Exchange Online application permission that EWS impersonation needs.
EWS_ROLES = ("full_access_as_app",)
MAX_TOKENS = 20000  # live tokens kept; expired ones are dropped first


def load_certificate(path):
    """(certificate, DER, SHA-1, SHA-256) of the first certificate in a PEM file."""
    with open(path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    der = cert.public_bytes(serialization.Encoding.DER)
    return cert, der, hashlib.sha1(der).digest(), hashlib.sha256(der).digest()


class Certificate:
    """A certificate credential of the app: the public key verifies client assertions."""

    def __init__(self, path):
        self.path = path
        self.cert, self.der, self.sha1, self.sha256 = load_certificate(path)
        self.public_key = self.cert.public_key()

    def describe(self):
        return {"file": self.path, "x5t": gu.b64url(self.sha1), "x5t#S256": gu.b64url(self.sha256),
                "thumbprint": self.sha1.hex().upper(), "subject": self.cert.subject.rfc4514_string()}


class Token:
    __slots__ = ("value", "client_id", "issued", "expires", "roles", "via", "uti", "aud")

    def __init__(self, value, client_id, issued, expires, roles, via, uti, aud=None):
        self.aud = aud or gu.GRAPH_RESOURCE
        self.value = value
        self.client_id = client_id
        self.issued = issued
        self.expires = expires
        self.roles = roles
        self.via = via
        self.uti = uti


def _jwt_parts(token):
    """(header, claims, signing input, signature) of a compact JWS; ValueError if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header = json.loads(gu.b64url_decode(parts[0]))
    claims = json.loads(gu.b64url_decode(parts[1]))
    sig = gu.b64url_decode(parts[2]) if parts[2] else b""
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("header and payload must be JSON objects")
    return header, claims, (parts[0] + "." + parts[1]).encode(), sig


def _verify(public_key, alg, signing_input, sig):
    if alg == "RS256":
        pad = padding.PKCS1v15()
    elif alg == "PS256":
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    else:
        raise InvalidSignature("algorithm %s" % alg)
    public_key.verify(sig, signing_input, pad, hashes.SHA256())


class Directory:
    """The tenant, its app registration and the tokens issued (sim.graph.auth)."""

    def __init__(self, sim, tenant_id, client_id, secrets_list, cert_paths=(), token_lifetime=3599,
                 tenant_name="contoso", app_name="calsync"):
        self.sim = sim
        self.tenant_id = tenant_id.lower()
        self.tenant_name = tenant_name
        self.client_id = client_id.lower()
        self.app_name = app_name
        self.secrets = {s: False for s in secrets_list}  # secret -> expired
        self.certs = [Certificate(p) for p in cert_paths]
        self.token_lifetime = token_lifetime
        self.roles = list(DEFAULT_ROLES)
        self.sp_object_id = gu.guid_for("sp", self.tenant_id, self.client_id)
        self.tokens = {}
        # The on-premises EWS resources (scheme://host[:port], lower case) that are service
        # principal names of Office 365 Exchange Online in this tenant (HMA): main adds the
        # EWS listener's.
        self.ews_resources = set()
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = gu.b64url(hashlib.sha1(self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest())

    # -- names --------------------------------------------------------------------------

    def tenant_names(self):
        """The names the tenant answers to in a token endpoint path."""
        d = self.sim.domain
        return {self.tenant_id, "%s.onmicrosoft.com" % self.tenant_name, d}

    @staticmethod
    def base_url(request):
        host = request.headers.get("Host") or request.host
        return "%s://%s" % (request.scheme, host)

    def token_endpoint(self, request, tenant=None):
        return "%s/%s/oauth2/v2.0/token" % (self.base_url(request), tenant or self.tenant_id)

    def graph_scopes(self, request):
        base = self.base_url(request)
        return {gu.GRAPH_RESOURCE + "/.default", gu.GRAPH_APP_ID + "/.default", base + "/.default",
                base + "/v1.0/.default", gu.GRAPH_RESOURCE + "//.default"}

    def describe(self):
        return {"tenant_id": self.tenant_id, "tenant_name": "%s.onmicrosoft.com" % self.tenant_name,
                "client_id": self.client_id, "secrets": len(self.secrets),
                "expired_secrets": sum(1 for v in self.secrets.values() if v),
                "certificates": [c.describe() for c in self.certs], "roles": list(self.roles),
                "token_lifetime": self.token_lifetime, "tokens_live": self.live_tokens()}

    def live_tokens(self):
        now = self.sim.clock.time()
        return sum(1 for t in self.tokens.values() if t.expires > now)

    # -- control ------------------------------------------------------------------------

    def revoke_all(self):
        n = len(self.tokens)
        self.tokens.clear()
        return n

    def configure(self, d):
        """Control API changes: secrets (list: the valid secrets), expire_secrets (list),
        add_secret, remove_secret, certificates (list of PEM files, [] revokes them all),
        roles (list), token_lifetime (seconds)."""
        known = {"secrets", "expire_secrets", "add_secret", "remove_secret", "certificates", "roles",
                 "token_lifetime", "revoke_tokens"}
        unknown = set(d) - known
        if unknown:
            raise ValueError("unknown keys %s; known: %s" % (sorted(unknown), ", ".join(sorted(known))))
        if "secrets" in d:
            if not isinstance(d["secrets"], list) or not all(isinstance(s, str) and s for s in d["secrets"]):
                raise ValueError("secrets must be a list of non-empty strings")
            self.secrets = {s: False for s in d["secrets"]}
        if d.get("add_secret"):
            self.secrets[str(d["add_secret"])] = False
        if d.get("remove_secret") is not None:
            self.secrets.pop(str(d["remove_secret"]), None)
        for s in d.get("expire_secrets") or []:
            if s in self.secrets:
                self.secrets[s] = True
        if "certificates" in d:
            if not isinstance(d["certificates"], list):
                raise ValueError("certificates must be a list of PEM file names")
            try:
                self.certs = [Certificate(str(p)) for p in d["certificates"]]
            except (OSError, ValueError) as exc:
                raise ValueError("certificates: %s" % exc)
        if "roles" in d:
            if not isinstance(d["roles"], list) or not all(isinstance(r, str) for r in d["roles"]):
                raise ValueError("roles must be a list of strings")
            self.roles = list(d["roles"])
        if "token_lifetime" in d:
            v = d["token_lifetime"]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ValueError("token_lifetime must be a positive number of seconds")
            self.token_lifetime = v
        if d.get("revoke_tokens"):
            self.revoke_all()

    # -- the token endpoint -------------------------------------------------------------

    async def handle_token(self, request):
        """POST /{tenant}/oauth2/v2.0/token"""
        sim = self.sim
        sim.counters.inc("graph_requests", "token")
        try:
            if request.method != "POST":
                raise AadError(400, "invalid_request", 900561,
                               "The endpoint only accepts POST, OPTIONS requests. Received a %s request."
                               % request.method)
            raw = await request.read()
            form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
            token = self._grant(request, request.match_info["tenant"], form)
        except AadError as exc:
            sim.counters.inc("graph_token_failures", "AADSTS%d" % exc.code)
            return web.json_response(gu.aad_body(exc, datetime.now(gu.UTC)), status=exc.status,
                                     headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})
        sim.counters.inc("graph_tokens_issued", token.via)
        lifetime = int(round(token.expires - token.issued))
        return web.json_response(
            {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
             "access_token": token.value},
            headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def _tenant(self, tenant):
        t = tenant.lower()
        if t in ("common", "consumers", "organizations"):
            raise AadError(400, "invalid_request", 9001023,
                           "The grant type isn't supported over the /common or /consumers endpoints. "
                           "Please use the /organizations or tenant-specific endpoint.")
        if t not in self.tenant_names():
            raise AadError(400, "invalid_request", 90002,
                           "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are "
                           "signing into the correct cloud. Check with your subscription administrator, this may "
                           "happen if there are no active subscriptions for the tenant." % tenant)

    @staticmethod
    def _required(form, name):
        v = form.get(name)
        if not v:
            raise AadError(400, "invalid_request", 900144,
                           "The request body must contain the following parameter: '%s'." % name)
        return v

    def _grant(self, request, tenant, form):
        self._tenant(tenant)
        grant = self._required(form, "grant_type")
        if grant != "client_credentials":
            raise AadError(400, "unsupported_grant_type", 70003,
                           "The app requested an unsupported grant type '%s'." % grant)
        client_id = self._required(form, "client_id").lower()
        if client_id != self.client_id:
            raise AadError(400, "unauthorized_client", 700016,
                           "Application with identifier '%s' was not found in the directory '%s'. This can happen "
                           "if the application has not been installed by the administrator of the tenant or "
                           "consented to by any user in the tenant. You may have sent your authentication request "
                           "to the wrong tenant." % (form["client_id"], "%s.onmicrosoft.com" % self.tenant_name))
        scope = self._required(form, "scope")
        resource = self._scope(request, scope)
        secret = form.get("client_secret")
        assertion = form.get("client_assertion")
        if secret and assertion:
            raise AadError(400, "invalid_request", 90014,
                           "The request contains both 'client_secret' and 'client_assertion'; "
                           "send one client credential.")
        if assertion:
            atype = form.get("client_assertion_type")
            if not atype:
                raise AadError(400, "invalid_request", 900144,
                               "The request body must contain the following parameter: 'client_assertion_type'.")
            if atype != ASSERTION_TYPE:
                raise AadError(400, "invalid_request", 50027, "Invalid client_assertion_type '%s'." % atype)
            self._check_assertion(request, tenant, assertion)
            via = "certificate"
        elif secret:
            if secret not in self.secrets:
                raise AadError(401, "invalid_client", 7000215,
                               "Invalid client secret provided. Ensure the secret being sent in the request is the "
                               "client secret value, not the client secret ID, for a secret added to app '%s'."
                               % self.client_id)
            if self.secrets[secret]:
                raise AadError(401, "invalid_client", 7000222,
                               "The provided client secret keys for app '%s' are expired. Visit the Azure portal "
                               "to create new keys for your app: https://aka.ms/NewClientSecret, or consider using "
                               "certificate credentials for added security: https://aka.ms/certCreds."
                               % self.client_id)
            via = "secret"
        else:
            raise AadError(401, "invalid_client", 7000218,
                           "The request body must contain the following parameter: 'client_assertion' or "
                           "'client_secret'.")
        return self.issue(via, resource)

    def _scope(self, request, scope):
        scopes = scope.split()
        good = self.graph_scopes(request)
        if len(scopes) == 1 and scopes[0] in good:
            return gu.GRAPH_RESOURCE
        if len(scopes) == 1 and scopes[0].endswith("/.default") and \
                scopes[0][: -len("/.default")].lower() in self.ews_resources:
            return scopes[0][: -len("/.default")].lower()
        defaults = [s for s in scopes if s.endswith("/.default")]
        if len(scopes) == 1 and defaults:
            raise AadError(400, "invalid_resource", 500011,
                           "The resource principal named %s was not found in the tenant named %s. This can happen "
                           "if the application has not been installed by the administrator of the tenant or "
                           "consented to by any user in the tenant. You might have sent your authentication request "
                           "to the wrong tenant." % (scopes[0][: -len("/.default")], self.tenant_name))
        raise AadError(400, "invalid_scope", 1002012,
                       "The provided value for scope %s is not valid. Client credential flows must have a scope "
                       "value with /.default suffixed to the resource identifier (application ID URI)." % scope)

    def _check_assertion(self, request, tenant, assertion):
        try:
            header, claims, signing_input, sig = _jwt_parts(assertion)
        except (ValueError, UnicodeDecodeError):
            raise AadError(401, "invalid_client", 50027, "JWT token is invalid or malformed.")
        cert = self._assertion_key(header)
        alg = header.get("alg")
        try:
            _verify(cert.public_key, alg, signing_input, sig)
        except (InvalidSignature, TypeError, ValueError):
            raise AadError(401, "invalid_client", 700027, "Client assertion failed signature validation.")
        auds = {self.token_endpoint(request, t) for t in self.tenant_names() | {tenant}}
        aud = claims.get("aud")
        if aud not in {a.lower() for a in auds} and aud not in auds:
            raise AadError(401, "invalid_client", 50027,
                           "JWT token is invalid or malformed: the audience '%s' is not this tenant's token "
                           "endpoint '%s'." % (aud, self.token_endpoint(request, tenant)))
        if str(claims.get("iss", "")).lower() != self.client_id:
            raise AadError(401, "invalid_client", 700021,
                           "Client assertion application identifier doesn't match 'client_id' parameter. Review "
                           "the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/"
                           "active-directory-certificate-credentials .")
        if claims.get("sub") != claims.get("iss"):
            raise AadError(401, "invalid_client", 50048, "Subject mismatches Issuer claim in the client assertion.")
        if not claims.get("jti"):
            raise AadError(401, "invalid_client", 50027, "JWT token is invalid or malformed: it has no 'jti' claim.")
        self._assertion_times(claims)

    def _assertion_key(self, header):
        s256, s1, x5c = header.get("x5t#S256"), header.get("x5t"), header.get("x5c")
        # base64url with or without padding: MSAL Python pads x5t.
        s256 = s256.rstrip("=") if isinstance(s256, str) else None
        s1 = s1.rstrip("=") if isinstance(s1, str) else None
        if not (s256 or s1 or x5c):
            raise AadError(401, "invalid_client", 700027,
                           "Client assertion failed signature validation: its header names no certificate "
                           "(x5t#S256, x5t or x5c).")
        for c in self.certs:
            if s256 and s256 == gu.b64url(c.sha256):
                return c
            if s1 and s1 == gu.b64url(c.sha1):
                return c
        if isinstance(x5c, list) and x5c:
            for c in self.certs:
                if x5c[0] == _b64(c.der):
                    return c
        thumb = s1 or s256 or "x5c"
        try:
            thumb = gu.b64url_decode(thumb).hex().upper()
        except ValueError:
            pass
        raise AadError(401, "invalid_client", 700027,
                       "The certificate with identifier used to sign the client assertion is not registered on "
                       "application. [Reason - The key was not found., Thumbprint of key used by client: '%s', "
                       "Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured "
                       "keys for app Id '%s'.]" % (thumb, self.client_id))

    @staticmethod
    def _assertion_times(claims):
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")

        def stamp(v):
            try:
                return datetime.fromtimestamp(float(v), gu.UTC).strftime("%m/%d/%Y %H:%M:%S")
            except (TypeError, ValueError, OverflowError):
                return str(v)

        def bad():
            return AadError(401, "invalid_client", 700024,
                            "Client assertion is not within its valid time range. Current time: %s, assertion "
                            "valid from %s, expiry time of assertion %s. Review the documentation at "
                            "https://docs.microsoft.com/en-us/azure/active-directory/develop/"
                            "active-directory-certificate-credentials ." % (stamp(now), stamp(nbf) if nbf else "-",
                                                                             stamp(exp)))

        for v in (exp, nbf):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise bad()
        if exp is None or exp < now - CLOCK_SKEW or exp > now + MAX_ASSERTION_LIFETIME:
            raise bad()
        if nbf is not None and (nbf > now + CLOCK_SKEW or nbf > exp):
            raise bad()

    # -- access tokens ------------------------------------------------------------------

    def issue(self, via, resource=None):
        resource = resource or gu.GRAPH_RESOURCE
        roles = list(self.roles) if resource == gu.GRAPH_RESOURCE else list(EWS_ROLES)
        now = self.sim.clock.time()
        exp = now + self.token_lifetime
        uti = gu.b64url(secrets.token_bytes(16))
        iss = "https://sts.windows.net/%s/" % self.tenant_id
        claims = {"aud": resource, "iss": iss, "iat": int(now), "nbf": int(now), "exp": int(exp),
                  "aio": gu.b64url(secrets.token_bytes(24)), "app_displayname": self.app_name,
                  "appid": self.client_id, "appidacr": "2" if via == "certificate" else "1", "idp": iss,
                  "idtyp": "app", "oid": self.sp_object_id, "roles": roles, "sub": self.sp_object_id,
                  "tid": self.tenant_id, "uti": uti, "ver": "1.0"}
        header = {"typ": "JWT", "nonce": gu.b64url(secrets.token_bytes(24)), "alg": "RS256", "x5t": self.kid,
                  "kid": self.kid}
        signing_input = (gu.b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + gu.b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        value = signing_input + "." + gu.b64url(sig)
        if len(self.tokens) >= MAX_TOKENS:
            for k in [k for k, t in self.tokens.items() if t.expires <= now] or list(self.tokens)[:1000]:
                self.tokens.pop(k, None)
        tok = Token(value, self.client_id, now, exp, tuple(roles), via, uti, resource)
        self.tokens[value] = tok
        return tok

    def authenticate(self, authorization):
        """The Token an Authorization header carries, or raise GraphError 401
        (InvalidAuthenticationToken) the way Graph words it."""
        value = ""
        if authorization:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() != "bearer":
                value = ""
            value = value.strip()
        if not value:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        tok = self.tokens.get(value)
        if tok is None:
            if value.count(".") != 2:
                raise GraphError(401, "InvalidAuthenticationToken",
                                 "IDX14100: JWT is not well formed, there are no dots (.).\nThe token needs to be in "
                                 "JWS or JWE Compact Serialization Format. (JWS): "
                                 "'EncodedHeader.EndcodedPayload.EncodedSignature'.")
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
        now = self.sim.clock.time()
        if now >= tok.expires:
            raise GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        if tok.aud != gu.GRAPH_RESOURCE:
            raise GraphError(401, "InvalidAuthenticationToken", "Invalid audience.")
        return tok

    def ews_token(self, value):
        """(Token, None) when value is an access token this tenant issued for one of the EWS
        resources, live on the sim clock; else (None, the x-ms-diagnostics value on-premises
        Exchange answers with: code;reason="...";error_category="...")."""
        tok = self.tokens.get(value)
        if tok is None:
            if value.count(".") != 2:
                return None, '2000001;reason="The token should have valid JWT format.";error_category="invalid_token"'
            return None, ('2000003;reason="The token was not issued by a trusted issuer or was revoked.";'
                          'error_category="invalid_token"')
        if tok.aud not in self.ews_resources:
            return None, ('2000008;reason="The audience claim value \'%s\' is invalid for this server.";'
                          'error_category="invalid_resource"' % tok.aud)
        if self.sim.clock.time() >= tok.expires:
            return None, '2000007;reason="The token has expired.";error_category="invalid_token"'
        if "full_access_as_app" not in tok.roles:
            return None, ('2000009;reason="The token has no full_access_as_app role.";'
                          'error_category="insufficient_claims"')
        return tok, None

    def www_authenticate(self, request):
        return ('Bearer realm="", authorization_uri="%s/common/oauth2/authorize", client_id="%s"'
                % (self.base_url(request), gu.GRAPH_APP_ID))

    # -- discovery ----------------------------------------------------------------------

    async def handle_openid(self, request):
        """GET /{tenant}/v2.0/.well-known/openid-configuration (what MSAL reads)."""
        tenant = request.match_info["tenant"]
        self.sim.counters.inc("graph_requests", "openid-configuration")
        if tenant.lower() not in self.tenant_names() | {"common", "organizations"}:
            exc = AadError(400, "invalid_tenant", 90002,
                           "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are "
                           "signing into the correct cloud." % tenant)
            return web.json_response(gu.aad_body(exc, datetime.now(gu.UTC)), status=400)
        base = self.base_url(request)
        tid = self.tenant_id
        return web.json_response({
            "token_endpoint": "%s/%s/oauth2/v2.0/token" % (base, tid),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": "%s/%s/discovery/v2.0/keys" % (base, tid),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": "%s/%s/v2.0" % (base, tid),
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "%s/oidc/userinfo" % base,
            "authorization_endpoint": "%s/%s/oauth2/v2.0/authorize" % (base, tid),
            "device_authorization_endpoint": "%s/%s/oauth2/v2.0/devicecode" % (base, tid),
            "http_logout_supported": True, "frontchannel_logout_supported": True,
            "end_session_endpoint": "%s/%s/oauth2/v2.0/logout" % (base, tid),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "ver"],
            "tenant_region_scope": "EU", "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net", "msgraph_host": request.host,
        })

    async def handle_keys(self, request):
        """GET /{tenant}/discovery/v2.0/keys: the key access tokens are signed with."""
        pub = self._key.public_key().public_numbers()

        def b64int(n):
            return gu.b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        return web.json_response({"keys": [{"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
                                            "n": b64int(pub.n), "e": b64int(pub.e),
                                            "issuer": "https://sts.windows.net/%s/" % self.tenant_id}]})


def _b64(raw):
    return base64.b64encode(raw).decode()
