"""GET /, the status page (docs/status-page.md): a static, self-contained HTML page with a
Content-Security-Policy, needing no token; and, in headless Chromium against calsync syncing
ews-sim with one mailbox parked, the page lists every mailbox, shows the parked one with its
reason and the fix, shows health, and follows a presence change live over /v1/events (with a
token through fetch(), without one through EventSource). Each browser run saves a screenshot
to the test's tmp dir and to $CALSYNC_TEST_ARTIFACTS (default build-test/artifacts)."""

import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time

import aiohttp
import pytest

from apiclient import TOKEN, start_calsync
from calsyncproc import ROOT, clear_calendar, create_item, user
from simharness import PASSWORD, SVC, wait_for

MAILBOXES = [user(i) for i in range(1, 5)]
DENIED = user(3)        # ews-sim refuses the service account impersonation of this one
CHANGED = user(1)       # gets an appointment while the page is open
LIVE_CHANGE_DEADLINE = 10.0
# Markup in a subject must reach the page as text, never as elements.
SUBJECT = '<img src=x id=injected onerror="document.title=1"> Review & <b>plan</b>'

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,1000",
                  "--remote-debugging-port=0"]


@pytest.fixture(scope="module")
def sim(module_sim_factory):
    s = module_sim_factory("--mailboxes", "8")
    allowed = [user(i) for i in range(1, 9) if user(i) != DENIED]
    s.control("POST", "/accounts", {"smtp": SVC, "password": PASSWORD, "impersonation": allowed}, expect=201)
    return s


def artifacts_dir():
    d = os.environ.get("CALSYNC_TEST_ARTIFACTS") or os.path.join(ROOT, "build-test", "artifacts")
    os.makedirs(d, exist_ok=True)
    return d


# -- the page over plain HTTP ------------------------------------------------------------------


def test_page_is_static_self_contained_and_confined(sim, calsync_factory):
    cs, api = start_calsync(calsync_factory, sim, [user(5)])
    # No token needed for the page, although the API has one.
    r = api.get("/", token=None)
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    assert r.header("X-Content-Type-Options") == "nosniff"
    body = r.body
    assert body.startswith("<!DOCTYPE html>")
    assert not re.search(r"(?i)https?://", body), "the page names an external URL"
    assert not re.search(r"(?i)(src|href|action)\s*=\s*[\"']?//", body)
    # It holds no data: nothing of the synced mailboxes.
    assert user(5) not in body

    csp = r.header("Content-Security-Policy")
    assert csp, r.headers
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    # The one inline script and the one inline style are allowed by their hashes, nothing more.
    for tag in ("script", "style"):
        blocks = re.findall(r"<%s>(.*?)</%s>" % (tag, tag), re.sub(r"<!--.*?-->", "", body, flags=re.S), re.S)
        assert len(blocks) == 1, tag
        digest = base64.b64encode(hashlib.sha256(blocks[0].encode()).digest()).decode()
        assert directives[tag + "-src"] == ["'sha256-%s'" % digest], (tag, csp)
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp

    r = api.request("HEAD", "/", token=None)
    assert r.status == 200 and r.body == "" and r.header("Content-Type").startswith("text/html")
    r = api.request("POST", "/", token=None, raw=b"x")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD", r
    # Only "/" is open: the data still needs the token.
    assert api.get("/v1/users", token=None).status == 401
    assert api.get("/index.html", token=None).status == 401


# -- headless Chromium over the DevTools protocol ----------------------------------------------


class Browser:
    """Headless Chromium, driven over the DevTools protocol (one page target)."""

    def __init__(self, workdir):
        exe = shutil.which("chromium")
        assert exe, "chromium not found: install it with scripts/install-deps"
        self.dir = os.path.join(str(workdir), "chromium")
        os.makedirs(self.dir)
        self.log = open(os.path.join(str(workdir), "chromium.log"), "wb")
        # Its own process group, so that every helper process it forks goes with it.
        self.proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, "--user-data-dir=" + self.dir, "about:blank"],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.ws = self.session = None
        self.next_id = 0
        self.pending = {}
        self.problems = []  # console errors, exceptions, CSP reports

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        self.log.close()

    def output(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    async def connect(self):
        port_file = os.path.join(self.dir, "DevToolsActivePort")

        def port():
            assert self.proc.poll() is None, "chromium exited:\n" + self.output()
            if os.path.exists(port_file):
                lines = open(port_file).read().split("\n")
                return int(lines[0]) if len(lines) >= 2 and lines[0].isdigit() else None
            return None
        deadline = time.monotonic() + 20
        while not port():
            assert time.monotonic() < deadline, "chromium wrote no DevToolsActivePort:\n" + self.output()
            await asyncio.sleep(0.05)
        self.session = aiohttp.ClientSession()
        base = "http://127.0.0.1:%d" % port()
        page = None
        while page is None:
            async with self.session.get(base + "/json/list") as r:
                page = next((t for t in await r.json() if t["type"] == "page"), None)
            if page is None:
                assert time.monotonic() < deadline, "chromium has no page target"
                await asyncio.sleep(0.05)
        self.ws = await self.session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self.reader = asyncio.ensure_future(self._read())
        for domain in ("Page", "Runtime", "Log"):
            await self.call(domain + ".enable")

    async def close(self):
        if self.ws is not None:
            self.reader.cancel()
            await self.ws.close()
        if self.session is not None:
            await self.session.close()

    async def _read(self):
        async for msg in self.ws:
            m = json.loads(msg.data)
            if "id" in m:
                fut = self.pending.pop(m["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(m)
            elif m.get("method") == "Runtime.exceptionThrown":
                self.problems.append(m["params"]["exceptionDetails"].get("exception", {}).get("description")
                                     or m["params"]["exceptionDetails"].get("text"))
            elif m.get("method") == "Log.entryAdded" and m["params"]["entry"]["level"] == "error":
                e = m["params"]["entry"]
                # /readyz answers 503 while not ready, which the page shows: not a problem.
                if not (e.get("url", "").endswith("/readyz") and "503" in e["text"]):
                    self.problems.append("%s (%s)" % (e["text"], e.get("url", "")))
            elif m.get("method") == "Runtime.consoleAPICalled" and m["params"]["type"] == "error":
                self.problems.append(repr(m["params"]["args"]))

    async def call(self, method, **params):
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send_str(json.dumps({"id": self.next_id, "method": method, "params": params}))
        m = await asyncio.wait_for(fut, 20)
        assert "error" not in m, (method, m["error"])
        return m["result"]

    async def eval(self, expr):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, (expr, r["exceptionDetails"])
        return r["result"].get("value")

    async def wait(self, expr, timeout, what):
        """Polls expr until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = await self.eval(expr)
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %.1f s waiting for %s; page problems: %r"
                                     % (timeout, what, self.problems))
            await asyncio.sleep(0.05)


# The page's tables as plain data, read in the page.
READ_PAGE = """(() => {
    if (!document.getElementById('stream'))
        return null;  // still loading
    const table = (id) => [...document.querySelectorAll('#' + id + ' tbody tr')].map(
        (tr) => [...tr.cells].map((td) => td.textContent));
    const text = (id) => document.getElementById(id).textContent;
    return {users: table('users'), parked: table('parked'), health: text('health'),
            healthDetail: text('health-detail'), stream: document.getElementById('stream').dataset.state,
            lastChange: text('last-change'), message: text('message'), hash: location.hash,
            counts: Object.fromEntries(['total', 'live', 'syncing', 'unresolved', 'parked'].map(
                (k) => [k, text('n-' + k)])),
            injected: document.querySelectorAll('#injected, #users tbody img, #users tbody b').length,
            title: document.title};
})()"""


def presence_of(page, smtp):
    row = next((r for r in page["users"] if r[0] == smtp), None)
    return None if row is None else row[2]


async def drive_page(api, token, workdir, name):
    b = Browser(workdir)
    try:
        await b.connect()
        url = api.base + "/" + ("#token=" + TOKEN if token else "")
        await b.call("Page.navigate", url=url)

        def loaded(p):
            states = {r[0]: r[1] for r in p["users"]}
            return (len(p["users"]) == len(MAILBOXES) and states.get(DENIED) == "parked"
                    and p["stream"] == "open")
        await b.wait("(() => { const p = %s; return (%s) ? p : null; })()" % (
            READ_PAGE, "p && p.users.length == %d && p.stream == 'open'" % len(MAILBOXES)), 20, "the table and the stream")
        page = await b.eval(READ_PAGE)
        assert loaded(page), page
        assert page["message"] == "", page["message"]
        # Every mailbox, sorted, with its sync state; nothing else.
        assert [r[0] for r in page["users"]] == MAILBOXES, page["users"]
        for r in page["users"]:
            assert r[1] == ("parked" if r[0] == DENIED else "live"), r
            assert r[2] == ("" if r[0] == DENIED else "free"), r
        assert page["counts"] == {"total": "4", "live": "3", "syncing": "0", "unresolved": "0", "parked": "1"}
        # Health: 3 of 4 live is below ready_live (90 %), and the page says why.
        assert page["health"] == "not ready", page
        assert "3 of 4 mailboxes live" in page["healthDetail"], page
        # The parked mailbox with its reason and the fix.
        assert len(page["parked"]) == 1, page["parked"]
        smtp, reason, fix = page["parked"][0]
        assert smtp == DENIED and "ErrorImpersonateUserDenied" in reason, page["parked"]
        assert "New-ManagementRoleAssignment" in fix and "ApplicationImpersonation" in fix, fix
        assert "resync" in fix, fix
        # The token left the address bar (it stays in the tab's sessionStorage).
        assert page["hash"] == "", page["hash"]

        # A change in Exchange reaches the open page over the event stream.
        now = int(time.time())
        t0 = time.monotonic()
        create_item(api.sim, CHANGED, subject=SUBJECT, start=now - 60, end=now + 3600)
        await b.wait("(() => { const p = %s; return p && p.users.find((r) => r[0] == %s && r[2] == 'busy'); })()"
                     % (READ_PAGE, json.dumps(CHANGED)), LIVE_CHANGE_DEADLINE, "%s busy on the page" % CHANGED)
        took = time.monotonic() - t0
        assert took < LIVE_CHANGE_DEADLINE, took
        page = await b.eval(READ_PAGE)
        row = next(r for r in page["users"] if r[0] == CHANGED)
        assert row[3] == SUBJECT, row          # the subject, as text
        assert page["injected"] == 0 and page["title"] == "calsync status", page
        assert CHANGED in page["lastChange"] and "busy" in page["lastChange"], page["lastChange"]
        # The other rows did not move.
        assert presence_of(page, user(2)) == "free" and presence_of(page, DENIED) == ""
        # Nothing the page did was refused (a CSP violation or a failed request would show here).
        assert b.problems == [], b.problems

        size = (await b.call("Page.getLayoutMetrics"))["cssContentSize"]
        shot = await b.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        png = base64.b64decode(shot["data"])
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        path = os.path.join(str(workdir), name + ".png")
        with open(path, "wb") as f:
            f.write(png)
        shutil.copy(path, os.path.join(artifacts_dir(), name + ".png"))
        return took
    except BaseException:
        print("--- chromium output ---\n" + b.output())
        raise
    finally:
        try:
            await b.close()
        finally:
            b.kill()


@pytest.mark.parametrize("token", [True, False], ids=["token", "no-token"])
def test_page_in_chromium_follows_live_changes(sim, calsync_factory, tmp_path, token):
    for m in MAILBOXES:
        clear_calendar(sim, m)
    cs, api = start_calsync(calsync_factory, sim, MAILBOXES, token=token)
    api.sim = sim
    others = [m for m in MAILBOXES if m != DENIED]
    cs.wait_live(others)
    wait_for(lambda: cs.mailbox_rows()[DENIED]["state"] == "parked", timeout=30, what="%s parked" % DENIED)
    for m in others:
        cs.wait_line(m, 10, state="free")
    # The loop publishes its stats every second; wait until /readyz counts what the store says.
    wait_for(lambda: api.get("/readyz").json.get("live") == 3, timeout=10, what="/readyz to count 3 live")

    asyncio.run(drive_page(api, token, tmp_path, "status-page-" + ("token" if token else "no-token")))
