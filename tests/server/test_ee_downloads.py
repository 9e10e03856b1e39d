"""projects.thumbnails through the official client: getDownloadId + makeDownloadUrl (the
getDownloadId reference page's options), getDownloadURL and getThumbURL, checked pixel by
pixel against the procedural formula of ``c/img`` (UTM 10 m; B5 on a 20 m grid).
"""

from __future__ import annotations

import io
import zipfile

import ee
import numpy as np
import pyproj
import pytest
import rasterio
import requests
from PIL import Image as PILImage

from tests.server import test_ee_algorithms
from tests.server.test_compute_pixels import COARSE, GRID, truth
from tests.server.test_ee_algorithms import DEGREE_AT_10_M, utm_box

ee_server = test_ee_algorithms.ee_server  # the same fixture (official client initialised on the local server)

FULL = {band: truth(band, 0, 0, 300, 200) for band in (0, 1, 2)}
B5 = truth(3, 0, 0, 150, 100)  # on its own 20 m grid


def download(params: dict) -> bytes:
    response = requests.get(ee.data.makeDownloadUrl(ee.data.getDownloadId(params)), timeout=60)
    assert response.status_code == 200, response.text
    return response.content


def geotiff(data: bytes) -> tuple[np.ndarray, rasterio.Affine, str, list[str]]:
    with rasterio.MemoryFile(data) as memory, memory.open() as dataset:
        return dataset.read(), dataset.transform, dataset.crs.to_string(), list(dataset.descriptions)


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_npy_with_region_and_scale(ee_server):
    # The reference page's NPY example: bands, region, scale 20 (metres), format NPY.
    image = ee.Image("c/img")
    data = download({"image": image, "bands": ["B4", "B3"], "region": utm_box(40, 50, 60, 80), "scale": 20,
                     "format": "NPY"})  # fmt: skip
    array = np.load(io.BytesIO(data))
    assert array.dtype.names == ("B4", "B3") and array.shape == (10, 15)
    # 20 m pixels (rows 20..29, cols 25..39 of the 20 m lattice): nearest native pixel of each centre.
    assert np.array_equal(array["B4"], FULL[0][41:60:2, 51:80:2])
    assert np.array_equal(array["B3"], FULL[1][41:60:2, 51:80:2])


def test_zipped_single_band_files_with_region_and_name(ee_server):
    files = unzip(download({"image": ee.Image("c/img"), "name": "single_band", "bands": ["B4", "B3"],
                            "region": utm_box(40, 50, 60, 80)}))  # fmt: skip
    assert sorted(files) == ["single_band.B3.tif", "single_band.B4.tif"]
    values, transform, crs, descriptions = geotiff(files["single_band.B4.tif"])
    assert crs == "EPSG:32610" and descriptions == ["B4"]
    assert transform == rasterio.Affine(10, 0, 500000 + 500, 0, -10, 4200000 - 400)
    # Region without scale: the clipped image on its native grid; outside the polygon is 0.
    assert values.shape == (1, 20, 30)
    assert np.array_equal(values[0], FULL[0][40:60, 50:80])


def test_multi_band_zip_and_geotiff(ee_server):
    region, image = utm_box(40, 50, 60, 80), ee.Image("c/img")
    files = unzip(download({"image": image, "name": "multi_band", "bands": ["B4", "B3"], "region": region,
                            "scale": 20, "filePerBand": False}))  # fmt: skip
    assert list(files) == ["multi_band.tif"]
    values, transform, _, descriptions = geotiff(files["multi_band.tif"])
    assert descriptions == ["B4", "B3"] and transform == rasterio.Affine(20, 0, 500500, 0, -20, 4199600)
    assert np.array_equal(values[0], FULL[0][41:60:2, 51:80:2]) and np.array_equal(values[1], FULL[1][41:60:2, 51:80:2])
    single = download({"image": image, "bands": ["B4", "B3"], "region": region, "scale": 20, "format": "GEO_TIFF"})
    assert np.array_equal(geotiff(single)[0], values)


def test_band_specific_transformations(ee_server):
    # Per-band scale (and CRS): each file on its own grid.
    files = unzip(download({
        "image": ee.Image("c/img"), "name": "custom", "region": utm_box(40, 50, 60, 80),
        "bands": [{"id": "B4", "scale": 10}, {"id": "B5", "scale": 20},
                  {"id": "B3", "crs": "EPSG:4326", "scale": 20}],
    }))  # fmt: skip
    assert sorted(files) == ["custom.B3.tif", "custom.B4.tif", "custom.B5.tif"]
    b4, t4, _, _ = geotiff(files["custom.B4.tif"])
    assert t4 == rasterio.Affine(10, 0, 500500, 0, -10, 4199600) and np.array_equal(b4[0], FULL[0][40:60, 50:80])
    b5, t5, _, _ = geotiff(files["custom.B5.tif"])
    assert t5 == rasterio.Affine(20, 0, 500500, 0, -20, 4199600)
    assert np.array_equal(b5[0], B5[20:30, 25:40])  # native 20 m pixels: a window read
    b3, t3, crs3, _ = geotiff(files["custom.B3.tif"])
    assert crs3 == "EPSG:4326" and t3.a == pytest.approx(2 * DEGREE_AT_10_M, rel=1e-12)
    assert t3.e == pytest.approx(-2 * DEGREE_AT_10_M, rel=1e-12)
    # Each centre of the lon/lat grid, to UTM, to the native pixel containing it.
    rows, cols = np.meshgrid(np.arange(b3.shape[1]) + 0.5, np.arange(b3.shape[2]) + 0.5, indexing="ij")
    lon, lat = t3.c + cols * t3.a, t3.f + rows * t3.e
    xs, ys = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32610", always_xy=True).transform(lon, lat)
    native_rows, native_cols = np.floor((4200000 - ys) / 10).astype(int), np.floor((xs - 500000) / 10).astype(int)
    assert np.array_equal(b3[0], FULL[1][native_rows, native_cols])
    # 200 m x 300 m at 37.9 N in pixels of 1.797e-4 degrees: 10.0 x 18.9, plus the partly covered edges.
    assert b3.shape[1:] == (11, 20)


def test_crs_transform_and_dimensions_give_that_exact_rectangle(ee_server):
    data = download({"image": ee.Image("c/img").select("B4"), "format": "GEO_TIFF", "crs": "EPSG:32610",
                     "crs_transform": [10, 0, 501000, 0, -10, 4199500], "dimensions": [30, 20]})  # fmt: skip
    values, transform, crs, _ = geotiff(data)
    assert crs == "EPSG:32610" and transform == rasterio.Affine(10, 0, 501000, 0, -10, 4199500)
    assert np.array_equal(values[0], FULL[0][50:70, 100:130])


def test_dimensions_scale_the_region(ee_server):
    data = download({"image": ee.Image("c/img").select("B4"), "format": "NPY", "region": utm_box(40, 50, 60, 80),
                     "dimensions": [15, 10]})  # fmt: skip
    array = np.load(io.BytesIO(data))["B4"]
    assert array.shape == (10, 15)
    # The bounds (a quarter pixel inside the 300 m x 200 m box) in 15 x 10 pixels of 19.67 m x 19.5 m.
    x0, x1, y0, y1 = 500502.5, 500797.5, 4199597.5, 4199402.5
    cols = np.floor((x0 + (np.arange(15) + 0.5) * (x1 - x0) / 15 - 500000) / 10).astype(int)
    rows = np.floor((4200000 - (y0 + (np.arange(10) + 0.5) * (y1 - y0) / 10)) / 10).astype(int)
    assert np.array_equal(array, FULL[0][np.ix_(rows, cols)])


def test_get_download_url(ee_server):
    url = ee.Image("c/img").select(["B4"]).getDownloadURL({"region": utm_box(40, 50, 60, 80), "format": "NPY"})
    array = np.load(io.BytesIO(requests.get(url, timeout=60).content))
    assert np.array_equal(array["B4"], FULL[0][40:60, 50:80])


def test_get_thumb_url_renders_min_max(ee_server):
    url = ee.Image("c/img").getThumbURL({"bands": ["B4", "B3", "B8"], "min": 0, "max": 3000,
                                         "region": utm_box(40, 50, 60, 80), "format": "png"})  # fmt: skip
    response = requests.get(url, timeout=60)
    assert response.headers["Content-Type"] == "image/png"
    rgb = np.asarray(PILImage.open(io.BytesIO(response.content)).convert("RGBA"))
    expected = [np.rint(np.clip(FULL[b][40:60, 50:80] / 3000, 0, 1) * 255).astype("uint8") for b in (0, 1, 2)]
    assert rgb.shape == (20, 30, 4)
    for channel in range(3):
        assert np.array_equal(rgb[:, :, channel], expected[channel])
    assert (rgb[:, :, 3] == 255).all()


def test_thumbnail_errors(ee_server):
    with pytest.raises(ee.EEException, match="Pattern 'B9' did not match any bands"):
        ee.data.getDownloadId({"image": ee.Image("c/img"), "bands": ["B9"]})
    missing = requests.get(f"{ee_server.url}/v1/projects/p/thumbnails/nope:getPixels", timeout=30)
    assert missing.status_code == 404 and "not found" in missing.json()["error"]["message"]
    assert COARSE.transform.a == 20 and GRID.transform.a == 10


def test_the_thumbnail_store_is_bounded():
    from eexarray.server.catalog import Catalog
    from eexarray.server.errors import ApiError
    from eexarray.server.thumbnails import ThumbnailStore
    from tests.server.test_compute_pixels import catalog, expression, load

    store = ThumbnailStore(limit=3, max_bytes=10**6)
    built = Catalog.build(entries=catalog())
    names = [store.create(built, "projects/p", {"expression": expression(load("c/img")), "fileFormat": "NPY"})["name"]
             for _ in range(5)]  # fmt: skip
    assert all(name.startswith("projects/p/thumbnails/") for name in names) and len(set(names)) == 5
    with pytest.raises(ApiError, match="not found"):
        store.get_pixels(built, names[0])  # the oldest were dropped
    assert store.get_pixels(built, names[-1]).band_ids == ["B4", "B3", "B8", "B5"]
    small = ThumbnailStore(limit=100, max_bytes=1)  # every body is larger: only the newest is kept
    first = small.create(built, "projects/p", {"expression": expression(load("c/img")), "fileFormat": "NPY"})
    second = small.create(built, "projects/p", {"expression": expression(load("c/img")), "fileFormat": "NPY"})
    with pytest.raises(ApiError, match="not found"):
        small.get_pixels(built, first["name"])
    assert small.get_pixels(built, second["name"]).width == 300


def test_get_thumb_url_with_max_dimension(ee_server):
    url = ee.Image("c/img").getThumbURL({"bands": ["B4"], "min": 0, "max": 3000, "dimensions": 64,
                                         "region": utm_box(40, 50, 60, 80), "format": "png"})  # fmt: skip
    grey = np.asarray(PILImage.open(io.BytesIO(requests.get(url, timeout=60).content)).convert("RGBA"))
    # The longer side (295 m) gets 64 pixels; the other keeps the aspect ratio: round(64 * 195 / 295) = 42.
    assert grey.shape == (42, 64, 4)
    x0, x1, y0, y1 = 500502.5, 500797.5, 4199597.5, 4199402.5
    cols = np.floor((x0 + (np.arange(64) + 0.5) * (x1 - x0) / 64 - 500000) / 10).astype(int)
    rows = np.floor((4200000 - (y0 + (np.arange(42) + 0.5) * (y1 - y0) / 42)) / 10).astype(int)
    expected = np.rint(np.clip(FULL[0][np.ix_(rows, cols)] / 3000, 0, 1) * 255).astype("uint8")
    assert np.array_equal(grey[:, :, 0], expected) and np.array_equal(grey[:, :, 2], expected)
