"""IIS-like HTTP authentication for the simulated EWS virtual directory.

Schemes (as enabled on the EWS vdir of an Exchange 2019 server):

* ``Negotiate`` / ``NTLM`` -- the real NTLM three-leg handshake (MS-NLMP),
  connection-oriented like IIS: the NEGOTIATE (type 1) and AUTHENTICATE
  (type 3) messages must arrive on the same TCP connection, and once it
  succeeded the connection stays authenticated (later requests on it without
  an ``Authorization`` header are accepted as that account).  ``Negotiate``
  is accepted only with a raw NTLMSSP token (what non-Kerberos clients send);
  Kerberos / SPNEGO tokens get a 401.  Only NTLMv2 is accepted; the MIC is
  verified when the client says it sent one.
* Extended Protection for Authentication (IIS ``extendedProtection
  tokenChecking`` None/Allow/Require = ``off``/``allow``/``require``): over
  HTTPS the NTLMv2 response's ``MsvAvChannelBindings`` must be the MD5 of the
  channel bindings of the TLS channel (RFC 5929 ``tls-server-end-point``, the
  hash of our own certificate).  Over plain HTTP there is no channel to bind
  and nothing is checked, as on IIS.
* ``Basic`` -- per request.
* ``Bearer`` -- per request, token checked by ``bearer_lookup``.

Nothing secret (passwords, hashes, tokens, NTLM messages) is ever logged.
"""

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import ssl
import struct
import time
import weakref

from aiohttp import web
from multidict import CIMultiDict

from .md4 import md4

try:  # python3-cryptography (a dependency of python3-requests-ntlm); needed only over TLS
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
except ImportError:  # pragma: no cover - then --tls-cert fails at start-up, as it did
    x509 = None
    UnsupportedAlgorithm = None

__all__ = ["Authenticator", "ntowfv2", "ntproofstr", "rc4", "parse_av_pairs",
           "EXTENDED_PROTECTION", "leaf_cert_der", "tls_server_end_point", "channel_bindings_hash"]

log = logging.getLogger("ewssim.auth")

# --------------------------------------------------------------------------
# NTLM constants (MS-NLMP 2.2.2.5)
# --------------------------------------------------------------------------
NTLMSSP_SIGNATURE = b"NTLMSSP\x00"

NEGOTIATE_UNICODE = 0x00000001
NEGOTIATE_OEM = 0x00000002
REQUEST_TARGET = 0x00000004
NEGOTIATE_SIGN = 0x00000010
NEGOTIATE_SEAL = 0x00000020
NEGOTIATE_LM_KEY = 0x00000080
NEGOTIATE_NTLM = 0x00000200
NEGOTIATE_ANONYMOUS = 0x00000800
NEGOTIATE_ALWAYS_SIGN = 0x00008000
TARGET_TYPE_DOMAIN = 0x00010000
NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
NEGOTIATE_IDENTIFY = 0x00100000
NEGOTIATE_TARGET_INFO = 0x00800000
NEGOTIATE_VERSION = 0x02000000
NEGOTIATE_128 = 0x20000000
NEGOTIATE_KEY_EXCH = 0x40000000
NEGOTIATE_56 = 0x80000000

# Client flags the server echoes back in the CHALLENGE when requested.
_ECHO_FLAGS = (
    NEGOTIATE_SIGN
    | NEGOTIATE_SEAL
    | NEGOTIATE_ALWAYS_SIGN
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_IDENTIFY
    | NEGOTIATE_128
    | NEGOTIATE_KEY_EXCH
    | NEGOTIATE_56
)

# AV pair ids (MS-NLMP 2.2.2.1)
MSV_AV_EOL = 0
MSV_AV_NB_COMPUTER_NAME = 1
MSV_AV_NB_DOMAIN_NAME = 2
MSV_AV_DNS_COMPUTER_NAME = 3
MSV_AV_DNS_DOMAIN_NAME = 4
MSV_AV_DNS_TREE_NAME = 5
MSV_AV_FLAGS = 6
MSV_AV_TIMESTAMP = 7
MSV_AV_CHANNEL_BINDINGS = 10

_AV_FLAG_MIC_PRESENT = 0x00000002

# Windows Server 2019 (10.0 build 17763), NTLMSSP_REVISION_W2K3 = 15.
_VERSION = struct.pack("<BBH3xB", 10, 0, 17763, 15)

_FILETIME_EPOCH_DELTA = 11644473600  # seconds from 1601-01-01 to 1970-01-01

_IIS_ORDER = ("negotiate", "ntlm", "basic", "bearer")

_BEARER_CHALLENGE = (
    'Bearer client_id="00000002-0000-0ff1-ce00-000000000000", '
    'trusted_issuers="00000001-0000-0000-c000-000000000000@*", '
    'token_types="app_asserted_user_v1 service_asserted_app_v1", '
    'authorization_uri="https://login.windows.net/common/oauth2/authorize", '
    'error="invalid_token"'
)

_IIS_401_BODY = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n'
    '<html xmlns="http://www.w3.org/1999/xhtml">\r\n'
    "<head>\r\n"
    '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>\r\n'
    "<title>401 - Unauthorized: Access is denied due to invalid credentials.</title>\r\n"
    "</head>\r\n"
    "<body>\r\n"
    '<div id="header"><h1>Server Error</h1></div>\r\n'
    '<div id="content">\r\n'
    ' <div class="content-container"><fieldset>\r\n'
    "  <h2>401 - Unauthorized: Access is denied due to invalid credentials.</h2>\r\n"
    "  <h3>You do not have permission to view this directory or page using the "
    "credentials that you supplied.</h3>\r\n"
    " </fieldset></div>\r\n"
    "</div>\r\n"
    "</body>\r\n"
    "</html>\r\n"
)


#: IIS extendedProtection tokenChecking None / Allow / Require.
EXTENDED_PROTECTION = ("off", "allow", "require")


class _Malformed(Exception):
    """An NTLM message that cannot be parsed."""


# --------------------------------------------------------------------------
# Crypto helpers
# --------------------------------------------------------------------------
def _hmac_md5(key, data):
    return hmac.new(key, data, "md5").digest()


def _win_upper(s):
    """Upper-case like Windows does for NTOWFv2: per character, never
    changing the length (Python maps e.g. 'ß' to 'SS'; Windows does not)."""
    out = []
    for ch in s:
        up = ch.upper()
        out.append(up if len(up) == 1 else ch)
    return "".join(out)


def ntowfv2(password, user, domain):
    """NTOWFv2 = HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(upper(user) + domain))."""
    nt_hash = md4(password.encode("utf-16-le"))
    return _hmac_md5(nt_hash, (_win_upper(user) + domain).encode("utf-16-le"))


def ntproofstr(response_key_nt, server_challenge, temp):
    """NTProofStr = HMAC-MD5(ResponseKeyNT, ServerChallenge + temp)."""
    return _hmac_md5(response_key_nt, server_challenge + temp)


def rc4(key, data):
    """Plain RC4 (used only to unwrap the 16-byte EncryptedRandomSessionKey)."""
    s = list(range(256))
    j = 0
    klen = len(key)
    for i in range(256):
        j = (j + s[i] + key[i % klen]) & 0xFF
        s[i], s[j] = s[j], s[i]
    out = bytearray(len(data))
    i = j = 0
    for n, byte in enumerate(data):
        i = (i + 1) & 0xFF
        j = (j + s[i]) & 0xFF
        s[i], s[j] = s[j], s[i]
        out[n] = byte ^ s[(s[i] + s[j]) & 0xFF]
    return bytes(out)


# --------------------------------------------------------------------------
# Channel binding (RFC 5929 tls-server-end-point, MS-NLMP MsvAvChannelBindings)
# --------------------------------------------------------------------------
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def leaf_cert_der(pem_path):
    """DER of the first certificate in a PEM file: the one a TLS server sends
    as its own (the rest of the file is its chain). ValueError if there is none."""
    with open(pem_path, encoding="ascii", errors="replace") as f:
        m = _PEM_CERT.search(f.read())
    if m is None:
        raise ValueError("%s: no PEM certificate" % pem_path)
    return ssl.PEM_cert_to_DER_cert(m.group(0))


def tls_server_end_point(cert_der):
    """(hash name, certificate hash) for RFC 5929 section 4.1: the hash of the
    certificate's signature algorithm, except SHA-256 for MD5 and SHA-1.  An
    algorithm without a hash the cryptography module can name (RSASSA-PSS in
    Debian 12's version, Ed25519) also gets SHA-256 (a choice; RFC 5929 leaves
    Ed25519 undefined)."""
    if x509 is None:
        raise ImportError("channel binding needs python3-cryptography")
    try:
        algo = x509.load_der_x509_certificate(cert_der).signature_hash_algorithm
        name = algo.name.replace("-", "_") if algo is not None else "sha256"
    except UnsupportedAlgorithm:
        name = "sha256"
    if name in ("md5", "sha1") or name not in hashlib.algorithms_available:
        name = "sha256"
    return name, hashlib.new(name, cert_der).digest()


def channel_bindings_hash(application_data):
    """MD5 of the gss_channel_bindings_struct with no addresses (RFC 2744 layout,
    little-endian as Windows flattens it): what MsvAvChannelBindings carries."""
    return hashlib.md5(struct.pack("<IIIII", 0, 0, 0, 0, len(application_data))
                       + application_data).digest()


# --------------------------------------------------------------------------
# NTLM message parsing / building
# --------------------------------------------------------------------------
def _security_buffer(msg, field_offset):
    """Return the payload referenced by the (Len, MaxLen, Offset) field."""
    if field_offset + 8 > len(msg):
        raise _Malformed("field beyond message")
    length, _maxlen, offset = struct.unpack_from("<HHI", msg, field_offset)
    if length == 0:
        return b""
    if offset < 8 or offset + length > len(msg):
        raise _Malformed("payload out of range")
    return msg[offset:offset + length]


def parse_av_pairs(data):
    """Parse an AV_PAIR list into a list of (id, value); stops at MsvAvEOL.
    Raises _Malformed if a pair runs past the end."""
    pairs = []
    pos = 0
    while True:
        if pos + 4 > len(data):
            raise _Malformed("AV pair list not terminated")
        av_id, av_len = struct.unpack_from("<HH", data, pos)
        pos += 4
        if av_id == MSV_AV_EOL:
            return pairs
        if pos + av_len > len(data):
            raise _Malformed("AV pair out of range")
        pairs.append((av_id, data[pos:pos + av_len]))
        pos += av_len


def _message_type(msg):
    if len(msg) < 12 or msg[:8] != NTLMSSP_SIGNATURE:
        raise _Malformed("not an NTLMSSP message")
    return struct.unpack_from("<I", msg, 8)[0]


def _decode_str(raw, unicode):
    if unicode:
        if len(raw) % 2:
            raise _Malformed("odd-length unicode string")
        return raw.decode("utf-16-le")  # UnicodeDecodeError -> caller
    # OEM strings: decode as latin-1, which is what e.g. curl does when it
    # widens its OEM user/domain for the NTOWFv2 computation.
    return raw.decode("latin-1")


def _av(av_id, value):
    return struct.pack("<HH", av_id, len(value)) + value


def _filetime_now():
    return int((time.time() + _FILETIME_EPOCH_DELTA) * 10_000_000)


class _Type3:
    __slots__ = ("flags", "lm", "nt", "domain", "user", "workstation", "enc_key")


def _parse_type3(msg):
    if _message_type(msg) != 3:
        raise _Malformed("not an AUTHENTICATE message")
    if len(msg) < 64:
        raise _Malformed("AUTHENTICATE message too short")
    t3 = _Type3()
    t3.lm = _security_buffer(msg, 12)
    t3.nt = _security_buffer(msg, 20)
    domain_raw = _security_buffer(msg, 28)
    user_raw = _security_buffer(msg, 36)
    ws_raw = _security_buffer(msg, 44)
    t3.enc_key = _security_buffer(msg, 52)
    t3.flags = struct.unpack_from("<I", msg, 60)[0]
    unicode = bool(t3.flags & NEGOTIATE_UNICODE)
    t3.domain = _decode_str(domain_raw, unicode)
    t3.user = _decode_str(user_raw, unicode)
    t3.workstation = _decode_str(ws_raw, unicode)
    return t3


class _ConnState:
    """NTLM state of one TCP connection."""

    __slots__ = ("challenge", "type1", "type2", "scheme", "account", "created")

    def __init__(self):
        self.challenge = None  # 8-byte server challenge while pending
        self.type1 = None
        self.type2 = None
        self.scheme = None
        self.account = None  # set once authenticated
        self.created = time.monotonic()


# --------------------------------------------------------------------------
# Authenticator
# --------------------------------------------------------------------------
class Authenticator:
    #: at most this many connections may sit between type 1 and type 3
    MAX_PENDING = 10_000
    #: a challenge not answered within this many seconds is void
    CHALLENGE_TTL = 300.0
    #: bytes of an unauthenticated request body we read and discard to keep
    #: the connection reusable; above this the connection is closed instead
    MAX_DRAIN = 64 * 1024 * 1024

    def __init__(self, lookup, bearer_lookup, methods=("negotiate", "ntlm", "basic", "bearer"),
                 netbios_domain="CONTOSO", dns_domain="contoso.example", server_name="EXCH01",
                 extended_protection="off", tls_cert_der=None, on_failure=None):
        """lookup(username: str) -> (account_name: str, password: str) | None.
        username is what the client sent: 'svc', 'CONTOSO\\svc', 'svc@contoso.example' (the
        lookup handles mapping; for NTLM user and domain are passed as sent: lookup gets
        'DOMAIN\\user' when domain is non-empty else 'user').
        bearer_lookup(token: str) -> account_name | None.
        methods: which schemes are enabled (like IIS auth settings on the EWS vdir).
        extended_protection: 'off', 'allow' or 'require' (see set_extended_protection).
        tls_cert_der: the certificate this server presents over TLS (leaf_cert_der), from
        which the expected channel binding is computed once; without it a TLS connection
        can never satisfy a channel-binding check.
        on_failure(reason: str) is called once per failed authentication attempt (not for
        a request without credentials, nor for the CHALLENGE leg of NTLM)."""
        self.lookup = lookup
        self.bearer_lookup = bearer_lookup
        wanted = {m.lower() for m in methods}
        unknown = wanted - set(_IIS_ORDER)
        if unknown:
            raise ValueError("unknown authentication method(s): %s" % ", ".join(sorted(unknown)))
        self.methods = tuple(m for m in _IIS_ORDER if m in wanted)
        self.netbios_domain = netbios_domain
        self.dns_domain = dns_domain
        self.server_name = server_name
        self.extended_protection = "off"
        self.set_extended_protection(extended_protection)
        self.on_failure = on_failure
        self.cbt_hash_name = None  # RFC 5929 hash of our certificate: name, value
        self.cert_hash = None
        self._expected_cbt = None  # MD5 of the channel bindings, when serving TLS
        if tls_cert_der is not None:
            self.cbt_hash_name, self.cert_hash = tls_server_end_point(tls_cert_der)
            self._expected_cbt = channel_bindings_hash(b"tls-server-end-point:" + self.cert_hash)
        # transport -> _ConnState.  Weak keys: an entry goes away with its
        # (closed) transport; _sweep() additionally drops closed ones and
        # caps the number of pending challenges.
        self._conns = weakref.WeakKeyDictionary()
        self._pending = 0  # approximate count of pending states (recomputed by _sweep)
        self._next_sweep = self.MAX_PENDING

    # ------------------------------------------------------------------ API
    def set_extended_protection(self, mode):
        """'off' (IIS None: never checked), 'allow' (a channel binding the client sends
        must match; none or all-zero is fine) or 'require' (it must be there and match).
        Only NTLM over TLS is checked. Takes effect for the next AUTHENTICATE message;
        connections already authenticated stay so. ValueError on anything else."""
        if mode not in EXTENDED_PROTECTION:
            raise ValueError("extended protection must be one of %s" % ", ".join(EXTENDED_PROTECTION))
        self.extended_protection = mode

    def describe(self):
        """The settings, for the control API (nothing secret: the certificate is public)."""
        return {
            "methods": list(self.methods),
            "extended_protection": self.extended_protection,
            "channel_binding": None if self.cert_hash is None else {
                "type": "tls-server-end-point",
                "hash": self.cbt_hash_name,
                "certificate_hash": self.cert_hash.hex(),
            },
        }

    async def authenticate(self, request):
        """Return the authenticated account name, or a 401 web.Response."""
        transport = request.transport
        header = request.headers.get("Authorization", "").strip()

        if not header:
            if transport is not None:
                state = self._conns.get(transport)
                if state is not None and state.account is not None:
                    return state.account
            return await self._unauthorized(request)

        # Any Authorization header (re)starts authentication on the connection.
        state = self._conns.pop(transport, None) if transport is not None else None
        if state is not None and state.challenge is not None:
            self._pending -= 1

        scheme, _, param = header.partition(" ")
        scheme_l = scheme.lower()
        param = param.strip()

        if scheme_l in ("ntlm", "negotiate") and scheme_l in self.methods:
            return await self._ntlm(request, transport, state,
                                    "NTLM" if scheme_l == "ntlm" else "Negotiate", param)
        if scheme_l == "basic" and "basic" in self.methods:
            return await self._basic(request, param)
        if scheme_l == "bearer" and "bearer" in self.methods:
            return await self._bearer(request, param)
        # Log the scheme only if it is a known word: a client that sends a bare
        # token without a scheme must not get it written to the log.
        known = scheme_l in ("negotiate", "ntlm", "basic", "bearer", "digest", "kerberos")
        log.info("auth: unsupported or disabled scheme %s", scheme if known else "<other>")
        return await self._unauthorized(request, "unsupported-scheme")

    # ----------------------------------------------------------- responses
    def _realm(self, request):
        try:
            host = request.host or ""
        except Exception:  # pragma: no cover - defensive
            host = ""
        if host.startswith("["):
            host = host[1:].split("]", 1)[0]
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        host = "".join(c for c in host if c.isprintable() and c not in '"\\')
        return host or self.server_name

    def _challenge_headers(self, request):
        values = []
        for m in self.methods:
            if m == "negotiate":
                values.append("Negotiate")
            elif m == "ntlm":
                values.append("NTLM")
            elif m == "basic":
                values.append('Basic realm="%s"' % self._realm(request))
            elif m == "bearer":
                values.append(_BEARER_CHALLENGE)
        return values

    async def _drain(self, request):
        """Read and discard the request body so that the keep-alive
        connection can carry the next request. False if it was too big."""
        if not request.can_read_body:
            return True
        total = 0
        try:
            while True:
                chunk = await request.content.readany()
                if not chunk:
                    return True
                total += len(chunk)
                if total > self.MAX_DRAIN:
                    return False
        except Exception:
            return False

    async def _response_401(self, request, www_authenticate, extra=None):
        drained = await self._drain(request)
        headers = CIMultiDict()
        headers["Content-Type"] = "text/html"
        headers["Server"] = "Microsoft-IIS/10.0"
        for value in www_authenticate:
            headers.add("WWW-Authenticate", value)
        for k, v in (extra or {}).items():
            headers[k] = v
        headers["X-Powered-By"] = "ASP.NET"
        resp = web.Response(status=401, headers=headers, text=None,
                            body=_IIS_401_BODY.encode("ascii"))
        if not drained:
            resp.force_close()
        return resp

    async def _unauthorized(self, request, reason=None):
        """IIS's 401 with every enabled challenge; reason (a failed attempt, not a
        request without credentials) goes to on_failure."""
        if reason is not None and self.on_failure is not None:
            self.on_failure(reason)
        return await self._response_401(request, self._challenge_headers(request))

    # ---------------------------------------------------------------- Basic
    async def _basic(self, request, param):
        try:
            raw = base64.b64decode(param, validate=True)
        except (binascii.Error, ValueError):
            log.info("auth: Basic with malformed credentials")
            return await self._unauthorized(request, "malformed")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        user, sep, password = text.partition(":")
        if not sep or not user:
            log.info("auth: Basic with malformed credentials")
            return await self._unauthorized(request, "malformed")
        found = self.lookup(user)
        if found is not None:
            account, expected = found
            if hmac.compare_digest(expected.encode("utf-8"), password.encode("utf-8")):
                log.debug("auth: Basic ok user=%r account=%r", user, account)
                return account
        log.info("auth: Basic failed user=%r", user)
        return await self._unauthorized(request, "credentials")

    # --------------------------------------------------------------- Bearer
    async def _bearer(self, request, token):
        account = self.bearer_lookup(token) if token else None
        diag = None
        if isinstance(account, tuple):
            account, diag = account
        if account is not None:
            log.debug("auth: Bearer ok account=%r", account)
            return account
        log.info("auth: Bearer token rejected%s", (": " + diag) if diag else "")
        if self.on_failure is not None:
            self.on_failure("credentials")
        extra = {"x-ms-diagnostics": diag} if diag else None
        return await self._response_401(request, self._challenge_headers(request), extra)

    # ----------------------------------------------------------------- NTLM
    async def _ntlm(self, request, transport, state, scheme, param):
        try:
            msg = base64.b64decode(param, validate=True) if param else b""
            mtype = _message_type(msg)
        except (binascii.Error, ValueError, _Malformed):
            log.info("auth: %s token is not NTLMSSP (Kerberos/SPNEGO unsupported)", scheme)
            return await self._unauthorized(request, "unsupported-scheme")

        if mtype == 1:
            return await self._ntlm_type1(request, transport, scheme, msg)
        if mtype == 3:
            return await self._ntlm_type3(request, state, scheme, msg)
        log.info("auth: unexpected NTLM message type %d", mtype)
        return await self._unauthorized(request, "malformed")

    def _build_challenge(self, client_flags, challenge):
        flags = NEGOTIATE_NTLM | REQUEST_TARGET | TARGET_TYPE_DOMAIN | NEGOTIATE_TARGET_INFO \
            | NEGOTIATE_VERSION
        if client_flags & NEGOTIATE_UNICODE or not client_flags & NEGOTIATE_OEM:
            flags |= NEGOTIATE_UNICODE
            unicode = True
        else:
            flags |= NEGOTIATE_OEM
            unicode = False
        flags |= client_flags & _ECHO_FLAGS

        if unicode:
            target_name = self.netbios_domain.encode("utf-16-le")
        else:
            target_name = self.netbios_domain.upper().encode("latin-1", "replace")

        def u(s):
            return s.encode("utf-16-le")

        dns_computer = "%s.%s" % (self.server_name, self.dns_domain) if self.dns_domain \
            else self.server_name
        target_info = b"".join((
            _av(MSV_AV_NB_DOMAIN_NAME, u(self.netbios_domain)),
            _av(MSV_AV_NB_COMPUTER_NAME, u(self.server_name)),
            _av(MSV_AV_DNS_DOMAIN_NAME, u(self.dns_domain)),
            _av(MSV_AV_DNS_COMPUTER_NAME, u(dns_computer)),
            _av(MSV_AV_DNS_TREE_NAME, u(self.dns_domain)),
            _av(MSV_AV_TIMESTAMP, struct.pack("<Q", _filetime_now())),
            _av(MSV_AV_EOL, b""),
        ))
        header_len = 56
        tn_off = header_len
        ti_off = tn_off + len(target_name)
        return b"".join((
            NTLMSSP_SIGNATURE,
            struct.pack("<I", 2),
            struct.pack("<HHI", len(target_name), len(target_name), tn_off),
            struct.pack("<I", flags),
            challenge,
            b"\x00" * 8,
            struct.pack("<HHI", len(target_info), len(target_info), ti_off),
            _VERSION,
            target_name,
            target_info,
        ))

    async def _ntlm_type1(self, request, transport, scheme, msg):
        if len(msg) < 16:
            log.info("auth: NTLM NEGOTIATE too short")
            return await self._unauthorized(request, "malformed")
        client_flags = struct.unpack_from("<I", msg, 12)[0]
        challenge = os.urandom(8)
        type2 = self._build_challenge(client_flags, challenge)
        if transport is not None and not transport.is_closing():
            state = _ConnState()
            state.challenge = challenge
            state.type1 = msg
            state.type2 = type2
            state.scheme = scheme
            self._conns[transport] = state
            self._pending += 1
            if len(self._conns) > self._next_sweep or self._pending > self.MAX_PENDING:
                self._sweep()
        log.debug("auth: %s NEGOTIATE -> CHALLENGE", scheme)
        return await self._response_401(
            request, ["%s %s" % (scheme, base64.b64encode(type2).decode("ascii"))])

    async def _ntlm_type3(self, request, state, scheme, msg):
        if state is None or state.challenge is None:
            log.info("auth: %s AUTHENTICATE without a challenge on this connection", scheme)
            return await self._unauthorized(request, "no-challenge")
        if time.monotonic() - state.created > self.CHALLENGE_TTL:
            log.info("auth: %s AUTHENTICATE for an expired challenge", scheme)
            return await self._unauthorized(request, "no-challenge")
        try:
            t3 = _parse_type3(msg)
        except (_Malformed, struct.error, UnicodeDecodeError, ValueError):
            log.info("auth: %s malformed AUTHENTICATE", scheme)
            return await self._unauthorized(request, "malformed")

        nt_len = len(t3.nt)
        if not t3.user or nt_len == 0:
            log.info("auth: %s anonymous AUTHENTICATE rejected", scheme)
            return await self._unauthorized(request, "anonymous")
        if nt_len == 24:
            log.info("auth: %s NTLMv1 response rejected user=%r", scheme, t3.user)
            return await self._unauthorized(request, "ntlmv1")
        if nt_len < 16 + 28:
            log.info("auth: %s malformed NTLMv2 response user=%r", scheme, t3.user)
            return await self._unauthorized(request, "malformed")

        name = "%s\\%s" % (t3.domain, t3.user) if t3.domain else t3.user
        found = self.lookup(name)
        if found is None:
            log.info("auth: %s unknown user %r", scheme, name)
            return await self._unauthorized(request, "credentials")
        account, password = found

        if not self._verify_ntlmv2(state, msg, t3, password):
            log.info("auth: %s bad credentials for %r", scheme, name)
            return await self._unauthorized(request, "credentials")

        # The NTProofStr verified above covers the AV pairs, so the channel binding
        # read here is the one the client computed.
        problem = self._channel_binding_problem(request, t3)
        if problem is not None:
            log.info("auth: %s %s for %r (extended protection %s)", scheme, problem, name,
                     self.extended_protection)
            return await self._unauthorized(request, problem)

        # Authenticated: the connection now belongs to `account`.
        transport = request.transport
        if transport is not None:
            done = _ConnState()
            done.account = account
            done.scheme = scheme
            self._conns[transport] = done
        log.info("auth: %s ok user=%r account=%r", scheme, name, account)
        return account

    def _channel_binding_problem(self, request, t3):
        """None if the channel binding of a verified AUTHENTICATE is acceptable under the
        extended-protection setting, else the failure reason."""
        mode = self.extended_protection
        if mode == "off":
            return None
        transport = request.transport
        if transport is None or transport.get_extra_info("ssl_object") is None:
            return None  # plain HTTP: no channel to bind, IIS does not check
        value = None
        for av_id, v in parse_av_pairs(t3.nt[16 + 28:]):  # parsed fine in _verify_ntlmv2
            if av_id == MSV_AV_CHANNEL_BINDINGS:
                value = v
                break
        if value is None or value == b"\x00" * 16:
            return "channel-binding-missing" if mode == "require" else None
        # A TLS connection whose certificate we do not know can match nothing.
        if self._expected_cbt is None or not hmac.compare_digest(value, self._expected_cbt):
            return "channel-binding-mismatch"
        return None

    def _verify_ntlmv2(self, state, msg, t3, password):
        try:
            nt = t3.nt
            temp = nt[16:]
            response_key = ntowfv2(password, t3.user, t3.domain)
            proof = ntproofstr(response_key, state.challenge, temp)
            if not hmac.compare_digest(proof, nt[:16]):
                return False
            # MIC check (MS-NLMP 3.2.5.1.2) when the client flags one.
            try:
                pairs = parse_av_pairs(temp[28:])
            except _Malformed:
                return False
            mic_present = False
            for av_id, value in pairs:
                if av_id == MSV_AV_FLAGS and len(value) >= 4:
                    mic_present = bool(struct.unpack_from("<I", value)[0] & _AV_FLAG_MIC_PRESENT)
            if not mic_present:
                return True
            if len(msg) < 88:
                return False
            session_base_key = _hmac_md5(response_key, proof)
            exported = session_base_key  # KeyExchangeKey == SessionBaseKey for NTLMv2
            if t3.flags & NEGOTIATE_KEY_EXCH and len(t3.enc_key) == 16:
                exported = rc4(session_base_key, t3.enc_key)
            zeroed = msg[:72] + b"\x00" * 16 + msg[88:]
            mic = _hmac_md5(exported, state.type1 + state.type2 + zeroed)
            if not hmac.compare_digest(mic, msg[72:88]):
                log.info("auth: NTLM MIC mismatch")
                return False
            return True
        except Exception:  # never let a hostile message escape as a 500
            log.info("auth: NTLM verification error", exc_info=False)
            return False

    # --------------------------------------------------------- maintenance
    def _sweep(self):
        """Drop state of closed connections, then the oldest pending
        challenges beyond MAX_PENDING."""
        now = time.monotonic()
        for transport, state in list(self._conns.items()):
            closed = transport.is_closing()
            expired = state.challenge is not None and now - state.created > self.CHALLENGE_TTL
            if closed or expired:
                self._conns.pop(transport, None)
        pending = [t for t, s in self._conns.items() if s.challenge is not None]
        if len(pending) > self.MAX_PENDING:
            # Drop the oldest (dict order == insertion order) down to 90 % of
            # the cap, so that a flood does not make every request sweep.
            keep = self.MAX_PENDING * 9 // 10
            for transport in pending[:len(pending) - keep]:
                self._conns.pop(transport, None)
            pending = pending[len(pending) - keep:]
        self._pending = len(pending)
        self._next_sweep = max(self.MAX_PENDING, 2 * len(self._conns))

    def connection_count(self):
        """(authenticated, pending) connection states currently held."""
        auth = pending = 0
        for state in list(self._conns.values()):
            if state.account is not None:
                auth += 1
            elif state.challenge is not None:
                pending += 1
        return auth, pending
