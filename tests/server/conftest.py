"""Fixtures of the server tests: one running server per test module."""

from __future__ import annotations

import pytest

from eexarray.server import serve
from tests.server.helpers import standard_catalog


@pytest.fixture(scope="module")
def server():
    with serve(catalog=standard_catalog()) as running:
        yield running


@pytest.fixture
def fresh_stats(server):
    server.reset_stats()
    return server
