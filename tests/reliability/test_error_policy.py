"""Error policy: which failures are retried, how often, and what the final error says."""

from __future__ import annotations

import socket

import google.oauth2.credentials
import numpy as np
import pytest
import requests

import eexarray
from eexarray.transport import (
    AssetNotFoundError,
    ConnectionConfig,
    EarthEngineRequestError,
    EndpointUnreachableError,
    RestClient,
    RetriesExhaustedError,
)
from eexarray.transport.api import get_pixels

from .conftest import SMALL_GRID, catalog

SMALL = "projects/earthengine-public/assets/rel/small"


class CountingCredentials(google.oauth2.credentials.Credentials):
    """google-auth credentials whose ``refresh`` is counted and hands out ``next_token``."""

    def __init__(self, token: str, next_token: str):
        super().__init__(token)
        self.refreshes = 0
        self.next_token = next_token

    def refresh(self, request):
        self.refreshes += 1
        self.token = self.next_token


def total_requests(server) -> int:
    return sum(server.stats()["requests"].values())


@pytest.mark.parametrize("status", [400, 403, 404])
def test_no_retry_on_400_403_404(fast_retry, status):
    with eexarray.serve(catalog=catalog(), faults=f"{status}=1") as server:
        before = eexarray.transport_stats()["retries"]
        with pytest.raises(EarthEngineRequestError) as caught:
            eexarray.open_dataset("rel/small", endpoint=server.url)
        assert total_requests(server) == 1
        assert server.stats()["statuses"] == {str(status): 1}
    assert eexarray.transport_stats()["retries"] == before
    assert caught.value.status == status
    assert isinstance(caught.value, AssetNotFoundError) == (status == 404)
    assert f"HTTP {status}" in str(caught.value) and SMALL in str(caught.value)


def test_a_refused_pixel_request_is_sent_once(server, stats):
    client = RestClient(ConnectionConfig.create(server.url))
    with pytest.raises(EarthEngineRequestError) as caught:
        get_pixels(client, SMALL, SMALL_GRID, ["nope"], [np.dtype("uint16")])
    assert caught.value.status == 400 and "nope" in caught.value.server_message
    assert stats()["requests"] == {"getPixels": 1}


def test_a_missing_asset_is_one_request(server, stats):
    with pytest.raises(AssetNotFoundError, match="rel/missing"):
        eexarray.open_dataset("rel/missing", endpoint=server.url)
    assert stats()["requests"] == {"getAsset": 1}


def test_401_refreshes_the_token_once_then_fails():
    with eexarray.serve(catalog=catalog(), token="the-right-token") as server:
        credentials = CountingCredentials("stale-token", next_token="still-wrong")
        with pytest.raises(EarthEngineRequestError) as caught:
            eexarray.open_dataset("rel/small", endpoint=server.url, credentials=credentials)
        assert credentials.refreshes == 1
        assert server.stats()["statuses"] == {"401": 2}
    assert caught.value.status == 401
    assert "UNAUTHENTICATED" not in str(caught.value)  # the server's words, not its status name
    assert "HTTP 401" in str(caught.value) and "still-wrong" not in str(caught.value)


def test_401_then_a_refreshed_token_succeeds():
    with eexarray.serve(catalog=catalog(), token="the-right-token") as server:
        credentials = CountingCredentials("expired-token", next_token="the-right-token")
        ds = eexarray.open_dataset("rel/small", endpoint=server.url, credentials=credentials)
        values = ds.u.values
        assert credentials.refreshes == 1
        assert server.stats()["statuses"]["401"] == 1
    assert values.shape == (128, 256)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_exhausted_retries_name_attempts_status_and_request(fast_retry, status):
    with eexarray.serve(catalog=catalog(), faults=f"{status}=1") as server:
        with pytest.raises(RetriesExhaustedError) as caught:
            eexarray.open_dataset("rel/small", endpoint=server.url)
        assert total_requests(server) == fast_retry.max_attempts
    error = caught.value
    assert error.attempts == fast_retry.max_attempts and error.last_status == status
    assert error.request == f"get asset {SMALL}"
    message = str(error)
    assert f"after {fast_retry.max_attempts} attempts" in message and f"HTTP {status}" in message and SMALL in message


def test_exhausted_retries_on_dropped_connections(fast_retry):
    with eexarray.serve(catalog=catalog(), faults="reset=1") as server:
        with pytest.raises(RetriesExhaustedError) as caught:
            eexarray.open_dataset("rel/small", endpoint=server.url)
        assert total_requests(server) == fast_retry.max_attempts
    assert caught.value.last_status is None and "connection error" in str(caught.value)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_dead_endpoint_fails_fast_naming_it(monkeypatch):
    attempts = []
    original = requests.Session.request

    def counting(self, method, url, *args, **kwargs):
        attempts.append(url)
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", counting)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(EndpointUnreachableError) as caught:
        eexarray.open_dataset("rel/small", endpoint=endpoint)
    assert endpoint in str(caught.value)
    assert len(attempts) == eexarray.transport.RetryPolicy().connect_attempts == 2


def test_a_server_gone_mid_compute_fails_naming_the_endpoint():
    server = eexarray.serve(catalog=catalog())
    ds = eexarray.open_dataset("rel/small", endpoint=server.url, chunks={"y": 32, "x": 64})
    server.stop()
    with pytest.raises(EndpointUnreachableError, match=server.url.replace(".", r"\.")):
        ds.compute()
