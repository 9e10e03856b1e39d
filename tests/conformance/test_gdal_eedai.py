"""GDAL's EEDAI driver (inside rasterio, unmodified) reading from the local server and from the replay.

GDAL is a second, independent Earth Engine client: it builds its own getAsset and
getPixels requests (``EEDA_URL`` is the API root, ``EEDA_BEARER`` the token). Against
the local server it must read a procedural image pixel-exact in every pixel encoding;
against the replay it must read its own autotest's recorded image (a check of the replay
itself: the recording is what GDAL was written against).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

from eexarray.geometry import PixelGrid
from eexarray.server import ProceduralImage, procedural_values, serve
from tests.conformance.endpoints import ReplayEndpoint, grid_of_band, recorded_image

GRID = PixelGrid("EPSG:32610", Affine(10, 0, 500000, 0, -10, 4200000), 600, 400)
DTYPES = ("uint8", "int16", "uint16", "float32", "float64")
BAND_IDS = ("u8", "i16", "u16", "f32", "f64")
TOKEN = "gdal-token"


# 8-bit RGB: what GDAL's AUTO encoding fetches as PNG; 2000 x 1500 px has exact 1/4 overviews.
RGB_GRID = PixelGrid("EPSG:32610", Affine(10, 0, 500000, 0, -10, 4200000), 2000, 1500)


@pytest.fixture(scope="module")
def server():
    catalog = [
        ProceduralImage("conformance/gdal", GRID, dtypes=DTYPES, band_ids=BAND_IDS),
        ProceduralImage("conformance/rgb", RGB_GRID, dtypes=("uint8",) * 3, band_ids=("r", "g", "b")),
    ]
    with serve(catalog=catalog, token=TOKEN) as running:
        yield running


@contextlib.contextmanager
def open_eedai(url: str, name: str, version: str = "v1alpha", **open_options: str) -> Iterator[Any]:
    # GDAL's default EEDA_URL is https://earthengine.googleapis.com/v1alpha/: the API root with
    # its version. GDAL reads blocks lazily, so the configuration must outlive the open.
    with rasterio.Env(EEDA_URL=f"{url}/{version}/", EEDA_BEARER=TOKEN, GDAL_HTTP_MAX_RETRY="0"):
        with rasterio.open(f"EEDAI:{name}", **open_options) as dataset:
            yield dataset


def expected(band: int, dtype: str, rows: slice, cols: slice) -> np.ndarray:
    return procedural_values(
        band, np.arange(rows.start, rows.stop)[:, None], np.arange(cols.start, cols.stop)[None, :], 0, dtype
    )


@pytest.mark.parametrize("encoding", ["NPY", "GEO_TIFF", "AUTO"])
def test_gdal_reads_a_procedural_image_pixel_exact(server, encoding):
    server.reset_stats()
    rows, cols = slice(250, 400), slice(500, 600)  # crosses GDAL's 256 px blocks and the image's edge
    with open_eedai(server.url, "projects/earthengine-public/assets/conformance/gdal", PIXEL_ENCODING=encoding) as ds:
        assert (ds.width, ds.height, ds.count) == (GRID.width, GRID.height, len(DTYPES))
        assert ds.crs.to_epsg() == 32610 and ds.transform == GRID.transform
        assert ds.descriptions == BAND_IDS and ds.dtypes == DTYPES
        for band, dtype in enumerate(DTYPES):
            window = ds.read(band + 1, window=((rows.start, rows.stop), (cols.start, cols.stop)))
            np.testing.assert_array_equal(window, expected(band, dtype, rows, cols))
    stats = server.stats()
    assert stats["requests"]["getAsset"] >= 1 and stats["requests"]["getPixels"] >= 1
    assert set(stats["statuses"]) == {"200"}
    formats = {record["fileFormat"] for record in stats["pixel_requests"]}
    if encoding == "AUTO":  # GDAL picks per request; raw encodings for non-8-bit bands
        assert formats and formats <= {"NPY", "GEO_TIFF", "PNG", "JPEG"}
    else:
        assert formats == {encoding}


def test_gdal_reads_through_the_v1_root_and_a_short_id(server):
    with open_eedai(server.url, "conformance/gdal", version="v1", PIXEL_ENCODING="NPY") as ds:
        np.testing.assert_array_equal(
            ds.read(3, window=((0, 3), (0, 4))), expected(2, "uint16", slice(0, 3), slice(0, 4))
        )


def test_gdal_reads_its_own_recorded_image_from_the_replay():
    b1 = recorded_image()["bands"][0]
    grid = grid_of_band(b1)
    with ReplayEndpoint.running() as replay:
        with open_eedai(replay.url, "image", PIXEL_ENCODING="NPY") as ds:
            # GDAL keeps the bands sharing the first band's grid (B1, B9), as in its autotest.
            assert ds.descriptions == ("B1", "B9") and (ds.width, ds.height) == (grid.width, grid.height)
            rows, cols = slice(1800, 1831), slice(1790, 1830)
            window = ds.read(2, window=((rows.start, rows.stop), (cols.start, cols.stop)))
            np.testing.assert_array_equal(window, expected(2, "uint16", rows, cols))  # B9: band 2 of the recording
        pixel_requests = [record for record in replay.replay.requests if record["path"].endswith(":getPixels")]
        assert pixel_requests and all(record["version"] == "v1alpha" for record in pixel_requests)


def test_gdal_reads_png_and_overviews_pixel_exact(server):
    """AUTO fetches 8-bit RGB as PNG; a 1/4 overview read is the formula at the sampled pixel centres
    (a ProceduralImage has no pyramids: the server samples the native pixel under each output centre)."""
    server.reset_stats()
    with open_eedai(server.url, "conformance/rgb") as ds:
        assert ds.overviews(1) == [2, 4, 8]
        full = ds.read(window=((0, 20), (0, 30)))
        coarse = ds.read(out_shape=(3, RGB_GRID.height // 4, RGB_GRID.width // 4))
    for band in range(3):
        np.testing.assert_array_equal(full[band], expected(band, "uint8", slice(0, 20), slice(0, 30)))
        centres_rows = np.arange(RGB_GRID.height // 4)[:, None] * 4 + 2
        centres_cols = np.arange(RGB_GRID.width // 4)[None, :] * 4 + 2
        np.testing.assert_array_equal(coarse[band], procedural_values(band, centres_rows, centres_cols, 0, "uint8"))
    records = server.stats()["pixel_requests"]
    assert {record["fileFormat"] for record in records} == {"PNG"}
    assert any(record["width"] == 256 and record["height"] == 256 for record in records)
