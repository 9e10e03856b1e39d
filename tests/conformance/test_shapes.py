"""The local server's JSON has the shape of the recorded Earth Engine answers.

A field a recording has (that a client may read) must be in the local answer at the same
place with the same JSON type; a field the local server adds must be one the REST
reference documents. Values may differ (times of update, footprints densified).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import requests

from tests.conformance.endpoints import (
    COLLECTION_FILTER,
    COMPUTED_IMAGE_ID,
    ERRORS,
    LocalEndpoint,
    recorded_image,
    recorded_info,
    recorded_listing,
)
from tests.conformance.test_contract import load_expression

# Field names from the REST reference (EarthEngineAsset, ImageBand, PixelGrid, PixelDataType).
ASSET_FIELDS = {"type", "name", "id", "updateTime", "title", "description", "properties", "startTime", "endTime",
                "geometry", "bands", "sizeBytes", "featureCount", "quota", "tilesets", "cloudStorageLocation",
                "gcsLocation", "featureViewAssetLocation"}  # fmt: skip
BAND_FIELDS = {"id", "dataType", "grid", "pyramidingPolicy", "tilesets", "missingData"}
GRID_FIELDS = {"crsCode", "crsWkt", "affineTransform", "dimensions"}
DATA_TYPE_FIELDS = {"precision", "range", "dimensionsCount"}
# The recordings are GDAL's stand-ins: sizeBytes there is a JSON number, the reference says
# an int64 rendered as a string (what the local server sends, checked below).
RECORDING_QUIRKS = {"sizeBytes"}


def shape_differences(recorded: Any, local: Any, where: str = "") -> list[str]:
    """Where ``local`` lacks a field of ``recorded`` or holds another JSON type there."""
    if isinstance(recorded, dict):
        if not isinstance(local, dict):
            return [f"{where or '.'}: object expected, got {type(local).__name__}"]
        problems = []
        for key, value in recorded.items():
            if key == "properties" or key in RECORDING_QUIRKS:
                continue  # free-form / known recording quirk
            if key not in local:
                problems.append(f"{where}.{key}: missing")
            else:
                problems += shape_differences(value, local[key], f"{where}.{key}")
        return problems
    if isinstance(recorded, list):
        # Lengths are values (a footprint's vertices); items must have the recorded shape.
        if not isinstance(local, list) or (recorded and not local):
            return [f"{where}: non-empty list expected, got {local!r:.80}"]
        return [
            problem
            for i, (r, v) in enumerate(zip(recorded, local))
            for problem in shape_differences(r, v, f"{where}[{i}]")
        ]
    numbers = (int, float)
    if isinstance(recorded, numbers) and not isinstance(recorded, bool):
        return (
            []
            if isinstance(local, numbers) and not isinstance(local, bool)
            else [f"{where}: number expected, got {local!r}"]
        )
    return [] if type(local) is type(recorded) else [f"{where}: {type(recorded).__name__} expected, got {local!r:.80}"]


def undocumented_asset_fields(asset: dict[str, Any]) -> list[str]:
    problems = [f"asset field {key!r}" for key in set(asset) - ASSET_FIELDS]
    for band in asset.get("bands", []):
        problems += [f"band field {key!r}" for key in set(band) - BAND_FIELDS]
        problems += [f"grid field {key!r}" for key in set(band["grid"]) - GRID_FIELDS]
        problems += [f"dataType field {key!r}" for key in set(band["dataType"]) - DATA_TYPE_FIELDS]
    return problems


@pytest.fixture(scope="module")
def local():
    with LocalEndpoint.running() as endpoint:
        yield endpoint


def test_shape_differences_finds_a_missing_field_and_a_wrong_type():
    recorded = {"bands": [{"id": "B1", "grid": {"dimensions": {"width": 3}}}]}
    assert shape_differences(recorded, {"bands": [{"id": "B1", "grid": {}}]}) == [".bands[0].grid.dimensions: missing"]
    wrong = {"bands": [{"id": 1, "grid": {"dimensions": {"width": "3"}}}]}
    assert len(shape_differences(recorded, wrong)) == 2


def test_get_asset_has_every_recorded_field(local):
    answer = requests.get(f"{local.url}/v1/projects/earthengine-public/assets/image", timeout=30).json()
    assert shape_differences(recorded_image(), answer) == []
    assert undocumented_asset_fields(answer) == []
    assert isinstance(answer["sizeBytes"], str) and int(answer["sizeBytes"]) > 0
    assert answer["properties"] == recorded_image()["properties"]


def test_listing_entries_have_every_recorded_field(local):
    answer = requests.get(
        f"{local.url}/v1/projects/earthengine-public/assets/collection:listAssets",
        params={"filter": COLLECTION_FILTER},
        timeout=30,
    ).json()
    assert set(answer) <= {"assets", "nextPageToken"}
    assert [entry["name"] for entry in answer["assets"]] == [entry["name"] for entry in recorded_listing()]
    for recorded, entry in zip(recorded_listing(), answer["assets"]):
        assert shape_differences(recorded, entry) == []
        assert undocumented_asset_fields(entry) == []
        assert (entry["startTime"], entry["endTime"]) == (recorded["startTime"], recorded["endTime"])


def test_get_info_has_the_recorded_shape(local):
    body = {"expression": load_expression(COMPUTED_IMAGE_ID)}
    answer = requests.post(f"{local.url}/v1/projects/p/value:compute", json=body, timeout=30).json()
    assert set(answer) == {"result"}
    info, recorded = answer["result"], recorded_info()
    assert set(info) == set(recorded)
    assert shape_differences({k: v for k, v in recorded.items() if k != "version"}, info) == []
    for local_band, recorded_band in zip(info["bands"], recorded["bands"]):
        assert set(local_band) == set(recorded_band)
        assert local_band["data_type"] == recorded_band["data_type"]
        assert local_band["crs_transform"] == pytest.approx(recorded_band["crs_transform"])
    assert info["id"] == recorded["id"]
    assert isinstance(info["version"], int)


@pytest.mark.parametrize(
    ("kind", "path", "params"),
    [
        ("not_found", "/v1/projects/earthengine-public/assets/no/such/asset", {}),
        ("bad_request", "/v1/projects/earthengine-public/assets/collection:listAssets", {"filter": "string_field = "}),
    ],
)
def test_error_bodies_have_the_recorded_shape(local, kind, path, params):
    recorded = ERRORS[kind]
    response = requests.get(f"{local.url}{path}", params=params, timeout=30)
    assert response.status_code == recorded["status"]
    body = response.json()
    assert shape_differences(recorded["body"], body) == []
    assert set(body["error"]) <= {"code", "message", "status", "details"}
    assert body["error"]["code"] == recorded["status"] and body["error"]["message"]


def test_the_replay_writes_npy_as_gdal_recorded_it():
    """The header GDAL's EEDAI autotest (test_eedai_2) sends for bands B1, B9 of 38 x 39 px, verbatim."""
    from tests.conformance.replay import _npy

    gdal_header = b"{'descr': [('B1', '<u2'), ('B9', '<u2')], 'fortran_order': False, 'shape': (39, 38), }"
    pixels = {"B1": np.full((39, 38), 12345, "uint16"), "B9": np.full((39, 38), 23456, "uint16")}
    body = _npy(pixels)
    assert body[:8] == b"\x93NUMPY\x01\x00"
    assert body[8:10] == len(gdal_header).to_bytes(2, "little") and body[10 : 10 + len(gdal_header)] == gdal_header
    assert body[10 + len(gdal_header) :] == (np.array([12345, 23456], "<u2").tobytes() * (38 * 39))
