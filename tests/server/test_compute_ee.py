"""The official earthengine-api client, unchanged, computing images and values on the local server."""

from __future__ import annotations

import ee
import google.oauth2.credentials
import numpy as np
import pytest

from eexarray.server import serve
from tests.server.test_compute_pixels import GRID, STACK_MASKS, catalog, mask_of, truth


@pytest.fixture(scope="module")
def ee_server():
    original_fetch = ee.deprecation._FetchDataCatalogStac
    # Initialize also fetches a list of deprecated public assets from Google: not reachable here.
    ee.deprecation._FetchDataCatalogStac = dict
    with serve(catalog=catalog()) as server:
        ee.Initialize(credentials=google.oauth2.credentials.Credentials("t"), project="p", opt_url=server.url)
        try:
            yield server
        finally:
            ee.Reset()
            ee.deprecation._FetchDataCatalogStac = original_fetch


def grid(row: int, col: int, width: int, height: int) -> dict:
    t = GRID.transform
    return {
        "dimensions": {"width": width, "height": height},
        "affineTransform": {"scaleX": t.a, "shearX": 0, "translateX": t.c + col * t.a,
                            "shearY": 0, "scaleY": t.e, "translateY": t.f + row * t.e},
        "crsCode": GRID.crs,
    }  # fmt: skip


def test_compute_pixels_of_an_ndvi(ee_server):
    ndvi = ee.Image("c/img").normalizedDifference(["B4", "B3"])
    array = ee.data.computePixels({"expression": ndvi, "fileFormat": "NUMPY_NDARRAY", "grid": grid(30, 40, 20, 10)})
    a, b = truth(0, 30, 40, 20, 10).astype("float64"), truth(1, 30, 40, 20, 10).astype("float64")
    assert array.dtype.names == ("nd",)
    assert np.array_equal(array["nd"], ((a - b) / (a + b)).astype("float32"))


def test_compute_pixels_of_a_filtered_median_composite(ee_server):
    collection = ee.ImageCollection("c/stack").filterDate("2021-01-01", "2021-01-04")  # images 0, 1, 2
    array = ee.data.computePixels({
        "expression": collection.select(["red"]).median(), "fileFormat": "NUMPY_NDARRAY", "grid": grid(0, 0, 70, 60),
    })  # fmt: skip
    stack = np.ma.MaskedArray(
        np.stack([truth(0, 0, 0, 70, 60, t, "uint16") for t in range(3)]).astype("float64"),
        np.stack([mask_of(STACK_MASKS[t], 0, 0, 70, 60) for t in range(3)]),
    )
    expected = np.ma.median(stack, axis=0)
    assert np.array_equal(array["red"], expected.filled(0))
    assert expected.mask.any()  # masked in all three images: 0 on the wire


def test_compute_pixels_of_masked_arithmetic_on_a_mapped_collection(ee_server):
    def brighten(image):
        return image.select("red").add(1000).updateMask(image.select("swir").gt(400))

    packed = ee.ImageCollection("c/stack").limit(2).map(brighten).toBands()
    array = ee.data.computePixels({"expression": packed, "fileFormat": "NUMPY_NDARRAY", "grid": grid(50, 50, 30, 20)})
    assert array.dtype.names == ("s0_red", "s1_red")
    for t, name in enumerate(array.dtype.names):
        red = truth(0, 50, 50, 30, 20, t, "uint16").astype("int64") + 1000
        keep = (truth(1, 50, 50, 30, 20, t, "float32") > 400) & ~mask_of(STACK_MASKS[t], 50, 50, 30, 20)
        assert keep.any() and (~keep).any()
        assert np.array_equal(array[name], np.where(keep, red, 0))


def test_get_info_of_images_and_collections(ee_server):
    info = ee.Image("c/img").select(["B4"], ["red"]).getInfo()
    assert info["bands"][0]["id"] == "red" and info["bands"][0]["dimensions"] == [300, 200]
    assert info["bands"][0]["data_type"] == {"type": "PixelType", "precision": "int", "min": 0, "max": 65535}
    collection = ee.ImageCollection("c/stack")
    assert collection.size().getInfo() == 5
    assert collection.filterMetadata("index", "less_than", 2).size().getInfo() == 2
    assert collection.filter(ee.Filter.gte("index", 3)).size().getInfo() == 2
    assert collection.filterBounds(ee.Geometry.Point([-122.99, 37.93])).size().getInfo() == 5
    assert collection.filterBounds(ee.Geometry.Rectangle([10, 10, 11, 11])).size().getInfo() == 0
    listed = collection.toList(2, 3)
    assert ee.Image(listed.get(1)).get("index").getInfo() == 4
    assert collection.first().bandNames().getInfo() == ["red", "swir"]
    names = ee.ImageCollection.fromImages([ee.Image("c/img").select("B8"), collection.first()]).toBands().bandNames()
    assert names.getInfo() == ["0_B8", "1_red", "1_swir"]
    features = collection.limit(3, "system:time_start", False).getInfo()["features"]
    assert [feature["properties"]["system:index"] for feature in features] == ["s4", "s3", "s2"]
    assert collection.aggregate_array("index").getInfo() == [0, 1, 2, 3, 4]
    median = collection.median().getInfo()
    assert median["bands"][0]["crs"] == "EPSG:4326" and "dimensions" not in median["bands"][0]


def test_unsupported_algorithms_fail_by_name(ee_server):
    # The client builds a method for every algorithm of Earth Engine's catalog (the server lists it all)...
    assert ee.ApiFunction.lookupInternal("Image.glcmTexture") is not None
    assert callable(ee.Image("c/img").glcmTexture)
    # ... and evaluating one this server has not built is a 400 naming it.
    with pytest.raises(ee.EEException, match='"Image.glcmTexture" is not implemented by the local Earth Engine server'):
        ee.Image("c/img").glcmTexture().getInfo()
    with pytest.raises(ee.EEException, match="Pattern 'B9' did not match any bands"):
        ee.Image("c/img").select("B9").getInfo()
