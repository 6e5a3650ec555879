"""pytest fixtures for the EWS client tests (helpers: tests/ews/ewstry.py; the ews-sim
harness: tests/simharness.py, with its fixtures in tests/conftest.py)."""

import os

import pytest

from ewstry import build_dir
from simharness import Sim


@pytest.fixture(scope="session")
def ews_try_bin():
    path = os.path.join(build_dir(), "ews-try")
    if not os.access(path, os.X_OK):
        pytest.fail("ews-try not found at %s: build calsync with meson (meson setup build && ninja -C build) "
                    "or point CALSYNC_BUILD at a meson build directory" % path, pytrace=False)
    return path


@pytest.fixture
def stream_procs():
    """Collects Stream objects and kills any still running at the end of a test."""
    procs = []
    yield procs
    for s in procs:
        s.kill()


@pytest.fixture(scope="module")
def module_sims():
    """Simulators shared by the tests of one module, stopped at its end."""
    sims = []

    def make(*args):
        s = Sim(args)
        sims.append(s)
        return s

    make.sims = sims
    yield make
    for s in sims:
        s.stop()


@pytest.fixture(autouse=True)
def _clear_faults(request):
    """Faults a test injected into a shared simulator never leak into the next test."""
    yield
    if "module_sims" in request.fixturenames:
        for s in request.getfixturevalue("module_sims").sims:
            if s.proc.poll() is None:
                s.control("DELETE", "/faults")
