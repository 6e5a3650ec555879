"""Fixtures of the `calsync run` tests: the binary (from $CALSYNC_BUILD), a module-wide ews-sim
factory, and calsync daemons that are always killed at the end of a test and whose stderr is
printed when the test failed."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from calsyncproc import Calsync, calsync_binary  # noqa: E402
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
        pytest.fail("calsync binary not found at %s: build it (meson setup build && meson compile -C build) "
                    "or set CALSYNC_BUILD to a meson build directory" % path)
    return path


@pytest.fixture(scope="module")
def module_sim_factory():
    """ews-sims shared by the tests of one module (each test uses its own mailboxes)."""
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
            print("--- ews-sim log (last 40 lines) ---")
            print("\n".join(c.sim.output().splitlines()[-40:]) if not c.sim.log.closed else "(closed)")
