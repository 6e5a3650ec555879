"""Fixtures of the webhook tests: webhook receivers (receiver.py) that are stopped at the end;
the daemons come from the shared fixtures of tests/conftest.py."""

import os
import sys

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "sync"))

from receiver import Receiver  # noqa: E402


@pytest.fixture
def receiver():
    """A webhook receiver on a free port, answering 200 until told otherwise."""
    r = Receiver()
    yield r
    r.close()
