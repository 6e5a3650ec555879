"""Fixtures of the HTTP API tests: the shared ones of tests/conftest.py make apiclient.Calsync
(tests/sync/calsyncproc.py's daemon with an API client), also per module."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from apiclient import Calsync  # noqa: E402
from calsyncproc import calsync_pool, failed  # noqa: E402


@pytest.fixture
def calsync_class():
    return Calsync


@pytest.fixture(scope="module")
def module_calsync_factory(calsync_bin, tmp_path_factory, request):
    """As calsync_factory, for a daemon that serves a whole module."""
    yield from calsync_pool(Calsync, lambda name, i: tmp_path_factory.mktemp(name or "calsync"),
                            lambda: any(failed(item) for item in request.session.items
                                        if item.module is request.module))
