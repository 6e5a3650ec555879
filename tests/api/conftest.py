"""Fixtures of the HTTP API tests: the calsync binary (from $CALSYNC_BUILD), a module-wide
ews-sim factory and calsync daemons that are always killed at the end of a test and whose
stderr is printed when the test failed. The daemons are tests/sync/calsyncproc.py's Calsync."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from apiclient import Calsync  # noqa: E402
from calsyncproc import calsync_binary  # noqa: E402
from simharness import sim_pool  # noqa: E402


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(node):
    return any(getattr(node, "rep_" + w, None) is not None and getattr(node, "rep_" + w).failed
               for w in ("setup", "call"))


def _dump(procs):
    for c in procs:
        if c.logs:
            print(c.stderr_tail(150))


@pytest.fixture(scope="session")
def calsync_bin():
    path = calsync_binary()
    if not os.access(path, os.X_OK):
        pytest.fail("calsync binary not found at %s: build it or set CALSYNC_BUILD" % path)
    return path


@pytest.fixture(scope="module")
def module_sim_factory():
    yield from sim_pool()


@pytest.fixture
def calsync_factory(calsync_bin, tmp_path, request):
    """calsync_factory(sim, mailboxes, **config) -> Calsync (not started)."""
    procs = []

    def make(sim, mailboxes, name=None, **kw):
        c = Calsync(tmp_path / (name or "calsync%d" % (len(procs) + 1)), sim, mailboxes, **kw)
        procs.append(c)
        return c

    yield make
    for c in procs:
        c.cleanup()
    if _failed(request.node):
        _dump(procs)


@pytest.fixture(scope="module")
def module_calsync_factory(calsync_bin, tmp_path_factory, request):
    """As calsync_factory, for a daemon that serves a whole module."""
    procs = []

    def make(sim, mailboxes, name=None, **kw):
        c = Calsync(tmp_path_factory.mktemp(name or "calsync"), sim, mailboxes, **kw)
        procs.append(c)
        return c

    yield make
    for c in procs:
        c.cleanup()
    if any(_failed(item) for item in request.session.items if item.module is request.module):
        _dump(procs)
