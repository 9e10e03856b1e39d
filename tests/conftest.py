"""Shared fixtures: every test talks to a local server on 127.0.0.1, never the network."""

from __future__ import annotations

import os

import pytest

# Nothing in the suite may reach real Earth Engine: an open without endpoint would.
os.environ.pop("EEXARRAY_ENDPOINT", None)
os.environ.pop("EEXARRAY_TOKEN", None)


@pytest.fixture(autouse=True)
def _no_google_credentials(monkeypatch):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
