"""The official earthengine-api client, unchanged, against the local server."""

from __future__ import annotations

import io

import ee
import google.oauth2.credentials
import numpy as np
import pytest
from affine import Affine
from PIL import Image

from eexarray.geometry import PixelGrid
from eexarray.server import InMemoryImage, procedural_collection, serve

GRID = PixelGrid("EPSG:32610", Affine(10, 0, 499980, 0, -10, 4200000), 1000, 1000)
RNG = np.random.default_rng(7)
REFLECTANCE = {band: RNG.integers(0, 3500, GRID.shape, dtype="uint16") for band in ("B4", "B3", "B2")}


@pytest.fixture(scope="module")
def ee_server():
    catalog = [
        InMemoryImage(
            "test/s2like",
            REFLECTANCE,
            GRID,
            start_time="2021-01-09T18:57:51Z",
            properties={"CLOUDY_PIXEL_PERCENTAGE": 4.5, "SPACECRAFT_NAME": "Sentinel-2A"},
        ),
        procedural_collection(
            "test/series", GRID, 10, dtypes=("uint16",), band_ids=("red",), start="2020-01-01T00:00:00Z"
        ),
    ]
    original_fetch = ee.deprecation._FetchDataCatalogStac
    # Initialize also fetches a list of deprecated public assets from Google: not reachable here.
    ee.deprecation._FetchDataCatalogStac = dict
    with serve(catalog=catalog) as server:
        ee.Initialize(credentials=google.oauth2.credentials.Credentials("t"), project="p", opt_url=server.url)
        try:
            yield server
        finally:
            ee.Reset()
            ee.deprecation._FetchDataCatalogStac = original_fetch


def test_initialize_used_discovery_and_algorithms(ee_server):
    requests_seen = ee_server.stats()["requests"]
    assert requests_seen["discovery"] >= 1 and requests_seen["listAlgorithms"] >= 1
    assert "Image.load" in ee.ApiFunction.allSignatures()


def test_get_asset(ee_server):
    asset = ee.data.getAsset("test/s2like")
    assert asset["type"] == "IMAGE"
    assert asset["name"] == "projects/earthengine-public/assets/test/s2like"
    assert asset["startTime"] == "2021-01-09T18:57:51Z"
    assert asset["properties"] == {"CLOUDY_PIXEL_PERCENTAGE": 4.5, "SPACECRAFT_NAME": "Sentinel-2A"}
    assert [band["id"] for band in asset["bands"]] == ["B4", "B3", "B2"]
    assert asset["bands"][0]["grid"]["crsCode"] == "EPSG:32610"
    with pytest.raises(ee.EEException, match='Asset "projects/earthengine-public/assets/test/nope" not found.'):
        ee.data.getAsset("test/nope")


def test_list_assets(ee_server):
    listed = ee.data.listAssets({"parent": "test"})
    assert [(a["id"], a["type"]) for a in listed["assets"]] == [
        ("test/s2like", "IMAGE"),
        ("test/series", "IMAGE_COLLECTION"),
    ]
    root = ee.data.listAssets({"parent": "projects/earthengine-public/assets/"})  # the project-level call
    assert [a["id"] for a in root["assets"]] == ["test"]
    paged = ee.data.listAssets({"parent": "test/series", "pageSize": 3})
    assert [a["id"] for a in paged["assets"]] == ["test/series/00000", "test/series/00001", "test/series/00002"]
    assert "nextPageToken" in paged
    everything = ee.data.listAssets("test/series")  # the client follows nextPageToken itself
    assert len(everything["assets"]) == 10


def test_list_images_with_time_and_region(ee_server):
    images = ee.data.listImages({
        "parent": "test/series", "startTime": "2020-01-03T00:00:00.000Z", "endTime": "2020-01-08T00:00:00.000Z",
    })["images"]  # fmt: skip
    # startTime >= start AND endTime < end: image 6 ends exactly at the end, so it is out.
    assert [image["id"] for image in images] == [f"test/series/{i:05d}" for i in (2, 3, 4, 5)]
    inside = {"type": "Point", "coordinates": [-122.99, 37.9]}
    outside = {"type": "Polygon", "coordinates": [[[10, 10], [11, 10], [11, 11], [10, 11], [10, 10]]]}
    assert len(ee.data.listImages({"parent": "test/series", "region": inside})["images"]) == 10
    assert ee.data.listImages({"parent": "test/series", "region": outside})["images"] == []
    filtered = ee.data.listImages({"parent": "test/series", "properties": ["index>=8"]})["images"]
    assert [image["properties"]["index"] for image in filtered] == [8, 9]


def test_get_pixels_numpy(ee_server):
    array = ee.data.getPixels({
        "assetId": "test/s2like",
        "fileFormat": "NUMPY_NDARRAY",
        "bandIds": ["B3", "B2"],
        "grid": {
            "dimensions": {"width": 40, "height": 30},
            "affineTransform": {"scaleX": 10, "shearX": 0, "translateX": 499980 + 10 * 100,
                                "shearY": 0, "scaleY": -10, "translateY": 4200000 - 10 * 200},
            "crsCode": "EPSG:32610",
        },
    })  # fmt: skip
    assert array.dtype.names == ("B3", "B2")
    assert array.shape == (30, 40)
    assert np.array_equal(array["B3"], REFLECTANCE["B3"][200:230, 100:140])
    assert np.array_equal(array["B2"], REFLECTANCE["B2"][200:230, 100:140])


def test_get_pixels_png_as_in_the_ee_documentation(ee_server):
    # The request shape of the ee.data.getPixels documentation example.
    png = ee.data.getPixels({
        "assetId": "test/s2like",
        "fileFormat": "PNG",
        "bandIds": ["B4", "B3", "B2"],
        "grid": {
            "dimensions": {"width": 640, "height": 640},
            "affineTransform": {"scaleX": 10, "shearX": 0, "translateX": 499980,
                                "shearY": 0, "scaleY": -10, "translateY": 4200000},
            "crsCode": "EPSG:32610",
        },
        "visualizationOptions": {"ranges": [{"min": 0, "max": 3000}]},
    })  # fmt: skip
    picture = np.asarray(Image.open(io.BytesIO(png)))
    assert picture.shape == (640, 640, 4)
    for channel, band in enumerate(("B4", "B3", "B2")):
        values = REFLECTANCE[band][:640, :640].astype("float64")
        assert np.array_equal(picture[..., channel], np.rint(np.clip(values / 3000, 0, 1) * 255))
    assert (picture[..., 3] == 255).all()
    assert ee_server.stats()["pixel_requests"][-1]["fileFormat"] == "PNG"
