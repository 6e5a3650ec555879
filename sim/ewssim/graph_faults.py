"""Throttling and faults of the Graph simulator (sim.graph.faults).

* Outlook's per-app-per-mailbox concurrency limit (4 requests in flight for one app and one
  mailbox): one more gets 429 ApplicationThrottled "Application is over its
  MailboxConcurrency limit." with Retry-After. The requests of one $batch that run at the
  same time count together, so a batch of more than 4 requests to one mailbox has some
  answered 429 inside the batch, as Exchange Online does.
* Faults on demand: forced 429/503/500 answers (with Retry-After) for the next N matching
  requests, slow answers (held while the request holds its concurrency slot), and dropped
  or delayed change notifications.
"""

import collections
import itertools

from .graph_util import GraphError

REQUEST_KINDS = ("http_429", "http_503", "http_500", "delay")
NOTIFY_KINDS = ("notify_drop", "notify_delay")
KINDS = REQUEST_KINDS + NOTIFY_KINDS
KEYS = {"kind", "count", "operation", "mailbox", "subscription", "retry_after", "code", "message", "seconds"}
DEFAULTS = {
    "http_429": ("ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
    "http_503": ("ServiceUnavailable", "The service is temporarily unavailable. Please retry later."),
    "http_500": ("UnknownError", "An internal server error occurred."),
}


class Limits:
    FIELDS = ("mailbox_concurrency", "concurrency_retry_after_seconds")

    def __init__(self):
        self.mailbox_concurrency = 4  # per app and mailbox (None: unlimited)
        self.concurrency_retry_after_seconds = 1

    def as_dict(self):
        return {f: getattr(self, f) for f in self.FIELDS}

    def update(self, d):
        for k, v in d.items():
            if k not in self.FIELDS:
                raise ValueError("unknown limit %r; known: %s" % (k, ", ".join(self.FIELDS)))
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError("%s must be a non-negative integer or null" % k)
            setattr(self, k, v)


class Fault:
    __slots__ = ("id", "kind", "count", "operation", "mailbox", "subscription", "params", "hits")

    def __init__(self, fid, kind, count, operation, mailbox, subscription, params):
        self.id = fid
        self.kind = kind
        self.count = count
        self.operation = operation
        self.mailbox = mailbox
        self.subscription = subscription
        self.params = params
        self.hits = 0

    def describe(self):
        return {"id": self.id, "kind": self.kind, "count": self.count, "hits": self.hits,
                "operation": sorted(self.operation) if self.operation else None, "mailbox": self.mailbox,
                "subscription": self.subscription, **self.params}


class GraphFaults:
    def __init__(self, sim):
        self.sim = sim
        self.limits = Limits()
        self.items = []
        self.inflight = collections.Counter()  # (client id, smtp) -> requests in flight
        self._ids = itertools.count(1)
        sim.gauge_hooks.append(self.gauges)

    def gauges(self):
        return {"graph_requests_in_flight": {"total": sum(self.inflight.values())}}

    # -- concurrency -------------------------------------------------------------------

    def enter(self, call):
        """Take a concurrency slot for the call's (app, mailbox); raise 429 when full.
        Returns the key to leave with, or None when nothing was taken."""
        mb = call.mailbox
        if mb is None or call.token is None:
            return None
        key = (call.token.client_id, mb.smtp)
        limit = self.limits.mailbox_concurrency
        if limit is not None and self.inflight[key] >= limit:
            self.sim.counters.inc("graph_429", "MailboxConcurrency")
            raise GraphError(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                             {"Retry-After": str(self.limits.concurrency_retry_after_seconds)})
        self.inflight[key] += 1
        return key

    def leave(self, key):
        if key is None:
            return
        self.inflight[key] -= 1
        if self.inflight[key] <= 0:
            del self.inflight[key]

    # -- request faults ----------------------------------------------------------------

    def _matches(self, f, call):
        if f.operation and call.op not in f.operation:
            return False
        if f.mailbox and (call.mailbox is None or call.mailbox.smtp != f.mailbox):
            return False
        return True

    def _consume(self, f):
        f.hits += 1
        if f.count is not None:
            f.count -= 1
            if f.count <= 0:
                self.items.remove(f)

    def before(self, call):
        """The first matching request fault: raises its GraphError, or returns the sim
        seconds a delay fault adds (0 when none)."""
        delay = 0.0
        for f in list(self.items):
            if f.kind not in REQUEST_KINDS or not self._matches(f, call):
                continue
            self._consume(f)
            self.sim.counters.inc("graph_faults_injected", f.kind)
            if f.kind == "delay":
                delay += f.params["seconds"]
                continue
            code, message = DEFAULTS[f.kind]
            headers = {}
            if f.params.get("retry_after") is not None:
                headers["Retry-After"] = str(f.params["retry_after"])
            status = int(f.kind[5:])
            if status == 429:
                self.sim.counters.inc("graph_429", "fault")
            raise GraphError(status, f.params.get("code") or code, f.params.get("message") or message, headers)
        return delay

    def notify_action(self, sub):
        """('drop',) or ('delay', sim seconds) for the next POST to sub, or None."""
        for f in list(self.items):
            if f.kind not in NOTIFY_KINDS:
                continue
            if f.subscription and f.subscription != sub.id:
                continue
            if f.mailbox and f.mailbox != sub.smtp:
                continue
            self._consume(f)
            self.sim.counters.inc("graph_faults_injected", f.kind)
            if f.kind == "notify_drop":
                return ("drop",)
            return ("delay", f.params["seconds"])
        return None

    # -- control -----------------------------------------------------------------------

    def add(self, d):
        unknown = set(d) - KEYS
        if unknown:
            raise ValueError("unknown keys %s; known: %s" % (sorted(unknown), ", ".join(sorted(KEYS))))
        kind = d.get("kind")
        if kind not in KINDS:
            raise ValueError("kind must be one of %s" % ", ".join(KINDS))
        count = d.get("count", 1)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or null (until cleared)")
        op = d.get("operation")
        if isinstance(op, str):
            op = {op}
        elif isinstance(op, list) and all(isinstance(x, str) for x in op):
            op = set(op)
        elif op is not None:
            raise ValueError("operation must be a name or a list of names")
        params = {}
        if kind in ("delay", "notify_delay"):
            s = d.get("seconds")
            if isinstance(s, bool) or not isinstance(s, (int, float)) or s < 0:
                raise ValueError("%s needs 'seconds' (sim seconds >= 0)" % kind)
            params["seconds"] = float(s)
        if kind in DEFAULTS:
            ra = d.get("retry_after")
            if ra is not None and (isinstance(ra, bool) or not isinstance(ra, int) or ra < 0):
                raise ValueError("retry_after must be whole seconds >= 0")
            params["retry_after"] = ra if ra is not None else (10 if kind == "http_429" else None)
            for k in ("code", "message"):
                if d.get(k) is not None:
                    params[k] = str(d[k])
        mailbox = d.get("mailbox")
        f = Fault(next(self._ids), kind, count, op, mailbox.lower() if isinstance(mailbox, str) else None,
                  d.get("subscription"), params)
        self.items.append(f)
        return f

    def clear(self, fid=None):
        if fid is None:
            n = len(self.items)
            self.items.clear()
            return n
        before = len(self.items)
        self.items = [f for f in self.items if f.id != fid]
        return before - len(self.items)

    def describe(self):
        return {"faults": [f.describe() for f in self.items], "limits": self.limits.as_dict(),
                "in_flight": {"%s|%s" % k: v for k, v in self.inflight.items()}}
