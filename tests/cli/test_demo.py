"""The README's first command: ./scripts/demo builds calsync, starts ews-sim with demo
mailboxes, gives three of them appointments in the next minutes and runs calsync with streaming
notifications, which prints presence changes as JSON lines. Run here on the build in
$CALSYNC_BUILD (scripts/test: the ASan+UBSan build), on a port chosen at run time, with the
first appointment a few seconds ahead and a bounded run time."""

import json
import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_demo_prints_presence_changes():
    build = os.path.abspath(os.environ.get("CALSYNC_BUILD") or os.path.join(ROOT, "build"))
    env = dict(os.environ, BUILD=build, DEMO_LEAD="8", DEMO_SECONDS="20")
    p = subprocess.run([os.path.join(ROOT, "scripts", "demo"), "--listen", "127.0.0.1:0",
                        "--mailboxes", "4"], env=env, capture_output=True, timeout=300)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert "Presence changes follow" in out
    lines = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    users = ["user%05d@contoso.example" % i for i in range(1, 5)]
    # Every mailbox's first presence, exactly once, then user00001's stand-up 8 s in: busy
    # (as its first presence if calsync took longer than that to start, else a flip).
    initial = [ln["user"] for ln in lines if ln["reason"] == "initial"]
    assert sorted(initial) == users, lines
    u1 = [ln for ln in lines if ln["user"] == users[0]]
    assert u1[-1]["state"] == "busy" and u1[-1]["subject"] == "Demo: stand-up", u1
    assert u1[-1]["profile"] == "In a meeting"
    ids = [ln["id"] for ln in lines]
    assert ids == sorted(set(ids))
