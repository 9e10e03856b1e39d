"""Tokens and credentials never appear in logs, reprs, exception messages or pickled graphs."""

from __future__ import annotations

import logging
import pickle
import traceback

import cloudpickle
import dask
import google.oauth2.credentials
import pytest

import eexarray
from eexarray.transport import ConnectionConfig, CredentialsError, EarthEngineRequestError, RestClient

from .conftest import catalog

TOKEN = "ya29.SECRET-token-7f3a9c"
OTHER = "ya29.SECRET-other-11b2"


@pytest.fixture()
def token_server():
    with eexarray.serve(catalog=catalog(), token=TOKEN) as server:
        yield server


def assert_clean(text: str | bytes) -> None:
    needle = "SECRET"
    if isinstance(text, bytes):
        assert needle.encode() not in text
    else:
        assert needle not in text


def test_logs_never_show_tokens(token_server, caplog):
    caplog.set_level(logging.DEBUG)  # every logger: ours, the server's, urllib3's, google-auth's
    ds = eexarray.open_dataset(
        "rel/small",
        endpoint=token_server.url,
        credentials=google.oauth2.credentials.Credentials(TOKEN),
        chunks={"y": 64, "x": 128},
    )
    ds.compute()
    with pytest.raises(CredentialsError):  # 401, then the refresh fails (no refresh token)
        eexarray.open_dataset(
            "rel/small", endpoint=token_server.url, credentials=google.oauth2.credentials.Credentials(OTHER)
        )
    assert caplog.records  # the loggers did talk
    assert_clean(caplog.text)


def test_reprs_never_show_tokens(token_server, monkeypatch):
    credentials = google.oauth2.credentials.Credentials(TOKEN)
    config = ConnectionConfig.create(token_server.url, credentials=credentials, project="my-project")
    ds = eexarray.open_dataset("rel/small", endpoint=token_server.url, credentials=credentials)
    for value in (config, RestClient(config), ds, ds.u, ds.u.data, token_server):
        assert_clean(repr(value))
        assert_clean(str(value))
    assert_clean(ds._repr_html_())
    monkeypatch.setenv("EEXARRAY_TOKEN", TOKEN)
    local = eexarray.open_dataset("rel/small", endpoint=token_server.url)
    assert_clean(repr(local))
    assert_clean(repr(ConnectionConfig.create(token_server.url)))


def test_exception_messages_never_show_tokens(token_server, monkeypatch):
    with pytest.raises(CredentialsError) as refresh_failed:
        eexarray.open_dataset(
            "rel/small", endpoint=token_server.url, credentials=google.oauth2.credentials.Credentials(OTHER)
        )
    monkeypatch.setenv("EEXARRAY_TOKEN", OTHER)
    with pytest.raises(EarthEngineRequestError) as refused:
        eexarray.open_dataset("rel/small", endpoint=token_server.url)
    assert refused.value.status == 401
    for error in (refresh_failed.value, refused.value):
        assert_clean(str(error))
        assert_clean(repr(error))
        assert_clean("".join(traceback.format_exception(error)))
        assert_clean(repr(vars(error)))


def test_pickled_graphs_never_carry_tokens(token_server, monkeypatch):
    credentials = google.oauth2.credentials.Credentials(TOKEN)
    ds = eexarray.open_dataset(
        "rel/small", endpoint=token_server.url, credentials=credentials, chunks={"y": 64, "x": 128}
    )
    array = ds.u.isel(y=slice(0, 70))
    (optimized,) = dask.optimize(array.data)
    for graph in (dict(ds.u.data.__dask_graph__()), dict(optimized.__dask_graph__())):
        assert_clean(pickle.dumps(graph))
        assert_clean(cloudpickle.dumps(graph))
    assert_clean(pickle.dumps(ds))
    assert_clean(cloudpickle.dumps(ds))
    # The token held by the process (EEXARRAY_TOKEN) is read where requests are made, never captured.
    monkeypatch.setenv("EEXARRAY_TOKEN", TOKEN)
    local = eexarray.open_dataset("rel/small", endpoint=token_server.url, chunks={"y": 64, "x": 128})
    assert_clean(cloudpickle.dumps(dict(local.u.data.__dask_graph__())))
    assert local.u.values.shape == (128, 256)  # and the token did work
