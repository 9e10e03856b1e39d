"""Tokens and credentials never appear in logs, reprs, exception messages or pickled graphs."""

from __future__ import annotations

import json
import logging
import pickle
import traceback

import cloudpickle
import dask
import google.oauth2.credentials
import pytest

import eexarray
from eexarray.transport import ConnectionConfig, CredentialsError, EarthEngineRequestError, RestClient
from eexarray.transport import credentials as credentials_module
from eexarray.transport.credentials import forget_default_credentials
from tests.client.recording import FakeTokenServer

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


# -- Earth Engine's stored credentials (a refresh token on disk) ------------------------------------

REFRESH = "1//SECRET-refresh-9d4e"
CLIENT_SECRET = "SECRET-client-secret-51"
ACCESS = "ya29.SECRET-ee-access-3c"


@pytest.fixture()
def stored_credentials(tmp_path, monkeypatch):
    """A home whose ~/.config/earthengine/credentials holds secrets, and a local token endpoint."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    stored = tmp_path / ".config" / "earthengine" / "credentials"
    stored.parent.mkdir(parents=True)
    stored.write_text(
        json.dumps(
            {"refresh_token": REFRESH, "client_id": "c.apps.googleusercontent.com", "client_secret": CLIENT_SECRET}
        )
    )
    forget_default_credentials()
    with FakeTokenServer(ACCESS) as tokens:
        monkeypatch.setattr(credentials_module, "EE_TOKEN_URI", tokens.url + "/token")
        yield tokens
    forget_default_credentials()


def test_stored_credentials_never_leak(stored_credentials, caplog):
    caplog.set_level(logging.DEBUG)
    with eexarray.serve(catalog=catalog(), token=ACCESS) as server:
        config = ConnectionConfig(endpoint=server.url, credentials_source="default")  # as for Google's endpoints
        asset = RestClient(config).get_json("projects/earthengine-public/assets/rel/small")
        assert asset["id"] == "rel/small"  # the refreshed token did work
        assert stored_credentials.grants[0]["refresh_token"] == REFRESH
        for value in (config, RestClient(config)):
            assert_clean(repr(value))
        assert_clean(pickle.dumps(config))
        assert_clean(cloudpickle.dumps(config))
    assert_clean(caplog.text)


def test_a_refused_refresh_of_stored_credentials_names_the_file_not_the_secrets(stored_credentials):
    stored_credentials.refuse = True
    with pytest.raises(CredentialsError) as caught:
        RestClient(ConnectionConfig(endpoint="http://127.0.0.1:9", credentials_source="default")).get_json("x")
    error = caught.value
    assert "Earth Engine's stored credentials" in str(error) and "invalid_grant" in str(error)
    assert_clean(str(error))
    assert_clean(repr(error))
    assert_clean("".join(traceback.format_exception(error)))
