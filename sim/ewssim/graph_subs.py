"""Graph change notifications: subscriptions on users/{id}/events, the validation
handshake, change notifications POSTed to the client's notificationUrl with retries and
back-off, lifecycle notifications (reauthorizationRequired, subscriptionRemoved, missed)
and expiry on the sim clock.

The service (sim.graph.subs, made by graph_state) registers on the sim's hook lists: the
calendar's changes (its feeder), clock changes (an expiry sweep, and it wakes the retry
timers), the counters' gauges and shutdown. Network timeouts (the 10 s validation answer,
the delivery answer) are real seconds; expiry and retry back-off are sim time.
"""

import asyncio
import collections
import logging
import ssl
import urllib.parse
import uuid
from datetime import datetime

import aiohttp

from . import calendar as calmod
from . import graph_util as gu
from .graph_util import GraphError

log = logging.getLogger("ews-sim")

CHANGE_TYPES = ("created", "updated", "deleted")
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
MAX_CLIENT_STATE = 128


class Config:
    FIELDS = ("max_expiration_minutes", "min_expiration_minutes", "validation_timeout_seconds",
              "delivery_timeout_seconds", "retry_initial_seconds", "retry_max_interval_seconds",
              "retry_give_up_seconds", "max_per_post", "max_subscriptions_per_mailbox", "sweep_interval_seconds")

    def __init__(self):
        self.max_expiration_minutes = 10080  # Outlook event subscriptions: under 7 days
        self.min_expiration_minutes = 45  # an earlier expiry is moved to 45 minutes from now
        self.validation_timeout_seconds = 10.0  # real seconds
        self.delivery_timeout_seconds = 10.0  # real seconds
        self.retry_initial_seconds = 10.0  # sim seconds, doubled per failed attempt
        self.retry_max_interval_seconds = 1800.0
        self.retry_give_up_seconds = 4 * 3600.0  # Graph retries for up to 4 hours
        self.max_per_post = 100
        self.max_subscriptions_per_mailbox = 1000
        self.sweep_interval_seconds = 1.0  # real seconds

    def as_dict(self):
        return {f: getattr(self, f) for f in self.FIELDS}

    def update(self, d):
        for k, v in d.items():
            if k not in self.FIELDS:
                raise ValueError("unknown key %r; known: %s" % (k, ", ".join(self.FIELDS)))
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError("%s must be a number >= 0" % k)
            setattr(self, k, type(getattr(self, k))(v))


class Outbox:
    """Notifications waiting for one URL of a subscription, and the task delivering them."""

    __slots__ = ("url", "queue", "task", "failures", "first_failure", "next_attempt")

    def __init__(self, url):
        self.url = url
        self.queue = collections.deque()
        self.task = None
        self.failures = 0
        self.first_failure = None
        self.next_attempt = 0.0


class Subscription:
    __slots__ = ("id", "resource", "smtp", "user_id", "change_types", "client_state", "expiration", "created",
                 "app", "reauth_deadline", "needs_reauth", "alive", "notify", "lifecycle", "wake")

    def __init__(self, sid, resource, mb, user_id, change_types, client_state, expiration, created, app,
                 notification_url, lifecycle_url):
        self.id = sid
        self.resource = resource
        self.smtp = mb.smtp
        self.user_id = user_id
        self.change_types = change_types
        self.client_state = client_state
        self.expiration = expiration
        self.created = created
        self.app = app
        self.reauth_deadline = None
        self.needs_reauth = False
        self.alive = True
        self.notify = Outbox(notification_url)
        self.lifecycle = Outbox(lifecycle_url) if lifecycle_url else None
        self.wake = asyncio.Event()

    def json(self, call_base, creator):
        return {
            "@odata.context": call_base + "/v1.0/$metadata#subscriptions/$entity",
            "id": self.id, "resource": self.resource, "applicationId": self.app,
            "changeType": ",".join(self.change_types), "clientState": self.client_state,
            "notificationUrl": self.notify.url, "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle.url if self.lifecycle else None,
            "expirationDateTime": gu.graph_instant(datetime.fromtimestamp(self.expiration, gu.UTC)),
            "creatorId": creator, "includeResourceData": False, "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None, "encryptionCertificateId": None, "notificationUrlAppId": None,
        }

    def describe(self, sim):
        d = self.json("", None)
        d.pop("@odata.context")
        d.update(mailbox=self.smtp, needs_reauth=self.needs_reauth, queued=len(self.notify.queue),
                 failures=self.notify.failures,
                 lifecycle_queued=len(self.lifecycle.queue) if self.lifecycle else 0)
        return d


def _url_ok(url, allow_http):
    try:
        u = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return bool(u.hostname) and (u.scheme == "https" or (allow_http and u.scheme == "http"))


class Subscriptions:
    """Graph subscriptions of the tenant (sim.graph.subs)."""

    def __init__(self, sim, tenant_id, faults, user_id, ssl_context=None, allow_http=False):
        self.sim = sim
        self.tenant_id = tenant_id
        self.faults = faults  # graph_faults.GraphFaults: notify_drop / notify_delay
        self.user_id = user_id  # mailbox -> Entra user id
        self.cfg = Config()
        self.ssl_context = ssl_context
        self.allow_http = allow_http
        self.subs = {}
        self.by_mailbox = collections.defaultdict(list)
        self._session = None
        self._sweeper = None
        sim.calendar_hooks.append(self.feed)
        sim.clock_hooks.append(self.clock_moved)
        sim.gauge_hooks.append(self.gauges)
        sim.shutdown_hooks.append(self.shutdown)

    # -- plumbing -----------------------------------------------------------------------

    def session(self):
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl_context,
                                                                                limit=256))
        return self._session

    async def shutdown(self):
        if self._sweeper is not None:
            self._sweeper.cancel()
        for s in list(self.subs.values()):
            for box in (s.notify, s.lifecycle):
                if box is not None and box.task is not None:
                    box.task.cancel()
        if self._session is not None:
            await self._session.close()

    def ensure_sweeper(self):
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())

    async def _sweep_loop(self):
        while True:
            await asyncio.sleep(self.cfg.sweep_interval_seconds or 1.0)
            try:
                self.sweep()
            except Exception:  # never let the sweeper die
                log.exception("graph subscription sweep failed")

    def clock_moved(self):
        self.sweep()
        for s in self.subs.values():
            s.wake.set()

    def gauges(self):
        return {"graph_subscriptions_live": {"total": len(self.subs)},
                "graph_notifications_queued": {"total": sum(len(s.notify.queue) for s in self.subs.values())}}

    # -- create / update / delete -------------------------------------------------------

    def _expiration(self, text, now):
        if not isinstance(text, str):
            raise GraphError(400, "InvalidRequest", "expirationDateTime is required.")
        try:
            t = gu.parse_instant(text).timestamp()
        except ValueError:
            raise GraphError(400, "InvalidRequest", "expirationDateTime '%s' is not a valid date." % text)
        if t <= now:
            raise GraphError(400, "InvalidRequest", "Subscription expiration can't be in the past.")
        if t > now + self.cfg.max_expiration_minutes * 60:
            raise GraphError(400, "ExtensionError", "Subscription expiration can only be %d minutes in the future."
                             % self.cfg.max_expiration_minutes)
        return max(t, now + self.cfg.min_expiration_minutes * 60)

    async def create(self, call, resolve):
        """POST /subscriptions. resolve(resource) -> (mailbox, normalised resource) or raises."""
        body = call.body if isinstance(call.body, dict) else {}
        ct = body.get("changeType")
        if not isinstance(ct, str) or not ct:
            raise GraphError(400, "InvalidRequest", "changeType is required.")
        types = [t.strip() for t in ct.split(",") if t.strip()]
        bad = [t for t in types if t not in CHANGE_TYPES]
        if bad or not types:
            raise GraphError(400, "InvalidRequest", "Invalid 'changeType' attribute: '%s'." % ct)
        url = body.get("notificationUrl")
        if not isinstance(url, str) or not url:
            raise GraphError(400, "InvalidRequest", "notificationUrl is required.")
        if not _url_ok(url, self.allow_http):
            raise GraphError(400, "InvalidRequest", "The notificationUrl must be an absolute https URL.")
        lurl = body.get("lifecycleNotificationUrl")
        if lurl is not None and (not isinstance(lurl, str) or not _url_ok(lurl, self.allow_http)):
            raise GraphError(400, "InvalidRequest", "The lifecycleNotificationUrl must be an absolute https URL.")
        state = body.get("clientState")
        if state is not None and (not isinstance(state, str) or len(state) > MAX_CLIENT_STATE):
            raise GraphError(400, "InvalidRequest", "clientState must be a string of at most %d characters."
                             % MAX_CLIENT_STATE)
        if body.get("includeResourceData"):
            raise GraphError(400, "InvalidRequest",
                             "includeResourceData needs an encryptionCertificate; the simulator sends "
                             "notifications without resource data only.")
        resource = body.get("resource")
        if not isinstance(resource, str) or not resource:
            raise GraphError(400, "InvalidRequest", "resource is required.")
        now = self.sim.clock.time()
        expiration = self._expiration(body.get("expirationDateTime"), now)
        mb, resource = resolve(resource)
        if len(self.by_mailbox.get(mb.smtp, ())) >= self.cfg.max_subscriptions_per_mailbox:
            raise GraphError(403, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; Reason: "
                             "The maximum number of subscriptions for this mailbox has been reached.]")
        await self.validate_url(url)
        if lurl:
            await self.validate_url(lurl)
        sub = Subscription(str(uuid.uuid4()), resource, mb, self.user_id(mb), types, state, expiration, now,
                           call.token.client_id, url, lurl)
        self.subs[sub.id] = sub
        self.by_mailbox[mb.smtp].append(sub)
        self.sim.counters.inc("graph_subscriptions", "created")
        self.ensure_sweeper()
        return sub

    def get(self, sid, app):
        sub = self.subs.get(sid)
        if sub is not None and sub.expiration <= self.sim.clock.time():
            self.remove(sub, "expired")
            sub = None
        if sub is None or sub.app != app:
            raise GraphError(404, "ResourceNotFound", "The subscription '%s' was not found." % sid)
        return sub

    async def update(self, call, sid):
        sub = self.get(sid, call.token.client_id)
        body = call.body if isinstance(call.body, dict) else {}
        unknown = set(body) - {"expirationDateTime", "notificationUrl", "@odata.type"}
        if unknown:
            raise GraphError(400, "InvalidRequest", "Only expirationDateTime and notificationUrl can be updated.")
        now = self.sim.clock.time()
        exp = self._expiration(body["expirationDateTime"], now) if "expirationDateTime" in body else None
        url = body.get("notificationUrl")
        if url is not None:
            if not isinstance(url, str) or not _url_ok(url, self.allow_http):
                raise GraphError(400, "InvalidRequest", "The notificationUrl must be an absolute https URL.")
            await self.validate_url(url)
            sub.notify.url = url
        if exp is not None:
            sub.expiration = exp
        sub.needs_reauth = False
        sub.reauth_deadline = None
        self.sim.counters.inc("graph_subscriptions", "renewed")
        return sub

    def delete(self, call, sid):
        self.remove(self.get(sid, call.token.client_id), "deleted")

    def reauthorize(self, call, sid):
        sub = self.get(sid, call.token.client_id)
        sub.needs_reauth = False
        sub.reauth_deadline = None
        self.sim.counters.inc("graph_subscriptions", "reauthorized")

    def list(self, app):
        self.sweep()
        return [s for s in self.subs.values() if s.app == app]

    def remove(self, sub, why):
        if self.subs.pop(sub.id, None) is None:
            return False
        sub.alive = False
        lst = self.by_mailbox.get(sub.smtp)
        if lst is not None:
            if sub in lst:
                lst.remove(sub)
            if not lst:
                del self.by_mailbox[sub.smtp]
        sub.wake.set()
        self.sim.counters.inc("graph_subscriptions", why)
        return True

    def sweep(self):
        now = self.sim.clock.time()
        n = 0
        for s in list(self.subs.values()):
            if s.expiration <= now:
                self.remove(s, "expired")
                n += 1
            elif s.reauth_deadline is not None and s.reauth_deadline <= now:
                self.lifecycle_event(s, "subscriptionRemoved")
                n += 1
        return n

    # -- the validation handshake -------------------------------------------------------

    async def validate_url(self, url):
        """POST url?validationToken=...; the endpoint must answer 200 text/plain with the token."""
        token = "Validation: Testing client application reachability for subscription Request-Id: %s" % uuid.uuid4()
        sep = "&" if urllib.parse.urlsplit(url).query else "?"
        target = url + sep + "validationToken=" + urllib.parse.quote(token, safe="")
        self.sim.counters.inc("graph_validations", "sent")
        try:
            timeout = aiohttp.ClientTimeout(total=self.cfg.validation_timeout_seconds)
            async with self.session().post(target, data=b"", timeout=timeout,
                                           headers={"Content-Type": "text/plain; charset=utf-8"}) as r:
                text = await r.text(errors="replace")
                ctype = r.headers.get("Content-Type", "")
                status = r.status
        except asyncio.TimeoutError:
            self.sim.counters.inc("graph_validations", "timeout")
            raise GraphError(400, "InvalidRequest", "Subscription validation request timed out.")
        except (aiohttp.ClientError, OSError, ssl.SSLError) as exc:
            self.sim.counters.inc("graph_validations", "unreachable")
            log.info("graph validation of %s failed: %s", url, exc)
            raise GraphError(400, "ValidationError", "Subscription validation request failed. Notification endpoint "
                             "must respond with 200 OK to validation request.")
        if status != 200:
            self.sim.counters.inc("graph_validations", "status_%d" % status)
            raise GraphError(400, "ValidationError", "Subscription validation request failed. Notification endpoint "
                             "must respond with 200 OK to validation request.")
        if text != token or not ctype.lower().startswith("text/plain"):
            self.sim.counters.inc("graph_validations", "mismatch")
            raise GraphError(400, "ValidationError", "Subscription validation request failed. Response must exactly "
                             "match validationToken query parameter.")
        self.sim.counters.inc("graph_validations", "ok")

    # -- change notifications -----------------------------------------------------------

    def feed(self, mailbox, events):
        """The calendar changed (calendar hook): queue change notifications."""
        subs = self.by_mailbox.get(mailbox.smtp)
        if not subs:
            return
        cal_folder = calmod.folder_id(mailbox)[0]
        changes = []
        for ev in events:
            if ev.get("folder_event"):
                continue
            t = ev.get("type")
            if t == "CreatedEvent" and ev.get("parent_folder_id") == cal_folder:
                changes.append(("created", ev["item_id"], ev.get("change_key")))
            elif t == "ModifiedEvent" and ev.get("parent_folder_id") == cal_folder:
                changes.append(("updated", ev["item_id"], ev.get("change_key")))
            elif t == "MovedEvent" and ev.get("old_parent_folder_id") == cal_folder:
                changes.append(("deleted", ev["old_item_id"], None))
            elif t == "DeletedEvent" and ev.get("parent_folder_id") == cal_folder:
                changes.append(("deleted", ev["item_id"], None))
        if not changes:
            return
        now = self.sim.clock.time()
        for sub in list(subs):
            if sub.expiration <= now:
                self.remove(sub, "expired")
                continue
            for ctype, item_id, ck in changes:
                if ctype not in sub.change_types:
                    continue
                rid = gu.rest_id(item_id)
                res = "Users/%s/Events/%s" % (sub.user_id, rid)
                data = {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": res}
                if ck:
                    data["@odata.etag"] = 'W/"%s"' % ck
                data["id"] = rid
                n = {"subscriptionId": sub.id,
                     "subscriptionExpirationDateTime": gu.graph_instant(datetime.fromtimestamp(sub.expiration,
                                                                                               gu.UTC)),
                     "changeType": ctype, "resource": res, "resourceData": data, "clientState": sub.client_state,
                     "tenantId": self.tenant_id}
                if sub.client_state is None:
                    del n["clientState"]
                sub.notify.queue.append(n)
                self.sim.counters.inc("graph_notifications", "queued")
            self._kick(sub, sub.notify)

    def lifecycle_event(self, sub, event, deadline_seconds=None):
        """Send a lifecycle notification (when the subscription has a lifecycle URL) and act
        on it: subscriptionRemoved removes the subscription, missed drops what is queued,
        reauthorizationRequired waits for a reauthorize (or renewal) within deadline_seconds."""
        now = self.sim.clock.time()
        if sub.lifecycle is not None:
            n = {"subscriptionId": sub.id,
                 "subscriptionExpirationDateTime": gu.graph_instant(datetime.fromtimestamp(sub.expiration, gu.UTC)),
                 "tenantId": self.tenant_id, "clientState": sub.client_state, "lifecycleEvent": event}
            if sub.client_state is None:
                del n["clientState"]
            sub.lifecycle.queue.append(n)
            self.sim.counters.inc("graph_lifecycle_notifications", event)
            self._kick(sub, sub.lifecycle, keep_alive=True)
        if event == "subscriptionRemoved":
            self.remove(sub, "removed")
        elif event == "missed":
            dropped = len(sub.notify.queue)
            sub.notify.queue.clear()
            self.sim.counters.inc("graph_notifications", "missed", dropped)
        elif event == "reauthorizationRequired":
            sub.needs_reauth = True
            sub.reauth_deadline = now + deadline_seconds if deadline_seconds else None

    def mailbox_left(self, smtp):
        """The mailbox moved back on-premises: its subscriptions are removed (subscriptionRemoved)."""
        subs = list(self.by_mailbox.get(smtp, ()))
        for s in subs:
            self.lifecycle_event(s, "subscriptionRemoved")
        return len(subs)

    def _kick(self, sub, box, keep_alive=False):
        if box.task is not None and not box.task.done():
            sub.wake.set()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a unit test of the model): deliver later
            return
        box.task = loop.create_task(self._deliver(sub, box, keep_alive))

    async def _sleep_until(self, sub, t, lifecycle=False):
        """Wait until sim time t (clock changes and removal wake us early)."""
        while sub.alive or lifecycle:
            left = t - self.sim.clock.time()
            if left <= 0:
                return
            sub.wake.clear()
            try:
                await asyncio.wait_for(sub.wake.wait(), timeout=min(self.sim.clock.real(left), 0.5))
            except asyncio.TimeoutError:
                pass

    async def _deliver(self, sub, box, lifecycle):
        """POST what box holds, retrying with back-off; gives up (and drops) after
        retry_give_up_seconds of sim time."""
        sim = self.sim
        kind = "graph_lifecycle_deliveries" if lifecycle else "graph_notifications"
        while box.queue and (sub.alive or lifecycle):
            batch = [box.queue.popleft() for _ in range(min(len(box.queue), max(1, self.cfg.max_per_post)))]
            action = None if lifecycle else self.faults.notify_action(sub)
            if action is not None and action[0] == "drop":
                sim.counters.inc(kind, "dropped_fault", len(batch))
                continue
            if action is not None and action[0] == "delay":
                await self._sleep_until(sub, sim.clock.time() + action[1])
            ok = await self._post(box.url, {"value": batch})
            if ok:
                sim.counters.inc(kind, "sent", len(batch))
                sim.counters.inc(kind, "posts")
                box.failures = 0
                box.first_failure = None
                continue
            now = sim.clock.time()
            sim.counters.inc(kind, "failed", len(batch))
            if box.first_failure is None:
                box.first_failure = now
            if now - box.first_failure >= self.cfg.retry_give_up_seconds:
                sim.counters.inc(kind, "given_up", len(batch))
                box.failures = 0
                box.first_failure = None
                if not lifecycle and sub.alive:
                    self.lifecycle_event(sub, "missed")
                continue
            for n in reversed(batch):
                box.queue.appendleft(n)
            delay = min(self.cfg.retry_initial_seconds * (2 ** box.failures), self.cfg.retry_max_interval_seconds)
            box.failures += 1
            sim.counters.inc(kind, "retries")
            await self._sleep_until(sub, now + delay, lifecycle)
        box.task = None

    async def _post(self, url, doc):
        try:
            timeout = aiohttp.ClientTimeout(total=self.cfg.delivery_timeout_seconds)
            async with self.session().post(url, json=doc, timeout=timeout,
                                           headers={"Content-Type": "application/json; charset=utf-8"}) as r:
                await r.read()
                return 200 <= r.status < 300
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError) as exc:
            log.info("graph notification to %s failed: %s", url, exc)
            return False
