"""The ews-sim test harness: start a simulator on ports chosen at run time, talk EWS and the
control API to it. Plain module (not a conftest) so that every test directory can import it;
the pytest fixtures built on it are in tests/conftest.py."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SIM = os.path.join(ROOT, "sim", "ews-sim")
SCHEMA_DIR = os.path.join(ROOT, "data", "ews-schema")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
# OPENSSL_CONF for NTLM clients started as subprocesses (see the file's comment).
LEGACY_OPENSSL_CONF = os.path.join(ROOT, "tests", "openssl-legacy.cnf")
sys.path.insert(0, os.path.join(ROOT, "sim"))

SVC = "svc@contoso.example"
PASSWORD = "Passw0rd!"

NS = {
    "s": "http://schemas.xmlsoap.org/soap/envelope/",
    "m": "http://schemas.microsoft.com/exchange/services/2006/messages",
    "t": "http://schemas.microsoft.com/exchange/services/2006/types",
    "e": "http://schemas.microsoft.com/exchange/services/2006/errors",
}

START_DEADLINE = 30.0  # seconds; the schema load and Python start-up on a loaded machine


class Sim:
    """A running ews-sim process."""

    def __init__(self, args=(), env=None):
        self.dir = tempfile.mkdtemp(prefix="ews-sim-test.")
        ready = os.path.join(self.dir, "ready")
        cmd = [SIM, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--quiet", "--ready-file", ready]
        # Output goes to a file, not a pipe nobody reads, so a chatty simulator never blocks.
        self.log = open(os.path.join(self.dir, "log"), "w+b")
        self.proc = subprocess.Popen(cmd + list(args), stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))
        deadline = time.monotonic() + START_DEADLINE
        while not (os.path.exists(ready) and os.path.getsize(ready)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("ews-sim did not start: %s" % self.output())
            time.sleep(0.02)
        with open(ready) as f:
            self.info = json.loads(f.read())
        self.ews = self.info["ews"]
        self.control_url = self.info["control"]
        self.port = self.info["ews_port"]

    def output(self):
        """What the simulator printed so far."""
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- control API ---------------------------------------------------------------------

    def control(self, method, path, body=None, expect=None):
        """Call the control API; returns (status, parsed JSON)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.control_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        doc = json.loads(raw) if raw else None
        if expect is not None:
            assert status == expect, (status, doc)
        return status, doc

    def counters(self):
        return self.control("GET", "/counters", expect=200)[1]




def sim_pool():
    """The body of a sim_factory fixture: yields make(*args, env=None) -> Sim and stops every
    ews-sim it made afterwards. Use as `yield from sim_pool()` in a fixture of any scope."""
    sims = []

    def make(*args, env=None):
        s = Sim(args, env)
        sims.append(s)
        return s

    yield make
    for s in sims:
        s.stop()


def wait_for(cond, timeout=20.0, interval=0.02, what="condition"):
    """Poll cond() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)
