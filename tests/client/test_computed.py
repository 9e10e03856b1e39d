"""Computed images through computePixels: expression graphs and ee objects, pixel-exact."""

from __future__ import annotations

import numpy as np
import pytest

import eexarray
from eexarray.server.images import procedural_values

from .conftest import SMALL


def formula(band, rows, cols, dtype, time=0):
    return procedural_values(band, np.asarray(rows)[:, None], np.asarray(cols)[None, :], time, dtype)


def invoke(name, **arguments):
    return {"functionInvocationValue": {"functionName": name, "arguments": arguments}}


def load(asset):
    return invoke("Image.load", id={"constantValue": asset})


def ndvi_expression(asset):
    image = load(asset)
    return {
        "result": "0",
        "values": {"0": invoke("Image.normalizedDifference", input=image, bandNames={"constantValue": ["nir", "red"]})},
    }


def test_expression_graph_ndvi_is_pixel_exact(server, stats):
    series_image = "test/series/00004"
    ds = eexarray.open_dataset(ndvi_expression(series_image), endpoint=server.url)
    assert ds.rio.crs.to_epsg() == 32610
    assert ds.rio.transform() == SMALL.transform
    (name,) = list(ds.data_vars)
    red = formula(0, range(400), range(600), "uint16", 4).astype("float64")
    nir = formula(1, range(400), range(600), "uint16", 4).astype("float64")
    expected = ((nir - red) / (nir + red)).astype("float32")
    assert ds[name].dtype == np.float32
    np.testing.assert_allclose(ds[name].values, expected, rtol=1e-6)
    counts = stats()["requests"]
    assert counts.get("valueCompute", 0) == 1 and counts.get("computePixels", 0) >= 1
    assert counts.get("getPixels", 0) == 0


@pytest.fixture(scope="module")
def ee_initialized(server):
    ee = pytest.importorskip("ee")
    import google.oauth2.credentials

    original = ee.deprecation._FetchDataCatalogStac
    ee.deprecation._FetchDataCatalogStac = dict  # offline: no catalog of deprecated assets
    try:
        ee.Initialize(credentials=google.oauth2.credentials.Credentials("t"), project="p", opt_url=server.url)
        yield ee
    finally:
        ee.deprecation._FetchDataCatalogStac = original


def test_ee_image_with_arithmetic(server, ee_initialized):
    ee = ee_initialized
    image = ee.Image("test/mixed").select(["i16"]).add(1000)
    ds = eexarray.open_dataset(image, endpoint=server.url, project="p")
    values = ds[list(ds.data_vars)[0]].values
    np.testing.assert_array_equal(
        values.astype("int64"), formula(1, range(400), range(600), "int16").astype("int64") + 1000
    )


def test_ee_median_composite_on_a_chosen_grid(server, ee_initialized):
    ee = ee_initialized
    composite = ee.ImageCollection("test/series").select(["red"]).median()
    grid = SMALL.window(__import__("eexarray.geometry", fromlist=["Window"]).Window(0, 20, 0, 30))
    ds = eexarray.open_dataset(composite, endpoint=server.url, project="p", grid=grid)
    stack = np.stack([formula(0, range(20), range(30), "uint16", t).astype("float64") for t in range(30)])
    np.testing.assert_allclose(ds[list(ds.data_vars)[0]].values, np.median(stack, axis=0))


def test_ee_collection_becomes_a_time_dimension(server, ee_initialized):
    ee = ee_initialized
    collection = ee.ImageCollection("test/series").filter(ee.Filter.lt("index", 3))
    ds = eexarray.open_dataset(collection, endpoint=server.url, project="p", bands=["nir"])
    assert ds.sizes["time"] == 3
    assert str(ds.time.values[2])[:10] == "2020-01-21"
    window = ds.nir.isel(y=slice(0, 5), x=slice(0, 5)).values
    for time in range(3):
        np.testing.assert_array_equal(window[time], formula(1, range(5), range(5), "uint16", time))


def test_composite_without_a_grid_asks_for_one(server, ee_initialized):
    ee = ee_initialized
    composite = ee.ImageCollection("test/series").median()
    with pytest.raises(ValueError, match="region"):
        eexarray.open_dataset(composite, endpoint=server.url, project="p")


def test_bad_expressions_are_refused_before_requests(server, stats):
    with pytest.raises(ValueError, match="expression"):
        eexarray.open_dataset({"values": {}}, endpoint=server.url)
    with pytest.raises(ValueError, match="'9'"):
        eexarray.open_dataset({"result": "9", "values": {"0": load("test/mixed")}}, endpoint=server.url)
    assert stats()["requests"] == {}
