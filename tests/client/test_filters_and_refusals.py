"""Requests as the official client writes them, and a 403 that says what it may mean."""

from __future__ import annotations

import json

import pytest

import eexarray
from eexarray.backend.metadata import _time_filter, geojson_filter_text
from eexarray.backend.options import parse_options
from eexarray.transport import AssetNotAccessibleError, AssetNotFoundError, EarthEngineRequestError

from .recording import RecordingProxy

# Inside test/series' footprint (SMALL: UTM 10N, x 500000..506000, y 4192000..4200000).
INSIDE = (-122.99, 37.88, -122.94, 37.94)
ELSEWHERE = (10.0, 45.0, 10.1, 45.1)


def box(west, south, east, north):
    return {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }


def test_the_region_filter_is_the_official_clients_text():
    """earthengine-api's listImages writes ``intersects("<GeoJSON with ' for ">")``: no backslashes."""
    utils = pytest.importorskip("ee._cloud_api_utils")
    official = utils._convert_list_images_filter_params_to_list_assets_params({"region": box(*INSIDE)})
    ours = _time_filter(parse_options(region=INSIDE, start="2020-01-01"))
    assert official == "intersects(\"{'type': 'Polygon', 'coordinates': [[[-122.99, 37.88], [-122.94, 37.88], " + (
        '[-122.94, 37.94], [-122.99, 37.94], [-122.99, 37.88]]]}")'
    )
    assert ours == 'startTime >= "2020-01-01T00:00:00.000000Z" AND ' + official
    assert "\\" not in ours
    assert geojson_filter_text({"type": "Point", "coordinates": [1, 2]}) == "{'type': 'Point', 'coordinates': [1, 2]}"


def test_the_server_evaluates_the_filter_as_sent(server):
    with RecordingProxy(server.url) as proxy:
        ds = eexarray.open_dataset("test/series", endpoint=proxy.url, region=INSIDE)
        assert ds.sizes["time"] == 30
        with pytest.raises(ValueError, match="No image of collection 'test/series' matches"):
            eexarray.open_dataset("test/series", endpoint=proxy.url, region=ELSEWHERE)
    listings = [r for r in proxy.records if r["path"].endswith(":listAssets")]
    assert len(listings) == 2
    (sent,) = listings[0]["query"]["filter"]
    assert sent == f'intersects("{geojson_filter_text(box(*INSIDE))}")'
    assert json.loads(sent[len('intersects("') : -2].replace("'", '"')) == box(*INSIDE)


# A 403 body as Earth Engine sends it for an asset that is missing or not shared: the message
# was reported verbatim in https://github.com/landler-io/ecosystem-integrity-index/issues/2
# (2026-01-20); the envelope is Google's standard error document.
FORBIDDEN_ASSET = "projects/landler-open-data/assets/datasets/clms/npp/annual"
PERMISSION_DENIED = {
    "error": {
        "code": 403,
        "message": f"Permission 'earthengine.assets.get' denied on resource '{FORBIDDEN_ASSET}' (or it may not exist).",
        "status": "PERMISSION_DENIED",
    }
}


def test_a_403_on_an_asset_says_both_possibilities_and_names_asset_and_project():
    with RecordingProxy(answer=(403, PERMISSION_DENIED)) as proxy:
        with pytest.raises(AssetNotAccessibleError) as caught:
            eexarray.open_dataset(FORBIDDEN_ASSET, endpoint=proxy.url, project="my-project")
        assert len(proxy.records) == 1  # never retried
    error = caught.value
    assert error.status == 403 and error.asset == FORBIDDEN_ASSET and error.project == "my-project"
    assert not isinstance(error, AssetNotFoundError)
    message = str(error)
    assert "(or it may not exist)" in message  # the server's own words
    assert f"Either the asset '{FORBIDDEN_ASSET}' does not exist, or it exists and these credentials" in message
    assert "with quota project 'my-project'" in message and "may not read it" in message


def test_a_403_without_a_project_says_so(monkeypatch):
    monkeypatch.delenv("EEXARRAY_PROJECT", raising=False)
    with RecordingProxy(answer=(403, PERMISSION_DENIED)) as proxy:
        with pytest.raises(AssetNotAccessibleError, match=r"with no quota project \(pass project=\)"):
            eexarray.open_dataset("users/someone/private", endpoint=proxy.url)


def test_a_403_on_a_compute_names_the_asset_from_the_message():
    body = {"error": {"code": 403, "message": f"Image.load: Image asset '{FORBIDDEN_ASSET}' (or it may not exist)."}}
    expression = {
        "result": "0",
        "values": {
            "0": {
                "functionInvocationValue": {
                    "functionName": "Image.load",
                    "arguments": {"id": {"constantValue": FORBIDDEN_ASSET}},
                }
            }
        },
    }
    with RecordingProxy(answer=(403, body)) as proxy:
        with pytest.raises(AssetNotAccessibleError) as caught:
            eexarray.open_dataset(expression, endpoint=proxy.url, project="p1")
        assert proxy.records[0]["path"] == "/v1/projects/p1/value:compute"
    assert caught.value.asset == FORBIDDEN_ASSET


def test_a_403_about_the_project_is_not_blamed_on_an_asset():
    body = {
        "error": {
            "code": 403,
            "message": "Caller does not have required permission to use project my-project.",
            "status": "PERMISSION_DENIED",
        }
    }
    with RecordingProxy(answer=(403, body)) as proxy:
        with pytest.raises(EarthEngineRequestError) as caught:
            eexarray.open_dataset(
                {"result": "0", "values": {"0": {"constantValue": 1}}}, endpoint=proxy.url, project="my-project"
            )
    assert not isinstance(caught.value, AssetNotAccessibleError)
    assert "(sent with quota project 'my-project')" in str(caught.value)
