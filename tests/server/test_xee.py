"""Xee 0.1.x (a test-only dependency), unmodified, opening and reading a collection from the local server."""

from __future__ import annotations

import ee
import google.oauth2.credentials
import numpy as np
import pytest
import xarray as xr
import xee  # noqa: F401 - the test-only dependency under test (registers engine="ee")
from affine import Affine

from eexarray.geometry import PixelGrid, Window
from eexarray.server import procedural_collection, procedural_values, serve

GRID = PixelGrid("EPSG:32610", Affine(10, 0, 500000, 0, -10, 4200000), 512, 512)
MASKED = Window(8, 12, 30, 36)
COUNT = 7


@pytest.fixture(scope="module")
def xee_server():
    catalog = [procedural_collection("x/series", GRID, COUNT, dtypes=("uint16", "int16"), band_ids=("red", "nir"),
                                     masked=(MASKED,), properties={"title": "seven days"})]  # fmt: skip
    original_fetch = ee.deprecation._FetchDataCatalogStac
    ee.deprecation._FetchDataCatalogStac = dict  # no internet: skip the deprecated-assets download
    with serve(catalog=catalog) as server:
        ee.Initialize(credentials=google.oauth2.credentials.Credentials("t"), project="p", opt_url=server.url)
        try:
            yield server
        finally:
            ee.Reset()
            ee.deprecation._FetchDataCatalogStac = original_fetch


def test_xee_opens_and_reads_a_collection(xee_server):
    row, col, width, height = 5, 20, 40, 30
    transform = GRID.transform * Affine.translation(col, row)
    dataset = xr.open_dataset(
        ee.ImageCollection("x/series"),
        engine="ee",
        crs="EPSG:32610",
        crs_transform=tuple(transform)[:6],
        shape_2d=(width, height),
    )
    assert dict(dataset.sizes) == {"time": COUNT, "y": height, "x": width}
    assert list(dataset.data_vars) == ["red", "nir"]
    assert dataset.attrs["title"] == "seven days"
    times = [str(value)[:10] for value in dataset.time.values]
    assert times == [f"2020-01-0{day}" for day in range(1, COUNT + 1)]
    rows = np.arange(row, row + height)[:, None]
    cols = np.arange(col, col + width)[None, :]
    masked = np.zeros((height, width), bool)
    masked[MASKED.row_start - row : MASKED.row_stop - row, MASKED.col_start - col : MASKED.col_stop - col] = True
    for band, name, dtype in ((0, "red", "uint16"), (1, "nir", "int16")):
        values = dataset[name].values  # (time, y, x) float32; masked pixels NaN
        for t in range(COUNT):
            expected = procedural_values(band, rows, cols, t, dtype).astype("float32")
            expected[masked] = np.nan
            np.testing.assert_array_equal(values[t], expected)
    # Xee asks for metadata with value:compute and for pixels with computePixels only.
    requests_seen = xee_server.stats()["requests"]
    assert requests_seen["computePixels"] >= 2 and requests_seen["valueCompute"] >= 1
    assert "getPixels" not in requests_seen
