"""The `calsync run` test harness: write a configuration for an ews-sim, start the daemon,
read its store (SQLite, read-only) and its presence output (JSON lines), move its clock, and
compare its mirror with ews-sim's calendars item by item.

Plain module, like tests/simharness.py; the fixtures built on it are in tests/sync/conftest.py.
"""

import calendar
import json
import math
import os
import signal
import sqlite3
import subprocess
import time
import urllib.parse
from datetime import datetime, timezone

from simharness import PASSWORD, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOMAIN = "contoso.example"
NTLM_USER = "CONTOSO\\svc"
PASSWORD_ENV = "CALSYNC_PASSWORD"

LIVE_DEADLINE = 30.0  # seconds for a handful of mailboxes to go live on a loaded machine
EXIT_DEADLINE = 20.0  # SIGTERM: unsubscribing is bounded at ~10 s, plus start-up slack


def calsync_binary():
    build = os.environ.get("CALSYNC_BUILD") or os.path.join(ROOT, "build")
    return os.path.join(os.path.abspath(build), "calsync")


def has_test_hooks(binary):
    """Whether binary was built with -Dtest_hooks=true: only that build reads the test clock."""
    with open(binary, "rb") as f:
        return b"CALSYNC_TEST_CLOCK_FILE" in f.read()


def user(n):
    return "user%05d@%s" % (n, DOMAIN)


def iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s):
    """xs:dateTime with Z (or an offset) -> UTC epoch seconds (int)."""
    dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return calendar.timegm(dt.astimezone(timezone.utc).timetuple())


def xml_attr(v):
    return (str(v).replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;"))


def make_config(sim, *, mode="stream", autodiscover=False, auth="ntlm", mailbox_file="mailboxes.txt",
                sync=None, window=None, presence=None, store="calsync.db", output="presence.jsonl",
                extra="", api=None):
    """The text of a CalendarSyncExchange.config.xml that points calsync at sim.

    api: the <api> element; None gives the API a free port (the default 8745 would make
    daemons that run at the same time collide), "" leaves <api> out. An <api> in extra wins."""
    if api is None:
        api = '<api listen="127.0.0.1:0"/>'
    if "<api" in extra:
        api = ""
    obj = {"stream": "EwsStream", "pull": "EwsPull"}[mode]
    if autodiscover:
        server = '<autodiscover url="%s"/>' % xml_attr(sim.info["autodiscover"])
    else:
        server = '<ews url="%s"/>' % xml_attr(sim.ews)
    if auth == "oauth":
        # EWS bearer tokens from <graph>'s app registration (pass the <graph> in extra).
        account = '<account auth="bearer" oauth="graph"/>'
    else:
        account = '<account user="%s" auth="%s" password_env="%s"/>' % (
            xml_attr(NTLM_USER if auth == "ntlm" else "svc@" + DOMAIN), auth, PASSWORD_ENV)
    s = {"debounce": "1s", "pull_interval": "5s"}
    s.update(sync or {})
    sync_el = "<sync %s/>" % " ".join('%s="%s"' % kv for kv in s.items())
    window_el = "" if window is None else "<window %s/>" % " ".join('%s="%s"' % kv for kv in window.items())
    return "\n".join([
        '<?xml version="1.0" encoding="utf-8"?>',
        "<configuration>",
        "  <calendar_sync>",
        "    <exchange>",
        "      <events>",
        '        <advise Object="%s"/>' % obj,
        "      </events>",
        "    </exchange>",
        "    <calsync>",
        "      " + server,
        "      " + account,
        '      <mailboxes file="%s"/>' % xml_attr(mailbox_file),
        "      " + sync_el,
        "      " + window_el,
        "      " + (presence or ""),
        '      <store path="%s"/>' % xml_attr(store),
        '      <output path="%s"/>' % xml_attr(output),
        "      " + api,
        "      " + extra,
        "    </calsync>",
        "  </calendar_sync>",
        "</configuration>",
        ""])


class Calsync:
    """One calsync daemon (restartable) in its own directory, against one ews-sim."""

    def __init__(self, workdir, sim, mailboxes, *, env=None, log_level="debug", **config):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.sim = sim
        self.config_path = os.path.join(self.dir, "calsync.xml")
        self.mailbox_path = os.path.join(self.dir, "mailboxes.txt")
        self.clock_path = os.path.join(self.dir, "clock.json")
        self.db_path = os.path.join(self.dir, "calsync.db")
        self.out_path = os.path.join(self.dir, "presence.jsonl")
        self.config = config
        self.env = dict(os.environ)
        self.env.pop("CALSYNC_TEST_CLOCK_FILE", None)
        self.env.update({PASSWORD_ENV: PASSWORD, "CALSYNC_TEST_CLOCK_FILE": self.clock_path,
                         "CALSYNC_LOG_LEVEL": log_level})
        self.env.update(env or {})
        self.proc = None
        self.runs = 0
        self.logs = []  # stderr file of every start, in order
        self.write_clock(offset=0)
        self.set_mailboxes(mailboxes)
        self.write_config(**config)

    # -- files ------------------------------------------------------------------------------

    def write_config(self, **config):
        self.config = config
        with open(self.config_path, "w") as f:
            f.write(make_config(self.sim, **config))

    def set_mailboxes(self, mailboxes):
        self.mailboxes = list(mailboxes)
        tmp = self.mailbox_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("# mailboxes calsync mirrors\n")
            f.write("".join(m + "\n" for m in self.mailboxes))
        os.replace(tmp, self.mailbox_path)

    def write_clock(self, offset=None, frozen=None):
        doc = {"frozen": frozen} if frozen is not None else {"offset": offset or 0}
        tmp = self.clock_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self.clock_path)

    # -- process ----------------------------------------------------------------------------

    def start(self, *extra_args):
        assert self.proc is None or self.proc.poll() is not None, "calsync already running"
        self.runs += 1
        log = os.path.join(self.dir, "stderr.%d.log" % self.runs)
        self.logs.append(log)
        self._err = open(log, "wb")
        self._outf = open(os.path.join(self.dir, "stdout.%d.log" % self.runs), "wb")
        self.proc = subprocess.Popen([calsync_binary(), "run", "-c", self.config_path, *extra_args],
                                     stdout=self._outf, stderr=self._err, env=self.env, cwd=self.dir)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_running(self):
        assert self.running(), "calsync exited with %s:\n%s" % (self.proc.returncode, self.stderr_tail())

    def signal(self, sig):
        self.assert_running()
        self.proc.send_signal(sig)

    def stop(self, timeout=EXIT_DEADLINE):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._close_files()

    def kill9(self):
        self.proc.kill()
        self.proc.wait(10)
        self._close_files()

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_files()

    def _close_files(self):
        for f in (getattr(self, "_err", None), getattr(self, "_outf", None)):
            if f is not None and not f.closed:
                f.close()

    def stderr_text(self, run=None):
        path = self.logs[-1 if run is None else run - 1]
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")

    def stderr_tail(self, lines=80):
        out = []
        for i, path in enumerate(self.logs, 1):
            with open(path, "rb") as f:
                text = f.read().decode(errors="replace").splitlines()
            out.append("--- calsync run %d stderr (last %d of %d lines) ---" % (i, min(lines, len(text)), len(text)))
            out.extend(text[-lines:])
        return "\n".join(out)

    # -- clock ------------------------------------------------------------------------------

    def set_clock(self, *, at=None, frozen=None):
        """Calendar time for calsync AND ews-sim: `at` (epoch) running on from now, or
        `frozen` at an epoch. calsync rereads its clock file on SIGUSR2."""
        if not has_test_hooks(calsync_binary()):
            raise RuntimeError("%s has no test clock: configure its build with -Dtest_hooks=true "
                               "(meson configure BUILD -Dtest_hooks=true)" % calsync_binary())
        # calsync takes whole seconds only (a JSON integer; anything else reads as 0).
        if frozen is not None:
            frozen = int(frozen)
            self.sim.control("POST", "/clock", {"freeze": frozen}, expect=200)
            self.write_clock(frozen=frozen)
        else:
            offset = int(round(at - time.time()))
            self.sim.control("POST", "/clock", {"unfreeze": True, "set": time.time() + offset}, expect=200)
            self.write_clock(offset=offset)
        if self.running():
            seen = self.stderr_text().count("test clock:")
            self.signal(signal.SIGUSR2)
            # calsync logs "test clock: offset N s" when it applied the file.
            wait_for(lambda: self.stderr_text().count("test clock:") > seen, timeout=10, interval=0.02,
                     what="calsync to apply the test clock")

    # -- store ------------------------------------------------------------------------------

    def query(self, sql, args=()):
        """Rows of a read-only query on the store, or None while it cannot be read (not
        created yet, locked)."""
        if not os.path.exists(self.db_path):
            return None
        try:
            con = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(self.db_path), uri=True, timeout=5)
            try:
                return con.execute(sql, args).fetchall()
            finally:
                con.close()
        except sqlite3.OperationalError:
            return None

    def mailbox_rows(self):
        rows = self.query("SELECT smtp, state, parked_reason, enabled, window_start_utc, window_end_utc, "
                          "ews_url, grouping FROM mailboxes")
        keys = ("smtp", "state", "parked_reason", "enabled", "window_start", "window_end", "ews_url", "grouping")
        return {r[0].lower(): dict(zip(keys, r)) for r in (rows or [])}

    def states(self):
        return {k: v["state"] for k, v in self.mailbox_rows().items() if v["enabled"]}

    def wait_live(self, smtps=None, timeout=LIVE_DEADLINE):
        smtps = [s.lower() for s in (self.mailboxes if smtps is None else smtps)]
        assert smtps, "wait_live: no mailboxes to wait for"

        def ok():
            self.assert_running()
            st = self.states()
            return all(st.get(s) == "live" for s in smtps)
        try:
            wait_for(ok, timeout=timeout, interval=0.1, what="%d mailboxes live" % len(smtps))
        except AssertionError:
            st = self.states()
            bad = {s: st.get(s) for s in smtps if st.get(s) != "live"}
            raise AssertionError("not live after %.0fs: %s" % (timeout, dict(list(bad.items())[:10])))

    def wait_streaming(self, n=None, timeout=LIVE_DEADLINE):
        """Until ews-sim has n (default: all configured) subscriptions on open streams."""
        n = len(self.mailboxes) if n is None else n
        wait_for(lambda: self.sim.counters()["streaming_subscriptions_connected"].get("total", 0) == n,
                 timeout=timeout, interval=0.1, what="%d subscriptions streaming" % n)

    def subscriptions(self):
        rows = self.query("SELECT m.smtp, s.kind, s.subscription_id FROM subscriptions s "
                          "JOIN mailboxes m ON m.id = s.mailbox_id")
        return {r[0].lower(): (r[1], r[2]) for r in (rows or [])}

    def stored_presence(self):
        rows = self.query("SELECT m.smtp, p.state, p.profile, p.forward, p.subject, p.since_utc, p.until_utc "
                          "FROM presence p JOIN mailboxes m ON m.id = p.mailbox_id")
        keys = ("state", "profile", "forward", "subject", "since", "until")
        return {r[0].lower(): dict(zip(keys, r[1:])) for r in (rows or [])}

    def presence_event_ids(self):
        return [r[0] for r in (self.query("SELECT id FROM presence_events ORDER BY id") or [])]

    def occurrences(self, smtp):
        rows = self.query(
            "SELECT o.item_id, o.change_key, o.uid, o.subject, o.location, o.organizer, o.categories, "
            "o.start_utc, o.end_utc, o.all_day, o.is_cancelled, o.is_private, o.free_busy, o.item_type "
            "FROM occurrences o JOIN mailboxes m ON m.id = o.mailbox_id WHERE m.smtp = ?", (smtp,))
        keys = ("item_id", "change_key", "uid", "subject", "location", "organizer", "categories",
                "start", "end", "all_day", "cancelled", "private", "free_busy", "type")
        return None if rows is None else [dict(zip(keys, r)) for r in rows]

    # -- presence output --------------------------------------------------------------------

    def lines(self):
        """Every complete presence line written so far (all runs: the file is appended to)."""
        if not os.path.exists(self.out_path):
            return []
        with open(self.out_path, "rb") as f:
            data = f.read().decode()
        complete = data[:data.rfind("\n") + 1] if "\n" in data else ""
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def lines_for(self, smtp):
        return [ln for ln in self.lines() if ln["user"].lower() == smtp.lower()]

    def current(self, smtp):
        ls = self.lines_for(smtp)
        return ls[-1] if ls else None

    def wait_line(self, smtp, timeout, after_id=0, what=None, **expect):
        """The first line for smtp with id > after_id; it must match expect (field: value)."""
        def new():
            self.assert_running()
            return [ln for ln in self.lines_for(smtp) if ln["id"] > after_id]
        got = wait_for(new, timeout=timeout, interval=0.05, what=what or "a presence line for %s" % smtp)
        ln = got[0]
        for k, v in expect.items():
            assert ln[k] == v, "%s: %s is %r, expected %r in %r" % (smtp, k, ln[k], v, ln)
        return ln

    def wait_state(self, smtp, timeout, what=None, **expect):
        """Until smtp's latest line matches expect; returns it."""
        def ok():
            self.assert_running()
            ln = self.current(smtp)
            return ln if ln is not None and all(ln[k] == v for k, v in expect.items()) else None
        try:
            return wait_for(ok, timeout=timeout, interval=0.05, what=what or "%s %r" % (smtp, expect))
        except AssertionError as e:
            raise AssertionError("%s; last line: %r" % (e, self.current(smtp)))

    def max_id(self):
        ls = self.lines()
        return max((ln["id"] for ln in ls), default=0)

    # -- the mirror -------------------------------------------------------------------------

    def mirror_diff(self, smtp):
        """Differences between the store's occurrences of smtp and ews-sim's CalendarView over
        the stored window, item by item; [] when equal."""
        row = self.mailbox_rows().get(smtp.lower())
        if row is None or row["window_start"] is None:
            return ["%s: no window stored" % smtp]
        stored = self.occurrences(smtp)
        if stored is None:
            return ["%s: store not readable" % smtp]
        return compare_mirror(self.sim, smtp, row["window_start"], row["window_end"], stored)

    def wait_mirrors_equal(self, smtps=None, timeout=LIVE_DEADLINE):
        smtps = self.mailboxes if smtps is None else smtps
        last = []

        def ok():
            self.assert_running()
            last[:] = [d for s in smtps for d in self.mirror_diff(s)]
            return not last
        try:
            wait_for(ok, timeout=timeout, interval=0.25, what="mirrors equal")
        except AssertionError as e:
            raise AssertionError("%s; %d differences, first: %s" % (e, len(last), last[:8]))


FREE_BUSY = {"Free": "free", "Tentative": "tentative", "Busy": "busy", "OOF": "oof",
             "WorkingElsewhere": "working-elsewhere", "NoData": "no-data"}
ITEM_TYPE = {"Single": "single", "Occurrence": "occurrence", "Exception": "exception"}


def sim_view(sim, smtp, start, end):
    q = urllib.parse.urlencode({"start": iso(start), "end": iso(end)})
    return sim.control("GET", "/mailboxes/%s/view?%s" % (smtp, q), expect=200)[1]["items"]


def sim_items(sim, smtp):
    return {it["id"]: it for it in sim.control("GET", "/mailboxes/%s/items" % smtp, expect=200)[1]["items"]}


def expected_occurrences(sim, smtp, start, end):
    """ews-sim's view of smtp over [start, end) in the store's terms, keyed by item id."""
    views = sim_view(sim, smtp, start, end)
    masters = sim_items(sim, smtp) if views else {}
    out = {}
    for v in views:
        master = masters.get(v.get("master_id", v["id"]), {})
        org = master.get("organizer") or {}
        out[v["id"]] = {
            "item_id": v["id"], "change_key": v["change_key"], "uid": v["uid"],
            "subject": v["subject"], "location": v["location"],
            "organizer": (org.get("email"), org.get("name")),
            "categories": master.get("categories") or [],
            "start": parse_iso(v["start"]), "end": parse_iso(v["end"]),
            "all_day": int(bool(v["all_day"])), "cancelled": int(bool(v["cancelled"])),
            "private": int(v["sensitivity"] in ("Private", "Confidential")),
            "free_busy": FREE_BUSY[v["status"]], "type": ITEM_TYPE[v["type"]],
        }
    return out


def ews_id(item_id):
    """An item id in EWS's form: Graph writes the same ids base64url-encoded ('-' for '/', '_'
    for '+'), EWS base64; the simulator's view lists them as EWS does."""
    return item_id.replace("-", "/").replace("_", "+")


def compare_mirror(sim, smtp, start, end, stored):
    want = expected_occurrences(sim, smtp, start, end)
    have = {ews_id(o["item_id"]): dict(o, item_id=ews_id(o["item_id"])) for o in stored}
    diffs = []
    for iid in sorted(set(want) - set(have)):
        diffs.append("%s: missing %s %r" % (smtp, iid[-12:], want[iid]["subject"]))
    for iid in sorted(set(have) - set(want)):
        diffs.append("%s: extra %s %r" % (smtp, iid[-12:], have[iid]["subject"]))
    for iid in sorted(set(want) & set(have)):
        w, h = want[iid], dict(have[iid])
        h["categories"] = [] if h["categories"] is None else h["categories"].split("\x1f")[:-1]
        for k, wv in w.items():
            hv = h[k]
            if k == "organizer":
                ok = hv == (wv[0] if wv[0] else wv[1])
            else:
                ok = hv == wv
            if not ok:
                diffs.append("%s: %s %s: store %r, ews-sim %r" % (smtp, iid[-12:], k, hv, wv))
    return diffs


# -- ews-sim helpers ---------------------------------------------------------------------------


def clear_calendar(sim, smtp):
    sim.control("POST", "/mailboxes/%s/calendar/clear" % smtp, {}, expect=200)


def create_item(sim, smtp, **fields):
    fields.setdefault("status", "Busy")
    for k in ("start", "end"):
        if isinstance(fields.get(k), (int, float)):
            fields[k] = iso(fields[k])
    return sim.control("POST", "/mailboxes/%s/items" % smtp, fields, expect=201)[1]


def item_path(smtp, item_id):
    return "/mailboxes/%s/items/%s" % (smtp, urllib.parse.quote(item_id, safe=""))


def patch_item(sim, smtp, item_id, **fields):
    for k in ("start", "end"):
        if isinstance(fields.get(k), (int, float)):
            fields[k] = iso(fields[k])
    return sim.control("PATCH", item_path(smtp, item_id), fields, expect=200)[1]


def delete_item(sim, smtp, item_id, hard=False):
    return sim.control("DELETE", item_path(smtp, item_id) + ("?hard=1" if hard else ""), expect=200)[1]


def counter(counters, name, label=None):
    v = counters.get(name, {})
    if label is None:
        return sum(v.values()) if isinstance(v, dict) else v
    return v.get(label, 0) if isinstance(v, dict) else 0


def groups_needed(n):
    return math.ceil(n / 200)


def sim_subscriptions(sim, smtp=None):
    """ews-sim's live subscriptions (of smtp). Its "count" is the server's total, whatever the
    filter, so the list is what counts."""
    q = "?limit=100000" + ("&mailbox=%s" % smtp if smtp else "")
    return sim.control("GET", "/notify/subscriptions" + q, expect=200)[1]["subscriptions"]


def sim_streams(sim):
    return sim.control("GET", "/notify/streams", expect=200)[1]


# ---- for the fixtures (tests/conftest.py, tests/api/conftest.py) ----


def failed(node):
    """Whether the test node failed in set-up or in its body (for dumping daemon logs)."""
    return any(getattr(node, "rep_" + w, None) is not None and getattr(node, "rep_" + w).failed
               for w in ("setup", "call"))


def calsync_pool(cls, new_dir, has_failed):
    """The body of a calsync factory fixture: yields make(sim, mailboxes, name=None, **config)
    -> cls (not started) in new_dir(name, index); afterwards kills every daemon it made and,
    when has_failed(), prints their stderr and their ews-sim's log."""
    procs = []

    def make(sim, mailboxes, name=None, **kw):
        c = cls(new_dir(name, len(procs)), sim, mailboxes, **kw)
        procs.append(c)
        return c

    yield make
    for c in procs:
        c.cleanup()
    if has_failed():
        for c in procs:
            if c.logs:
                print(c.stderr_tail(150))
                print("--- ews-sim log (last 40 lines) ---")
                print("\n".join(c.sim.output().splitlines()[-40:]) if not c.sim.log.closed else "(closed)")
