"""Credentials: the search order, every header they apply, and the quota project they carry."""

from __future__ import annotations

import json
import pickle

import google.oauth2.credentials
import pytest

import eexarray
from eexarray.transport import ConnectionConfig, CredentialsError, RestClient
from eexarray.transport import credentials as credentials_module
from eexarray.transport.credentials import EE_CLIENT_ID, compute_project, forget_default_credentials

from .recording import FakeTokenServer, RecordingProxy
from .test_computed import ndvi_expression

ASSET = "projects/earthengine-public/assets/test/mixed"


class ExtraHeaderCredentials(google.oauth2.credentials.Credentials):
    """Credentials that apply one more header (as regional access boundaries do)."""

    def apply(self, headers, token=None):
        super().apply(headers, token)
        headers["x-extra-credential-header"] = "applied"


@pytest.fixture()
def proxy(server):
    with RecordingProxy(server.url) as running:
        yield running


def test_every_header_the_credentials_apply_is_sent(proxy):
    credentials = ExtraHeaderCredentials("the-token", quota_project_id="quota-proj")
    ds = eexarray.open_dataset("test/mixed", endpoint=proxy.url, credentials=credentials, chunks={"x": 300, "y": 200})
    ds.u8[:10, :10].values  # noqa: B018 - a pixel request too
    assert {record["method"] for record in proxy.records} == {"GET", "POST"}
    for record in proxy.records:
        headers = record["headers"]
        assert headers["authorization"] == "Bearer the-token"
        assert headers["x-goog-user-project"] == "quota-proj"
        assert headers["x-extra-credential-header"] == "applied"


def test_project_given_wins_over_the_credentials_quota_project(proxy):
    credentials = google.oauth2.credentials.Credentials("t", quota_project_id="quota-proj")
    eexarray.open_dataset("test/mixed", endpoint=proxy.url, credentials=credentials, project="explicit")
    (record,) = proxy.records
    assert record["headers"]["x-goog-user-project"] == "explicit"
    assert list(record["headers"]).count("x-goog-user-project") == 1


def test_compute_paths_use_the_credentials_quota_project(proxy):
    credentials = google.oauth2.credentials.Credentials("t", quota_project_id="quota-proj")
    ds = eexarray.open_dataset(ndvi_expression("test/series/00004"), endpoint=proxy.url, credentials=credentials)
    ds[next(iter(ds.data_vars))][:5, :5].values  # noqa: B018
    computes = [r["path"] for r in proxy.records if r["method"] == "POST"]
    assert "/v1/projects/quota-proj/value:compute" in computes
    assert "/v1/projects/quota-proj/image:computePixels" in computes
    assert not [path for path in computes if "earthengine-legacy" in path]
    # Workers never get the credentials object, but the config they get keeps its project.
    config = ConnectionConfig.create(proxy.url, credentials=credentials)
    assert pickle.loads(pickle.dumps(config)).project == "quota-proj"


def test_without_any_quota_project_compute_falls_back_to_earthengine_legacy(proxy, monkeypatch):
    monkeypatch.delenv("EEXARRAY_PROJECT", raising=False)
    ds = eexarray.open_dataset(ndvi_expression("test/series/00004"), endpoint=proxy.url)
    assert ds.sizes == {"y": 400, "x": 600}
    (compute,) = [r for r in proxy.records if r["method"] == "POST"]
    assert compute["path"] == "/v1/projects/earthengine-legacy/value:compute"
    assert "x-goog-user-project" not in compute["headers"] and "authorization" not in compute["headers"]


# -- the search order: credentials=, Earth Engine's stored credentials, ADC -----------------------


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """An empty home directory: no Earth Engine credentials, no gcloud configuration."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for variable in ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "EEXARRAY_PROJECT", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # never probe a metadata server
    forget_default_credentials()
    yield tmp_path
    forget_default_credentials()


def write_ee_credentials(home, content) -> str:
    path = home / ".config" / "earthengine" / "credentials"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(content) if not isinstance(content, str) else content)
    return str(path)


def write_adc(home, token_uri: str, monkeypatch) -> None:
    # google-auth always sends an authorized-user file's refreshes to Google's endpoint.
    monkeypatch.setattr(google.oauth2.credentials, "_GOOGLE_OAUTH2_TOKEN_ENDPOINT", token_uri)
    path = home / "adc.json"
    adc = {
        "type": "authorized_user",
        "client_id": "adc-client.apps.googleusercontent.com",
        "client_secret": "adc-client-secret",
        "refresh_token": "adc-refresh-token",
        "quota_project_id": "adc-proj",
    }
    path.write_text(json.dumps(adc))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))


def default_client(url: str) -> RestClient:
    """As a Google endpoint would be configured (default credentials), at a local URL."""
    return RestClient(ConnectionConfig(endpoint=url, credentials_source="default"))


def test_earth_engine_stored_credentials_come_before_adc(home, monkeypatch):
    with FakeTokenServer("ee-access-token") as tokens, RecordingProxy(answer=(200, {"ok": True})) as api:
        monkeypatch.setattr(credentials_module, "EE_TOKEN_URI", tokens.url + "/token")
        write_adc(home, tokens.url + "/adc-token", monkeypatch)  # present, but second in line
        # As ee.Authenticate() writes it in notebook mode: no client id, the default scopes.
        write_ee_credentials(home, {"refresh_token": "ee-refresh-token", "project": "ee-proj"})
        client = default_client(api.url)
        assert client.get_json(ASSET) == {"ok": True}
        assert compute_project(client.config) == "projects/ee-proj"
    (grant,) = tokens.grants
    assert grant["grant_type"] == "refresh_token" and grant["refresh_token"] == "ee-refresh-token"
    assert grant["client_id"] == EE_CLIENT_ID  # the official client's default
    (record,) = api.records
    assert record["headers"]["authorization"] == "Bearer ee-access-token"
    assert record["headers"]["x-goog-user-project"] == "ee-proj"


def test_the_default_client_id_is_the_official_clients():
    oauth = pytest.importorskip("ee.oauth")
    assert EE_CLIENT_ID == oauth.CLIENT_ID
    assert credentials_module.EE_CLIENT_SECRET == oauth.CLIENT_SECRET
    assert list(credentials_module.EE_DEFAULT_SCOPES) == oauth.SCOPES
    assert credentials_module.EE_TOKEN_URI == oauth.TOKEN_URI


def test_stored_credentials_are_read_as_the_official_client_reads_them(home):
    oauth = pytest.importorskip("ee.oauth")
    stored = {"refresh_token": "r", "client_id": "c.apps.googleusercontent.com", "client_secret": "s"}
    stored |= {"scopes": ["https://www.googleapis.com/auth/earthengine"], "project": "p"}
    path = write_ee_credentials(home, stored)
    assert oauth.get_credentials_path() == path  # same file
    official = oauth.get_credentials_arguments()
    ours = credentials_module.load_ee_credentials(credentials_module.ee_credentials_path())
    assert ours.refresh_token == official["refresh_token"] and ours.client_id == official["client_id"]
    assert ours.client_secret == official["client_secret"] and ours.scopes == official["scopes"]
    assert ours.quota_project_id == official["quota_project_id"] and ours.token_uri == official["token_uri"]


def test_adc_when_there_are_no_stored_earth_engine_credentials(home, monkeypatch):
    with FakeTokenServer("adc-access-token") as tokens, RecordingProxy(answer=(200, {})) as api:
        write_adc(home, tokens.url + "/token", monkeypatch)
        client = default_client(api.url)
        client.get_json(ASSET)
    (grant,) = tokens.grants
    assert grant["refresh_token"] == "adc-refresh-token"
    (record,) = api.records
    assert record["headers"]["authorization"] == "Bearer adc-access-token"
    assert record["headers"]["x-goog-user-project"] == "adc-proj"


def test_credentials_given_come_first(home, monkeypatch):
    with FakeTokenServer("ee-access-token") as tokens, RecordingProxy(answer=(200, {})) as api:
        monkeypatch.setattr(credentials_module, "EE_TOKEN_URI", tokens.url + "/token")
        write_ee_credentials(home, {"refresh_token": "ee-refresh-token"})
        config = ConnectionConfig.create(api.url, credentials=google.oauth2.credentials.Credentials("given"))
        RestClient(config).get_json(ASSET)
    assert tokens.grants == []
    assert api.records[0]["headers"]["authorization"] == "Bearer given"


def test_when_nothing_works_the_error_says_what_was_tried(home, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(home / "missing.json"))
    with RecordingProxy(answer=(200, {})) as api:
        with pytest.raises(CredentialsError) as caught:
            default_client(api.url).get_json(ASSET)
        assert api.records == []  # nothing was sent
    message = str(caught.value)
    assert f"No Google credentials found for {api.url}. Tried: credentials= (not given)" in message
    assert f"Earth Engine's stored credentials '{home}/.config/earthengine/credentials' (no such file)" in message
    assert f"GOOGLE_APPLICATION_CREDENTIALS='{home}/missing.json'" in message
    assert "earthengine authenticate" in message and "gcloud auth application-default login" in message


@pytest.mark.parametrize("content", ["{not json", {"client_id": "x"}, {"refresh_token": ""}, []])
def test_unusable_stored_credentials_are_named(home, content):
    path = write_ee_credentials(home, content)
    with pytest.raises(CredentialsError, match="earthengine authenticate") as caught:
        default_client("http://127.0.0.1:9").get_json(ASSET)
    assert repr(path) in str(caught.value)
