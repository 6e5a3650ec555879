"""Runs calsync's ews-try (from the meson build dir in CALSYNC_BUILD, default ./build) and
reads its JSON lines: the helpers of the EWS client tests (fixtures: tests/ews/conftest.py)."""

import json
import os
import subprocess
import time

from simharness import PASSWORD, SVC

NTLM_USER = "CONTOSO\\svc"

# Sanitizer settings for the ASan+UBSan build (scripts/test points CALSYNC_BUILD at it): the
# first report is fatal, leaks included. Harmless for a plain build.
SAN_ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:abort_on_error=1:detect_leaks=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}


def build_dir():
    d = os.environ.get("CALSYNC_BUILD", "build")
    return d if os.path.isabs(d) else os.path.abspath(os.path.join(os.getcwd(), d))


class Result:
    """One run of ews-try: exit status, its JSON lines, stderr."""

    def __init__(self, rc, out, err):
        self.rc = rc
        self.out = out
        self.err = err
        self.lines = [json.loads(line) for line in out.splitlines() if line.strip()]

    @property
    def line(self):
        assert len(self.lines) == 1, self.lines
        return self.lines[0]

    def messages(self, i=0):
        return self.lines[i]["response"]["messages"]

    def __repr__(self):
        return "Result(rc=%r, out=%r, err=%r)" % (self.rc, self.out[-3000:], self.err[-3000:])


class EwsTry:
    """Runs ews-try with the credentials and URL of one simulator, over HTTP or HTTPS."""

    def __init__(self, binary, sim, auth="basic", cacert=None):
        self.binary = binary
        self.sim = sim
        self.auth = auth
        self.cacert = cacert

    def env(self, extra=None):
        env = dict(os.environ, **SAN_ENV)
        env.setdefault("EWS_TRY_PASSWORD", PASSWORD)
        env.update(extra or {})
        return env

    def argv(self, *args, auth=None, url=None, cacert=None, user=None):
        auth = auth or self.auth
        cmd = [self.binary, "--url", url or self.sim.ews, "--auth", auth]
        if auth in ("basic", "ntlm", "negotiate"):
            cmd += ["--user", user or (SVC if auth == "basic" else NTLM_USER), "--password-env", "EWS_TRY_PASSWORD"]
        ca = cacert if cacert is not None else self.cacert
        if ca:
            cmd += ["--cacert", ca]
        return cmd + [str(a) for a in args]

    def run(self, *args, env=None, timeout=120, **kw):
        p = subprocess.run(self.argv(*args, **kw), capture_output=True, text=True, env=self.env(env), timeout=timeout)
        # A sanitizer report or a crash is never an expected outcome.
        assert p.returncode in (0, 1), Result(p.returncode, p.stdout, p.stderr)
        assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
        return Result(p.returncode, p.stdout, p.stderr)

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.rc == 0, r
        return r

    def popen(self, *args, env=None, **kw):
        return Stream(subprocess.Popen(self.argv(*args, **kw), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, env=self.env(env)))


class Stream:
    """A running ews-try whose JSON lines are read as they come."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []

    def next_line(self, timeout=30):
        # readline blocks; the deadline is enforced by killing the process from a timer.
        import threading

        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            timer.cancel()
        assert line, "ews-try ended without another line (rc %r): %s" % (self.proc.poll(), self.proc.stderr.read())
        d = json.loads(line)
        d["_read_at"] = time.monotonic()
        d["_running"] = self.proc.poll() is None
        self.lines.append(d)
        return d

    def wait(self, timeout=60):
        rc = self.proc.wait(timeout)
        rest = self.proc.stdout.read()
        err = self.proc.stderr.read()
        assert "Sanitizer" not in err and "runtime error" not in err, err
        for line in rest.splitlines():
            if line.strip():
                self.lines.append(json.loads(line))
        return rc, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()
