"""The simulated organisation: accounts, mailboxes, backends (mailbox servers), counters.

Mailboxes user00001..userNNNNN exist arithmetically and are materialised (with their
calendar) only when first touched, so 50,000 mailboxes cost almost nothing until used.

A Sim also holds the organisation's services as typed attributes (throttle, faults and
notify, which it makes; auth, which main makes from the options) and the hook lists the
modules register on, so that no module has to import the one it tells about a change.
"""

import collections
import hashlib
import re
from datetime import datetime, timezone

from . import calendar as calmod
from . import faults, notify, throttle
from .clock import Clock

DEFAULT_DOMAIN = "contoso.example"
NETBIOS_DOMAIN = "CONTOSO"
DEMO_RE = re.compile(r"^user(\d{5,})@(.+)$")


class Limits:
    """Throttling policy values (None = Unlimited, as with the admin's no-limits policy)."""

    FIELDS = ("ews_max_concurrency", "ews_max_subscriptions", "hanging_connection_limit", "ews_find_count_limit",
              "ews_max_burst", "ews_recharge_rate", "ews_cutoff_balance", "ews_request_cost_ms")

    def __init__(self, ews_max_concurrency=27, ews_max_subscriptions=5000, hanging_connection_limit=10,
                 ews_find_count_limit=1000):
        self.ews_max_concurrency = ews_max_concurrency
        self.ews_max_subscriptions = ews_max_subscriptions
        self.hanging_connection_limit = hanging_connection_limit
        self.ews_find_count_limit = ews_find_count_limit
        # The time budget (throttle.py): Exchange 2019's default policy values in ms
        # (EwsMaxBurst, EwsRechargeRate per hour, EwsCutoffBalance Unlimited), and the
        # cost charged per request, 0 = the budget model is off.
        self.ews_max_burst = 300000
        self.ews_recharge_rate = 900000
        self.ews_cutoff_balance = None
        self.ews_request_cost_ms = 0

    def as_dict(self):
        return {f: getattr(self, f) for f in self.FIELDS}

    def update(self, d):
        for k, v in d.items():
            if k not in self.FIELDS:
                raise ValueError("unknown limit %r; known: %s" % (k, ", ".join(self.FIELDS)))
            if v is not None and (isinstance(v, str) and v.lower() == "unlimited"):
                v = None
            if v is not None and (not isinstance(v, int) or v < 0):
                raise ValueError("limit %s must be a non-negative integer or 'unlimited'" % k)
            setattr(self, k, v)


class CloudSpec:
    """Which mailboxes start in Exchange Online (hybrid: the rest are on-premises): "none",
    "all", N (the demo mailboxes user00001..N) or demo index ranges "1-5,9"."""

    def __init__(self, spec="none"):
        self.text = str(spec).strip().lower() or "none"
        self.all = self.text == "all"
        self.ranges = []
        if self.text in ("none", "all"):
            return
        if self.text.isdigit():
            self.ranges = [(1, int(self.text))]
            return
        for part in self.text.split(","):
            lo, sep, hi = part.strip().partition("-")
            if not lo.isdigit() or (sep and not hi.isdigit()):
                raise ValueError("cloud mailboxes: expected none, all, N or ranges like 1-5,9, got %r" % spec)
            self.ranges.append((int(lo), int(hi) if sep else int(lo)))

    def __contains__(self, index):
        return self.all or any(lo <= index <= hi for lo, hi in self.ranges)


class Account:
    """A Windows account that can authenticate (the service account, or a test user)."""

    def __init__(self, smtp, password, impersonation="all", netbios=NETBIOS_DOMAIN):
        self.smtp = smtp.lower()
        self.password = password
        self.user = self.smtp.split("@", 1)[0]
        self.netbios = netbios
        # impersonation: "all" (ApplicationImpersonation, org-wide scope), "none", or a
        # set of lower-case SMTP addresses (a custom recipient scope).
        self.impersonation = impersonation

    def may_impersonate(self, mailbox):
        if self.impersonation == "all":
            return True
        if self.impersonation in (None, "none"):
            return False
        return mailbox.smtp in self.impersonation

    def describe(self):
        imp = self.impersonation
        if isinstance(imp, (set, frozenset)):
            imp = sorted(imp)
        return {"smtp": self.smtp, "user": self.user, "domain": self.netbios, "impersonation": imp}


class Backend:
    """A simulated mailbox server. Subscriptions live on the backend that created them;
    restarting it (generation += 1) loses them all."""

    def __init__(self, index, dns_domain):
        self.index = index
        self.name = "EXCH%02d" % (index + 1)
        self.fqdn = "%s.%s" % (self.name.lower(), dns_domain)
        self.generation = 1
        # The opaque value Exchange puts in X-BackEndOverrideCookie: "<server>~<number>".
        n = int(hashlib.sha1(self.fqdn.encode()).hexdigest()[:8], 16)
        self.cookie = "%s~%d" % (self.fqdn, n)

    def describe(self):
        return {"name": self.name, "fqdn": self.fqdn, "generation": self.generation, "cookie": self.cookie}


class Mailbox:
    __slots__ = ("smtp", "index", "display_name", "upn", "aliases", "backend_index", "_calendar", "sim",
                 "guid", "database", "cal_seed", "cal_anchor", "cal_log_length")

    def __init__(self, sim, smtp, index, display_name=None, backend_index=None):
        self.sim = sim
        self.smtp = smtp.lower()
        self.index = index
        local, domain = self.smtp.split("@", 1)
        self.display_name = display_name or local.replace(".", " ").title()
        # The UPN lives in the AD domain, not the mail domain, as in most real forests.
        self.upn = "%s@ad.%s" % (local, domain)
        self.aliases = {"smtp:%s.alias@%s" % (local, domain)}
        self.backend_index = backend_index if backend_index is not None else index % len(sim.backends)
        self.guid = hashlib.md5(("mbx:" + self.smtp).encode()).hexdigest()
        self.database = "DB%02d" % (self.backend_index + 1)
        self._calendar = None
        # What the calendar was generated from, so that an unchanged calendar dropped from
        # the cache (Sim.calendar_touched) comes back identical.
        self.cal_seed = None
        self.cal_anchor = None
        self.cal_log_length = 0

    @property
    def backend(self):
        return self.sim.backends[self.backend_index]

    @property
    def calendar(self):
        """The mailbox's calendar, generated from the seed on first use."""
        cal = self._calendar
        if cal is None:
            if self.cal_seed is None:
                now = self.sim.clock.now()
                self.cal_seed = self.sim.seed
                self.cal_anchor = datetime(now.year, now.month, now.day, tzinfo=timezone.utc)
            cal = calmod.Calendar.generate(self, self.cal_seed, self.cal_anchor)
            self.cal_log_length = len(cal.log)
            self._calendar = cal
        self.sim.calendar_touched(self)
        return cal

    @property
    def alias_smtp(self):
        return next(iter(self.aliases)).split(":", 1)[1]

    def describe(self):
        return {
            "smtp": self.smtp,
            "upn": self.upn,
            "aliases": sorted(a.split(":", 1)[1] for a in self.aliases),
            "display_name": self.display_name,
            "backend": self.backend.name,
            "location": "cloud" if self.sim.is_cloud(self) else "onprem",
            "calendar_generated": self._calendar is not None,
        }


class Counters:
    """Named counters with labels, read and reset over the control API."""

    def __init__(self):
        self.c = collections.defaultdict(collections.Counter)

    def inc(self, name, label="", n=1):
        self.c[name][label] += n

    def get(self, name, label=""):
        return self.c[name][label]

    def snapshot(self):
        return {name: dict(cnt) for name, cnt in self.c.items()}

    def reset(self):
        self.c.clear()


class Sim:
    def __init__(self, mailboxes=10, seed=1, domain=DEFAULT_DOMAIN, backends=2, clock=None,
                 service_account="svc@contoso.example", service_password="Passw0rd!", validate=True,
                 heartbeat_seconds=45.0, limits=None, calendar_cache=5000):
        self.domain = domain.lower()
        self.seed = seed
        self.clock = clock or Clock()
        self.validate = validate
        self.heartbeat_seconds = heartbeat_seconds
        self.limits = limits or Limits()
        self.backends = [Backend(i, self.domain) for i in range(max(1, backends))]
        self.demo_count = mailboxes
        self._mailboxes = {}  # smtp -> Mailbox (materialised or explicitly created)
        self._deleted = set()
        self._extra_index = 10_000_000  # indexes of mailboxes created by name
        self.accounts = {}
        self.bearer_tokens = {}
        self.counters = Counters()
        # Generated calendars nobody changed, least recently used first. Past
        # calendar_cache_size the oldest are dropped and generated again when next used, so
        # reading all 50,000 calendars does not keep 50,000 calendars in memory. A changed
        # calendar leaves the cache and is kept for good.
        self.calendar_cache = collections.OrderedDict()
        self.calendar_cache_size = calendar_cache
        self.service_account_smtp = self.add_account(service_account, service_password, "all").smtp
        self.latency = 0.0  # seconds added to every EWS request (--latency-ms)
        # Hybrid: which mailboxes live in Exchange Online (served by Graph, refused by EWS,
        # redirected by Autodiscover to <local>@<routing_domain>), and the moves since.
        self.cloud_spec = CloudSpec()
        self.location_overrides = {}  # smtp -> True (cloud) / False (on-premises)
        self.routing_domain = "%s.mail.onmicrosoft.com" % self.domain.split(".", 1)[0]
        # Hook lists: who registers, who calls.
        self.calendar_hooks = []  # fn(mailbox, events) per calendar change (notify); calendar.Calendar
        self.gauge_hooks = []  # fn() -> {gauge: {label: value}} (throttle, notify); GET /counters
        self.clock_hooks = []  # fn() after the clock was moved (notify: expiry sweep); POST /clock
        self.mailbox_deleted_hooks = []  # fn(smtp) (notify); DELETE /mailboxes/{smtp}
        self.shutdown_hooks = []  # async fn() (notify: cut the streams); main, before it exits
        # The services. Each registers its hooks as it is made.
        self.auth = None  # auth.Authenticator, set by main (it needs the command line)
        self.graph = None  # graph_state.Graph, set by main when --graph-listen is given
        self.throttle = throttle.Throttle(self)
        self.faults = faults.Faults(self)
        self.notify = notify.Notify(self)

    # -- accounts -----------------------------------------------------------------------

    def add_account(self, smtp, password, impersonation="all"):
        a = Account(smtp, password, impersonation)
        self.accounts[a.smtp] = a
        return a

    def lookup_account(self, username):
        """Map a user name as a client sends it ('svc', 'CONTOSO\\svc', 'svc@contoso.example')
        to (account smtp, password), or None."""
        u = username.strip().lower()
        if "\\" in u:
            dom, u = u.split("\\", 1)
            if dom not in (NETBIOS_DOMAIN.lower(), self.domain, "ad." + self.domain, ""):
                return None
        if "@" in u:
            loc, dom = u.split("@", 1)
            if dom not in (self.domain, "ad." + self.domain):
                return None
            u = loc
        a = self.accounts.get("%s@%s" % (u, self.domain))
        if a is None:
            return None
        return a.smtp, a.password

    def lookup_bearer(self, token):
        """The account a bearer token acts as: a static --bearer-token, or an access token of
        the Graph simulator's tenant for the EWS resource (Hybrid Modern Authentication: the app
        acts as the service account, whose impersonation rights it has). None, or (None,
        x-ms-diagnostics) when the token is refused."""
        acct = self.bearer_tokens.get(token)
        if acct is not None or self.graph is None:
            return acct
        tok, diag = self.graph.auth.ews_token(token)
        if tok is None:
            self.counters.inc("ews_bearer_refused", diag.split(";", 1)[0])
            return None, diag
        return self.service_account_smtp

    # -- mailboxes ------------------------------------------------------------------------

    def _demo_index(self, smtp):
        m = DEMO_RE.match(smtp)
        if not m or m.group(2) != self.domain:
            return None
        i = int(m.group(1))
        if 1 <= i <= self.demo_count and smtp == "user%05d@%s" % (i, self.domain):
            return i
        return None

    def mailbox(self, smtp):
        """The mailbox whose primary SMTP address is smtp (case-insensitive), or None."""
        if not smtp:
            return None
        smtp = smtp.strip().lower()
        mb = self._mailboxes.get(smtp)
        if mb is not None:
            return mb
        if smtp in self._deleted:
            return None
        i = self._demo_index(smtp)
        if i is None:
            if smtp in self.accounts:
                mb = Mailbox(self, smtp, self._next_extra())
                self._mailboxes[smtp] = mb
                return mb
            return None
        mb = Mailbox(self, smtp, i, display_name="User %05d" % i)
        self._mailboxes[smtp] = mb
        return mb

    def mailbox_by_any(self, address, kind="SmtpAddress"):
        """Resolve an impersonation identifier. Returns (mailbox, error_code) where
        error_code is None, 'ErrorNonExistentMailbox' or 'ErrorNonPrimarySmtpAddress'."""
        a = (address or "").strip().lower()
        if kind == "PrincipalName":
            if a.endswith("@ad." + self.domain):
                mb = self.mailbox(a.split("@", 1)[0] + "@" + self.domain)
                if mb is not None and mb.upn == a:
                    return mb, None
            return None, "ErrorNonExistentMailbox"
        mb = self.mailbox(a)
        if mb is not None:
            return mb, None
        # A secondary proxy address: SmtpAddress resolves it, PrimarySmtpAddress refuses it.
        loc, _, dom = a.partition("@")
        if loc.endswith(".alias") and dom == self.domain:
            mb = self.mailbox(loc[: -len(".alias")] + "@" + dom)
            if mb is not None:
                if kind == "PrimarySmtpAddress":
                    return mb, "ErrorNonPrimarySmtpAddress"
                return mb, None
        return None, "ErrorNonExistentMailbox"

    def _next_extra(self):
        self._extra_index += 1
        return self._extra_index

    def create_mailbox(self, smtp, display_name=None, backend=None):
        smtp = smtp.strip().lower()
        if "@" not in smtp:
            raise ValueError("mailbox address %r has no domain" % smtp)
        if self.mailbox(smtp) is not None:
            raise ValueError("mailbox %s exists" % smtp)
        self._deleted.discard(smtp)
        mb = Mailbox(self, smtp, self._next_extra(), display_name, backend)
        self._mailboxes[smtp] = mb
        return mb

    def delete_mailbox(self, smtp):
        smtp = smtp.strip().lower()
        if self.mailbox(smtp) is None:
            return False
        self._mailboxes.pop(smtp, None)
        self._deleted.add(smtp)
        return True

    def grow_demo(self, count):
        """Make demo mailboxes user00001..user<count> exist (bulk creation)."""
        if count > self.demo_count:
            self.demo_count = count
        return self.demo_count

    def mailbox_count(self):
        extra = sum(1 for m in self._mailboxes.values() if self._demo_index(m.smtp) is None)
        demo_deleted = sum(1 for s in self._deleted if self._demo_index(s) is not None)
        return self.demo_count - demo_deleted + extra

    def materialised(self):
        return list(self._mailboxes.values())

    def calendar_touched(self, mb):
        cache = self.calendar_cache
        cache[mb.smtp] = mb
        cache.move_to_end(mb.smtp)
        while len(cache) > self.calendar_cache_size:
            _, old = cache.popitem(last=False)
            cal = old._calendar
            if cal is not None and cal.pristine(old.cal_log_length):
                old._calendar = None

    # -- hybrid: on-premises or Exchange Online -------------------------------------------------

    def is_cloud(self, mb):
        """True when the mailbox lives in Exchange Online."""
        v = self.location_overrides.get(mb.smtp)
        if v is not None:
            return v
        return self._demo_index(mb.smtp) is not None and mb.index in self.cloud_spec

    def set_cloud(self, mb, cloud):
        self.location_overrides[mb.smtp] = bool(cloud)

    def cloud_target(self, mb):
        """The targetAddress of a cloud mailbox's on-premises mail user (RemoteMailbox)."""
        return "%s@%s" % (mb.smtp.split("@", 1)[0], self.routing_domain)

    def moving(self, mb):
        """True while a mailbox move window (POST /faults/mailboxes/move or /graph/mailboxes/move) lasts."""
        until = self.faults.moving.get(mb.smtp)
        return until is not None and self.clock.time() < until

    def backend_by_cookie(self, cookie):
        for b in self.backends:
            if b.cookie == cookie:
                return b
        return None
