"""`calsync run` configuration errors: each malformed or invalid file (and each usage error)
gives exactly one clear message on stderr naming the file, the line and the element, and exit
code 2, with or without --check-config, before anything is contacted. --check-config on a good
file prints a one-line summary and exits 0, warnings going to stderr."""

import os
import subprocess

import pytest

from calsyncproc import PASSWORD_ENV

TIMEOUT = 60  # seconds, generous for a sanitizer build on a loaded machine

# Nothing listens on port 9 (discard): a calsync that tried to connect would not hang on it,
# and a config error must stop it before that anyway.
GOOD = """<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <calendar_sync>
    <exchange>
      <events>
        <advise Object="EwsStream"/>
      </events>
    </exchange>
    <calsync>
      <ews url="http://127.0.0.1:9/EWS/Exchange.asmx"/>
      <account user="CONTOSO\\svc" auth="ntlm" password_env="CALSYNC_PASSWORD"/>
      <mailboxes file="mailboxes.txt">
        <mailbox>inline@contoso.example</mailbox>
      </mailboxes>
      <sync debounce="1s" pull_interval="5s"/>
      <store path="calsync.db"/>
      <output path="presence.jsonl"/>
    </calsync>
  </calendar_sync>
</configuration>
"""

MAILBOXES = "# test mailboxes\nuser00001@contoso.example\n\nuser00002@contoso.example\n"


def run(calsync_bin, args, cwd, env_password=True):
    env = dict(os.environ)
    env.pop(PASSWORD_ENV, None)
    env.pop("CALSYNC_NO_SUCH_PASSWORD", None)
    if env_password:
        env[PASSWORD_ENV] = "Passw0rd!"
    return subprocess.run([calsync_bin, *args], cwd=cwd, env=env, capture_output=True, timeout=TIMEOUT)


def line_of(text, marker):
    """1-based line of the first line of text containing marker."""
    for i, line in enumerate(text.splitlines(), 1):
        if marker in line:
            return i
    raise AssertionError("marker %r not in the config" % marker)


def write_files(tmp_path, config=GOOD, mailboxes=MAILBOXES):
    (tmp_path / "calsync.xml").write_text(config)
    if mailboxes is not None:
        (tmp_path / "mailboxes.txt").write_text(mailboxes)
    return str(tmp_path / "calsync.xml")


# name -> (config transform, mailbox file text, env password set, where: ("config"|"mailboxes",
# marker of the bad line or None), words the message must contain)
CASES = {
    "not-well-formed": (lambda c: c.replace("<store path=\"calsync.db\"/>", "<store path=\"calsync.db\">"),
                        MAILBOXES, True, ("config", None), ["not well-formed"]),
    "unknown-advise-object": (lambda c: c.replace('Object="EwsStream"', 'Object="EwsPoll"'),
                              MAILBOXES, True, ("config", "<advise"), ["advise", "EwsPoll"]),
    "bad-duration": (lambda c: c.replace('debounce="1s"', 'debounce="2 s"'),
                     MAILBOXES, True, ("config", "<sync"), ["sync", "debounce"]),
    "bad-duration-unit": (lambda c: c.replace('pull_interval="5s"', 'pull_interval="5sec"'),
                          MAILBOXES, True, ("config", "<sync"), ["sync", "pull_interval"]),
    "password-in-file": (lambda c: c.replace('password_env="CALSYNC_PASSWORD"', 'password="Passw0rd!"'),
                         MAILBOXES, True, ("config", "<account"), ["account", "password"]),
    "missing-password-env": (lambda c: c.replace('password_env="CALSYNC_PASSWORD"',
                                                 'password_env="CALSYNC_NO_SUCH_PASSWORD"'),
                             MAILBOXES, True, ("config", "<account"), ["CALSYNC_NO_SUCH_PASSWORD"]),
    "password-env-unset": (lambda c: c, MAILBOXES, False, ("config", "<account"), [PASSWORD_ENV]),
    "mailbox-file-missing": (lambda c: c, None, True, ("config", "<mailboxes"), ["mailboxes.txt"]),
    "mailbox-file-is-directory": (lambda c: c.replace('file="mailboxes.txt"', 'file="adir"'),
                                  MAILBOXES, True, ("config", "<mailboxes"), ["adir"]),
    "bad-address-in-mailbox-file": (lambda c: c, "# test\nuser00001@contoso.example\nnot-an-address\n",
                                    True, ("mailboxes", "not-an-address"), ["not-an-address"]),
    "doctype": (lambda c: c.replace('<?xml version="1.0" encoding="utf-8"?>\n',
                                    '<?xml version="1.0" encoding="utf-8"?>\n'
                                    '<!DOCTYPE configuration [<!ENTITY x "y">]>\n'),
                MAILBOXES, True, ("config", "<!DOCTYPE"), ["DOCTYPE"]),
    "ews-and-autodiscover": (lambda c: c.replace("<ews url", "<autodiscover url=\"http://127.0.0.1:9/a\"/><ews url"),
                             MAILBOXES, True, ("config", "<autodiscover"), ["autodiscover"]),
    "duplicate-element": (lambda c: c.replace("<store path=\"calsync.db\"/>",
                                              "<store path=\"calsync.db\"/>\n      <store path=\"b.db\"/>"),
                          MAILBOXES, True, ("config", "b.db"), ["store"]),
}


@pytest.mark.parametrize("check", [True, False], ids=["check-config", "run"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_config_error(calsync_bin, tmp_path, case, check):
    transform, mailboxes, env_password, (where, marker), words = CASES[case]
    config = transform(GOOD)
    assert config != GOOD or case in ("password-env-unset", "mailbox-file-missing",
                                      "bad-address-in-mailbox-file")
    path = write_files(tmp_path, config, mailboxes)
    if case == "mailbox-file-is-directory":
        os.mkdir(tmp_path / "adir")
    args = ["run", "-c", path] + (["--check-config"] if check else [])
    p = run(calsync_bin, args, tmp_path, env_password)
    err = p.stderr.decode()
    assert p.returncode == 2, (p.returncode, err)
    assert p.stdout == b"", p.stdout
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, "expected one message, got:\n" + err
    msg = lines[0]
    if where == "config":
        if marker is not None:
            assert "calsync.xml:%d" % line_of(config, marker) in msg, msg
        else:
            assert "calsync.xml:" in msg, msg
    else:
        assert "mailboxes.txt:%d" % line_of(mailboxes, marker) in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    # A config error stops calsync before it creates anything.
    assert not os.path.exists(tmp_path / "calsync.db")
    assert not os.path.exists(tmp_path / "presence.jsonl")


def test_nonexistent_config_path(calsync_bin, tmp_path):
    missing = str(tmp_path / "nope" / "calsync.xml")
    for args in (["run", "-c", missing, "--check-config"], ["run", "-c", missing]):
        p = run(calsync_bin, args, tmp_path)
        err = p.stderr.decode()
        assert p.returncode == 2, (p.returncode, err)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and missing in lines[0], err


@pytest.mark.parametrize("args,culprit", [(["run", "--bogus"], "--bogus"), (["run", "-c"], "-c"),
                                          (["run", "-x", "calsync.xml"], "-x"),
                                          (["run", "--check-config", "extra-argument"], "extra-argument")],
                         ids=["unknown-option", "c-without-file", "unknown-short", "extra-argument"])
def test_usage_error(calsync_bin, tmp_path, args, culprit):
    write_files(tmp_path)
    p = run(calsync_bin, args, tmp_path)
    err = p.stderr.decode()
    assert p.returncode == 2, (p.returncode, err)
    assert p.stdout == b""
    first = err.splitlines()[0]
    assert culprit in first, err  # names what is wrong
    assert not os.path.exists(tmp_path / "calsync.db")


def test_check_config_good(calsync_bin, tmp_path):
    path = write_files(tmp_path)
    p = run(calsync_bin, ["run", "-c", path, "--check-config"], tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode().splitlines()
    assert len(out) == 1 and out[0].strip(), p.stdout
    assert p.stderr == b"", p.stderr
    # Three mailboxes: two in the file, one inline.
    assert "3" in out[0], out[0]
    # --check-config touches nothing.
    assert not os.path.exists(tmp_path / "calsync.db")
    assert not os.path.exists(tmp_path / "presence.jsonl")


def test_check_config_warnings_go_to_stderr(calsync_bin, tmp_path):
    config = GOOD.replace("<store path", "<plugins url=\"http://127.0.0.1:1/\"/>\n      <store path")
    mailboxes = MAILBOXES + "USER00001@contoso.example\n"
    path = write_files(tmp_path, config, mailboxes)
    p = run(calsync_bin, ["run", "-c", path, "--check-config"], tmp_path)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert len(p.stdout.decode().splitlines()) == 1
    assert "calsync.xml:%d" % line_of(config, "<plugins") in err and "plugins" in err, err
    assert "mailboxes.txt:5" in err, err  # the duplicate, compared without case
