"""Fixtures of the webhook tests: the calsync binary (from $CALSYNC_BUILD), a module-wide ews-sim
factory, calsync daemons (tests/sync/calsyncproc.py's Calsync) that are always killed at the end
of a test and whose stderr is printed when the test failed, and webhook receivers
(receiver.py) that are stopped at the end."""

import os
import sys

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "sync"))

from calsyncproc import Calsync, calsync_binary  # noqa: E402
from receiver import Receiver  # noqa: E402
from simharness import sim_pool  # noqa: E402


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    return any(getattr(request.node, "rep_" + w, None) is not None and getattr(request.node, "rep_" + w).failed
               for w in ("setup", "call"))


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
    failed = _failed(request)
    for c in procs:
        c.cleanup()
        if failed and c.logs:
            print(c.stderr_tail(150))


@pytest.fixture
def receiver():
    """A webhook receiver on a free port, answering 200 until told otherwise."""
    r = Receiver()
    yield r
    r.close()
