"""`calsync status` against a running `calsync run` syncing ews-sim, with one mailbox parked
(impersonation denied by the service account's scope) and a webhook target: the tables, --json
(the API's document as it is), the store fallback when the daemon is not running, a wrong token,
and the exit statuses. The API's port is chosen at run time (listen 127.0.0.1:0); `calsync
status` reads it from a second configuration written once calsync logged it.

The binary comes from $CALSYNC_BUILD (scripts/test: the ASan+UBSan build) or ./build."""

import json
import os
import socket
import subprocess
import sys

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "sync"))
sys.path.insert(0, os.path.join(HERE, "..", "api"))

from apiclient import TOKEN, TOKEN_ENV, api_element, wait_api  # noqa: E402
from calsyncproc import Calsync, calsync_binary, make_config, user  # noqa: E402
from simharness import PASSWORD, SVC, sim_pool, wait_for  # noqa: E402

MBS = [user(i) for i in range(1, 5)]
DENIED = user(3)
OTHERS = [m for m in MBS if m != DENIED]
TIMEOUT = 20  # seconds for one `calsync status` (ASan build, loaded machine)


@pytest.fixture(scope="module")
def sim():
    pool = sim_pool()
    make = next(pool)
    s = make("--mailboxes", "8")
    allowed = [user(i) for i in range(1, 9) if user(i) != DENIED]
    s.control("POST", "/accounts", {"smtp": SVC, "password": PASSWORD, "impersonation": allowed},
              expect=201)
    yield s
    next(pool, None)


def free_port():
    """A port nothing listens on (bound and released: nobody else takes it that fast)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hook_url():
    return "http://127.0.0.1:%d/hook?key=q-s3cret" % free_port()


def status_config(cs, port, name="status.xml"):
    """A configuration like cs's, in cs's directory (so the same store), with the API on port."""
    path = os.path.join(cs.dir, name)
    cfg = dict(cs.config)
    cfg["api"] = '<api listen="127.0.0.1:%d" token_env="%s"/>' % (port, TOKEN_ENV)
    with open(path, "w") as f:
        f.write(make_config(cs.sim, **cfg))
    return path


def run_status(cs, config, *args, token=TOKEN):
    env = dict(cs.env)
    env[TOKEN_ENV] = token
    p = subprocess.run([calsync_binary(), "status", "-c", config, *args], env=env,
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert "ERROR: AddressSanitizer" not in p.stderr and "runtime error:" not in p.stderr, p.stderr
    return p


def settled(api):
    st = api.ok("GET", "/v1/status")
    g = st["groups"]
    if (st["mailboxes"]["live"] == len(OTHERS) and st["mailboxes"]["parked"] == 1 and g
            and all(x["connected"] and x["failures"] == 0 for x in g)
            and any(e["mailbox"] == DENIED for e in st["errors"])):
        return st
    return None


@pytest.fixture(scope="module")
def env(sim, tmp_path_factory):
    """One daemon for the module, settled: three mailboxes live, DENIED parked."""
    cs = Calsync(tmp_path_factory.mktemp("status"), sim, MBS, env={TOKEN_ENV: TOKEN},
                 api=api_element(True), extra='<webhooks><webhook url="%s"/></webhooks>' % hook_url())
    try:
        cs.start()
        api = wait_api(cs, TOKEN)
        wait_for(lambda: settled(api), timeout=30, interval=0.1, what="live, parked, errors")
        yield cs, api, status_config(cs, api.port)
    except BaseException:
        if cs.logs:
            print(cs.stderr_tail(100))
        raise
    finally:
        cs.cleanup()


def test_tables(env):
    cs, api, config = env
    p = run_status(cs, config)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    out = p.stdout
    lines = out.splitlines()
    assert lines[0] == "calsync status: http://127.0.0.1:%d" % api.port, out
    assert "mailboxes  4: 3 live, 0 syncing, 1 parked, 0 unresolved" in lines, out
    assert any(ln.startswith("activity   ") and " open, " in ln for ln in lines), out
    assert "parked (1)" in lines, out
    parked = [ln for ln in lines if ln.startswith("  " + DENIED + " ")]
    assert parked and "ImpersonateUserDenied" in parked[0], out
    assert any(ln.startswith("streaming groups (") for ln in lines), out
    header = lines.index([ln for ln in lines if ln.startswith("  GROUP ")][0])
    groups = []
    for ln in lines[header + 1:]:
        if not ln.startswith("  "):
            break
        groups.append(ln)
    assert groups and all(ln.rstrip().endswith("  ok") for ln in groups), out
    assert any(ln.startswith("last errors (") for ln in lines), out
    assert any(DENIED in ln and "ImpersonateUserDenied" in ln and ln.startswith("  20")
               for ln in lines), out
    assert "webhooks (1)" in lines, out
    hook = [ln for ln in lines if "/hook" in ln]
    assert hook and "q-s3cret" not in out, out
    assert p.stderr == ""


def test_json_is_the_api_document(env):
    cs, api, config = env
    p = run_status(cs, config, "--json")
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert p.stdout.endswith("}\n") and p.stdout.count("\n") == 1
    doc = json.loads(p.stdout)
    assert list(doc) == ["mailboxes", "parked", "groups", "errors", "streams_open", "in_flight",
                         "queued", "backing_off", "presence_changes", "webhooks"], list(doc)
    assert doc["mailboxes"] == {"total": 4, "live": 3, "syncing": 0, "parked": 1, "unresolved": 0}
    assert [x["smtp"] for x in doc["parked"]] == [DENIED]
    assert doc["webhooks"][0]["url"].endswith("/hook")


def test_wrong_token(env):
    cs, api, config = env
    p = run_status(cs, config, token="not-the-token")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == ""
    assert "HTTP 401" in p.stderr and "token" in p.stderr, p.stderr
    assert "not-the-token" not in p.stderr


def test_usage_and_config_errors(env, tmp_path):
    cs, api, config = env
    p = run_status(cs, config, "--bogus")
    assert p.returncode == 2 and "unknown option '--bogus'" in p.stderr, p.stderr
    p = run_status(cs, config, "extra")
    assert p.returncode == 2 and "unexpected argument 'extra'" in p.stderr, p.stderr
    p = run_status(cs, str(tmp_path / "missing.xml"))
    assert p.returncode == 2 and "missing.xml" in p.stderr, p.stderr
    p = subprocess.run([calsync_binary(), "status", "--help"], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert p.returncode == 0 and p.stdout.startswith("Usage: calsync status"), p.stdout


def test_daemon_down_reads_the_store(sim, tmp_path):
    mbs = [user(1), DENIED]
    cs = Calsync(tmp_path / "down", sim, mbs, env={TOKEN_ENV: TOKEN}, api=api_element(True))
    try:
        cs.start()
        wait_api(cs, TOKEN)
        cs.wait_live([user(1)])
        wait_for(lambda: (cs.mailbox_rows() or {}).get(DENIED, {}).get("state") == "parked",
                 timeout=30, what="%s parked" % DENIED)
        assert cs.stop() == 0
        port = free_port()
        config = status_config(cs, port)
        p = run_status(cs, config)
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
        lines = p.stdout.splitlines()
        assert lines[0] == ("calsync status: daemon not running (nothing answers on "
                            "http://127.0.0.1:%d); from the store %s" % (port, cs.db_path)), p.stdout
        # Unsubscribing at exit leaves the states as they were: live stays live.
        assert "mailboxes  2: 1 live, 0 syncing, 1 parked, 0 unresolved" in lines, p.stdout
        parked = [ln for ln in lines if ln.startswith("  " + DENIED + " ")]
        assert parked and "ImpersonateUserDenied" in parked[0], p.stdout
        assert "not known while the daemon is not running" in p.stdout
        p = run_status(cs, config, "--json")
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        assert doc["source"] == "store" and doc["store"] == cs.db_path, doc
        assert doc["mailboxes"]["parked"] == 1 and doc["parked"][0]["smtp"] == DENIED, doc
        assert "groups" not in doc
        # Neither the daemon nor a store: nothing to report.
        os.rename(cs.db_path, cs.db_path + ".moved")
        p = run_status(cs, config)
        assert p.returncode == 1 and p.stdout == "", (p.returncode, p.stdout)
        assert "daemon not running" in p.stderr and "no store at" in p.stderr, p.stderr
    except BaseException:
        if cs.logs:
            print(cs.stderr_tail(100))
        raise
    finally:
        cs.cleanup()
