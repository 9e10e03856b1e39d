"""``resampling="bilinear"|"bicubic"``: reads off the native grid are interpolated by the service
(Earth Engine's ``Image.resample``), compared with GDAL's kernels on a smooth surface."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import rasterio.warp
from affine import Affine
from rasterio.enums import Resampling

import eexarray
from eexarray.geometry import PixelGrid
from eexarray.server.images import InMemoryImage, ServerCollection, procedural_collection

UTM = "EPSG:32610"
NATIVE = PixelGrid(UTM, Affine(10, 0, 500000, 0, -10, 4200000), 64, 48)
ROWS, COLS = np.mgrid[0:48, 0:64].astype("float64")
# Smooth: a few pixels per wiggle at most, so every kernel is far from aliasing.
SMOOTH = 100 * np.sin(COLS / 9.0) * np.cos(ROWS / 13.0) + 0.5 * ROWS + 0.2 * COLS
LINEAR = 3 * ROWS + 2 * COLS  # value at the pixel centre: 3 * (y - 0.5) + 2 * (x - 0.5) in pixel units
# Two images of one solar day (UTC-8 near 123 W), valid on overlapping halves, never 0 where valid.
LEFT = np.ma.MaskedArray(SMOOTH + 500, COLS >= 40)
RIGHT = np.ma.MaskedArray(2 * SMOOTH + 1000, COLS < 24)
SAME_DAY = ServerCollection(
    "test/day",
    [
        InMemoryImage("test/day/a", {"v": LEFT}, NATIVE, "2021-05-01T19:00:00Z"),
        InMemoryImage("test/day/b", {"v": RIGHT}, NATIVE, "2021-05-02T03:00:00Z"),
    ],
)


def open_native(*args, **kwargs):
    """Native values: these tests compare resampled values and request methods with GDAL's and
    getPixels' (exact masks resample the same way: test_exact_masks_resample_alike)."""
    return eexarray.open_dataset(*args, **{"mask_and_scale": False, **kwargs})


@pytest.fixture(scope="module")
def server():
    images = [
        InMemoryImage("test/smooth", {"v": SMOOTH, "i": np.rint(SMOOTH).astype("int16")}, NATIVE),
        InMemoryImage("test/linear", {"v": LINEAR}, NATIVE),
        InMemoryImage("test/pyramid", {"v": SMOOTH}, NATIVE, pyramids=True),
        procedural_collection("test/series", NATIVE, 6, dtypes=("uint16",), band_ids=("b",)),
        SAME_DAY,
    ]
    with eexarray.serve(catalog=images) as running:
        yield running


@pytest.fixture()
def stats(server):
    server.reset_stats()

    def read():
        """Requests by method since the last call (or the test's start)."""
        counts = server.stats()["requests"]
        server.reset_stats()
        return counts

    return read


def interior(transform: Affine, shape: tuple[int, int], margin: float = 2.5) -> np.ndarray:
    """Output pixels whose centre lies at least ``margin`` native pixels inside the native grid
    (where no kernel reaches past the edge: GDAL and the server treat edges differently)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    x, y = transform * (cols, rows)
    col_f, row_f = ~NATIVE.transform * (x, y)
    return (row_f >= margin) & (row_f <= NATIVE.height - margin) & (col_f >= margin) & (col_f <= NATIVE.width - margin)


@pytest.mark.parametrize(("mode", "gdal"), [("bilinear", Resampling.bilinear), ("bicubic", Resampling.cubic)])
def test_rescaled_reads_match_gdal_on_a_smooth_surface(server, stats, mode, gdal):
    ds = open_native("test/smooth", endpoint=server.url, scale=4, resampling=mode)
    transform, shape = ds.rio.transform(), ds.v.shape
    values = ds.v.values
    assert stats() == {"getAsset": 1, "computePixels": 1}  # resampled by the service: computePixels only
    expected = np.zeros(shape)
    rasterio.warp.reproject(
        SMOOTH, expected, src_transform=NATIVE.transform, src_crs=UTM, dst_transform=transform, dst_crs=UTM,
        resampling=gdal,
    )  # fmt: skip
    inside = interior(transform, shape)
    assert inside.sum() > 0.8 * inside.size
    # Upsampling in one CRS: GDAL's bilinear and its cubic (Keys, a = -0.5) are the same kernels
    # evaluated at the same points, so only float rounding differs (values span ~250).
    np.testing.assert_allclose(values[inside], expected[inside], rtol=0, atol=1e-9)
    # And they are not nearest neighbour (which is off by up to the slope x half a pixel).
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    col_f, row_f = ~NATIVE.transform * (transform * (cols, rows))
    nearest = SMOOTH[np.floor(row_f).astype(int), np.floor(col_f).astype(int)]
    assert np.abs(values[inside] - nearest[inside]).max() > 1
    # An integer band keeps its type: the interpolated values, rounded.
    integers = ds.i.values
    assert integers.dtype == np.int16
    exact_int = np.zeros(shape)
    rasterio.warp.reproject(
        np.rint(SMOOTH), exact_int, src_transform=NATIVE.transform, src_crs=UTM, dst_transform=transform,
        dst_crs=UTM, resampling=gdal,
    )  # fmt: skip
    # Rounded to the nearest integer; at exact halves (integer inputs, weights 1/4, 3/4) float
    # rounding of the two implementations may fall either way.
    tie = np.abs(np.abs(exact_int - np.floor(exact_int)) - 0.5) < 1e-6
    np.testing.assert_array_equal(integers[inside & ~tie], np.rint(exact_int[inside & ~tie]))
    assert np.abs(integers[inside & tie] - exact_int[inside & tie]).max() < 0.5 + 1e-6


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_reprojected_reads_reproduce_a_linear_surface(server, stats, mode):
    # Both kernels reproduce linear functions exactly, so the truth is the surface at the
    # point each output centre maps to (here through pyproj, as the service does).
    ds = open_native("test/linear", endpoint=server.url, crs="EPSG:4326", scale=7, resampling=mode)
    values = ds.v.values
    assert stats() == {"getAsset": 1, "computePixels": 1}
    transform = ds.rio.transform()
    rows, cols = np.mgrid[0 : values.shape[0], 0 : values.shape[1]] + 0.5
    lon, lat = transform * (cols, rows)
    x, y = pyproj.Transformer.from_crs("EPSG:4326", UTM, always_xy=True).transform(lon, lat)
    col_f, row_f = ~NATIVE.transform * (x, y)
    truth = 3 * (row_f - 0.5) + 2 * (col_f - 0.5)
    inside = (row_f >= 2.5) & (row_f <= NATIVE.height - 2.5) & (col_f >= 2.5) & (col_f <= NATIVE.width - 2.5)
    assert inside.sum() > 100
    np.testing.assert_allclose(values[inside], truth[inside], rtol=0, atol=1e-6)


def test_nearest_and_native_aligned_reads_are_unchanged(server, stats):
    nearest = open_native("test/smooth", endpoint=server.url, scale=4)  # resampling="nearest"
    transform = nearest.rio.transform()
    rows, cols = np.mgrid[0 : nearest.v.shape[0], 0 : nearest.v.shape[1]] + 0.5
    col_f, row_f = ~NATIVE.transform * (transform * (cols, rows))
    np.testing.assert_array_equal(nearest.v.values, SMOOTH[np.floor(row_f).astype(int), np.floor(col_f).astype(int)])
    assert stats() == {"getAsset": 1, "getPixels": 1}
    # The native grid (and any window of it) is never resampled: plain getPixels, bit-exact.
    native = open_native("test/smooth", endpoint=server.url, resampling="bicubic")
    np.testing.assert_array_equal(native.v.values, SMOOTH)
    np.testing.assert_array_equal(native.isel(y=slice(5, 9), x=slice(7, 30)).v.values, SMOOTH[5:9, 7:30])
    assert stats() == {"getAsset": 1, "getPixels": 2}


def test_a_coarser_read_interpolates_the_pyramid_level(server, stats):
    # 40 m pixels shifted by half of one: each output centre is the corner of four level-2
    # pixels (each the MEAN of 4 x 4 native pixels), so bilinear is the mean of those four.
    grid = PixelGrid(UTM, Affine(40, 0, 500020, 0, -40, 4199980), 14, 10)
    ds = open_native("test/pyramid", endpoint=server.url, grid=grid, resampling="bilinear")
    level = SMOOTH.reshape(12, 4, 16, 4).mean(axis=(1, 3))
    expected = (level[:-1, :-1] + level[1:, :-1] + level[:-1, 1:] + level[1:, 1:]) / 4
    np.testing.assert_allclose(ds.v.values, expected[:10, :14], rtol=0, atol=1e-9)
    assert stats() == {"getAsset": 1, "computePixels": 1}


def test_a_packed_time_series_is_resampled_image_by_image(server, stats):
    grid = PixelGrid(UTM, Affine(4, 0, 500100, 0, -4, 4199900), 8, 8)
    series = open_native("test/series", endpoint=server.url, grid=grid, resampling="bicubic")
    values = series.b.values
    counts = stats()
    assert counts.get("computePixels") == 1 and "getPixels" not in counts  # one packed request
    for time in (0, 5):
        image = open_native(f"test/series/{time:05d}", endpoint=server.url, grid=grid, resampling="bicubic")
        np.testing.assert_array_equal(values[time], image.b.values)
    alone = open_native("test/series/00005", endpoint=server.url, grid=grid)
    assert not np.array_equal(values[5], alone.b.values)  # nearest differs


@pytest.mark.parametrize("bad", ["cubic", "Bilinear", None, 2])
def test_a_bad_resampling_is_refused_before_any_request(server, stats, bad):
    with pytest.raises(
        ValueError, match=r"resampling=.* is not supported; use one of \['nearest', 'bilinear', 'bicubic'\]"
    ):
        open_native("test/smooth", endpoint=server.url, resampling=bad)
    assert stats() == {}


def test_a_computed_image_is_resampled_around_its_result(server, stats):
    load = {
        "functionInvocationValue": {"functionName": "Image.load", "arguments": {"id": {"constantValue": "test/smooth"}}}
    }
    doubled = {
        "functionInvocationValue": {
            "functionName": "Image.multiply",
            "arguments": {"image1": load, "image2": {"constantValue": 2}},
        }
    }
    expression = {"result": "0", "values": {"0": doubled}}
    computed = open_native(expression, endpoint=server.url, bands=["v"], scale=4, resampling="bilinear")
    stored = open_native("test/smooth", endpoint=server.url, bands=["v"], scale=4, resampling="bilinear")
    assert computed.rio.transform() == stored.rio.transform()
    # The product is computed on its native lattice, then interpolated: twice the stored interpolation.
    np.testing.assert_allclose(computed.v.values, 2 * stored.v.values, rtol=1e-12)
    assert not np.array_equal(
        computed.v.values, 2 * open_native("test/smooth", endpoint=server.url, bands=["v"], scale=4).v.values
    )


def test_a_same_day_mosaic_resamples_each_image_before_mosaicking(server, stats):
    grid = PixelGrid(UTM, Affine(3, 0, 500001, 0, -3, 4199999), 150, 100)
    day = open_native("test/day", endpoint=server.url, grid=grid, groupby="solar_day", resampling="bilinear")
    assert day.sizes["time"] == 1
    mosaic = day.v.values[0]
    assert stats().get("getPixels") is None
    # Each image interpolated on its own (masked pixels come back as 0), the later one on top.
    a, b = (
        open_native(f"test/day/{name}", endpoint=server.url, grid=grid, resampling="bilinear").v.values
        for name in ("a", "b")
    )
    assert (a != 0).any() and (b != 0).any() and ((a != 0) & (b != 0)).any()
    np.testing.assert_array_equal(mosaic, np.where(b != 0, b, a))
    nearest = open_native("test/day", endpoint=server.url, grid=grid, groupby="solar_day")
    assert not np.array_equal(mosaic, nearest.v.values[0])


def test_exact_masks_resample_alike(server):
    """The default (exact masks) resamples inside the same computePixels: same values, as floats."""
    native = open_native("test/smooth", endpoint=server.url, scale=4, resampling="bilinear")
    masked = eexarray.open_dataset("test/smooth", endpoint=server.url, scale=4, resampling="bilinear")
    for name in native.data_vars:
        np.testing.assert_allclose(masked[name].values, native[name].values.astype("float64"), rtol=0, atol=1e-3)
