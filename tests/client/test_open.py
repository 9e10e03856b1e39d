"""Opening assets: pixel-exact values, coordinates, CRS conventions, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio.transform
import xarray as xr
from affine import Affine

import eexarray
from eexarray.backend.metadata import MixedGridWarning
from eexarray.geometry import PixelGrid
from eexarray.server.images import procedural_values

from .conftest import MIXED_DTYPES, SMALL, UTM, with_masks


def expected(band, rows, cols, dtype, time=0):
    return procedural_values(band, np.asarray(rows)[:, None], np.asarray(cols)[None, :], time, dtype)


def test_native_grid_pixel_exact_with_mixed_dtypes(server):
    raw = xr.open_dataset("ee://test/mixed", engine="eexarray", endpoint=server.url, chunks={}, mask_and_scale=False)
    decoded = xr.open_dataset("ee://test/mixed", engine="eexarray", endpoint=server.url, chunks={})
    assert list(raw.data_vars) == list(decoded.data_vars) == ["u8", "i16", "f32", "f64"]
    assert raw.sizes == decoded.sizes == {"y": 400, "x": 600}
    # decoded (the default): the smallest float holding every value exactly
    floats = {"u8": "float32", "i16": "float32", "f32": "float32", "f64": "float64"}
    for index, (name, dtype) in enumerate(zip(raw.data_vars, MIXED_DTYPES)):
        assert raw[name].dtype == np.dtype(dtype)
        assert decoded[name].dtype == np.dtype(floats[name])
        truth = expected(index, range(400), range(600), dtype)
        np.testing.assert_array_equal(raw[name].values, truth)
        np.testing.assert_array_equal(decoded[name].values, truth.astype(floats[name]))


def test_coordinates_are_pixel_centres_and_rioxarray_reads_the_crs(server):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url)
    xs, _ = rasterio.transform.xy(SMALL.transform, [0] * 600, list(range(600)), offset="center")
    _, ys = rasterio.transform.xy(SMALL.transform, list(range(400)), [0] * 400, offset="center")
    np.testing.assert_array_equal(ds.x.values, xs)
    np.testing.assert_array_equal(ds.y.values, ys)
    assert ds.rio.crs.to_epsg() == 32610
    assert ds.rio.transform() == SMALL.transform
    assert ds.u8.encoding["grid_mapping"] == "spatial_ref"
    assert ds.spatial_ref.attrs["GeoTransform"].split() == [repr(float(v)) for v in SMALL.transform.to_gdal()]


def test_region_on_native_lattice_is_a_window_read(server):
    region = SMALL.window_covering((500105.0, 4198005.0, 500395.0, 4199795.0))
    west, south, east, north = (500105.0, 4198005.0, 500395.0, 4199795.0)
    import pyproj

    to_ll = pyproj.Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    lon_w, lat_s = to_ll.transform(west, south)
    lon_e, lat_n = to_ll.transform(east, north)
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, region=(lon_w, lat_s, lon_e, lat_n))
    grid = PixelGrid(UTM, Affine(*ds.rio.transform()[:6]), ds.sizes["x"], ds.sizes["y"])
    row0, col0 = grid.offset_in(SMALL)
    assert ds.sizes["y"] >= region.height - 2 and ds.sizes["x"] >= region.width - 2
    rows = range(row0, row0 + ds.sizes["y"])
    cols = range(col0, col0 + ds.sizes["x"])
    np.testing.assert_array_equal(ds.i16.values, expected(1, rows, cols, "int16"))


def test_shifted_grid_integer_and_half_pixel(server):
    # integer shift: exact window; half-pixel shift: nearest neighbour picks the pixel holding each centre
    for dx, dy in ((30.0, -50.0), (5.0, -5.0), (-15.0, 25.0)):
        transform = Affine(10, 0, 500000 + dx, 0, -10, 4200000 + dy)
        grid = {
            "dimensions": {"width": 50, "height": 40},
            "affineTransform": {
                "scaleX": 10,
                "shearX": 0,
                "translateX": transform.c,
                "shearY": 0,
                "scaleY": -10,
                "translateY": transform.f,
            },
            "crsCode": UTM,
        }
        ds = eexarray.open_dataset("test/mixed", endpoint=server.url, grid=grid, bands=["f64"])
        centres_x = transform.c + (np.arange(50) + 0.5) * 10
        centres_y = transform.f - (np.arange(40) + 0.5) * 10
        cols = np.floor((centres_x - 500000) / 10).astype(int)
        rows = np.floor((4200000 - centres_y) / 10).astype(int)
        values = expected(3, rows, cols, "float64")
        outside = (rows[:, None] < 0) | (rows[:, None] >= 400) | (cols[None, :] < 0) | (cols[None, :] >= 600)
        np.testing.assert_array_equal(ds.f64.values, np.where(outside, np.nan, values))  # outside: masked
        raw = eexarray.open_dataset("test/mixed", endpoint=server.url, grid=grid, bands=["f64"], mask_and_scale=False)
        np.testing.assert_array_equal(raw.f64.values, np.where(outside, 0, values))  # as getPixels sends it


def test_rescaled_grid_samples_nearest(server):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, crs=UTM, scale=20, bands=["i16"])
    grid = PixelGrid(UTM, Affine(*ds.rio.transform()[:6]), ds.sizes["x"], ds.sizes["y"])
    assert grid.transform.a == 20 and grid.bounds == SMALL.bounds
    rows = 2 * np.arange(ds.sizes["y"]) + 1  # a 20 m centre falls in the second 10 m pixel
    cols = 2 * np.arange(ds.sizes["x"]) + 1
    np.testing.assert_array_equal(ds.i16.values, expected(1, rows, cols, "int16"))


def test_reprojected_grid_matches_rasterio(server):
    import pyproj
    import rasterio.warp
    from rasterio.enums import Resampling

    # native values, as GDAL compares them (masked pixels 0 = dst_nodata)
    ds = eexarray.open_dataset(
        "test/memory", endpoint=server.url, crs="EPSG:3857", scale=12.0, bands=["a"], mask_and_scale=False
    )
    native = eexarray.open_dataset(
        "test/memory", endpoint=server.url, bands=["a"], chunks=None, mask_and_scale=False
    ).a.values
    destination = np.zeros((ds.sizes["y"], ds.sizes["x"]), dtype="int16")
    transform = ds.rio.transform()
    rasterio.warp.reproject(
        native,
        destination,
        src_transform=SMALL.transform,
        src_crs=UTM,
        dst_transform=transform,
        dst_crs="EPSG:3857",
        resampling=Resampling.nearest,
        dst_nodata=0,
    )
    got = ds.a.values
    rows, cols = np.nonzero(got != destination)
    # GDAL's warper uses an approximate transformer (error up to 0.125 px): the two may only
    # disagree where an output pixel centre lies that close to an edge of a native pixel.
    xs, ys = pyproj.Transformer.from_crs("EPSG:3857", UTM, always_xy=True).transform(
        transform.c + (cols + 0.5) * transform.a, transform.f + (rows + 0.5) * transform.e
    )
    native_col = (np.asarray(xs) - SMALL.transform.c) / 10
    native_row = (SMALL.transform.f - np.asarray(ys)) / 10
    distance = np.minimum(np.abs(native_col - np.round(native_col)), np.abs(native_row - np.round(native_row)))
    assert (distance <= 0.125).all()
    assert len(rows) < 0.1 * got.size
    assert (got != 0).mean() > 0.9  # the comparison covers real data, not just empty borders


def test_multiple_native_grids_pick_the_finest_with_a_warning(server):
    with pytest.warns(MixedGridWarning, match="fine"):
        ds = eexarray.open_dataset("test/multigrid", endpoint=server.url)
    assert ds.rio.transform().a == 10
    # the coarse band is sampled on the fine grid: 20 m pixel (r//2, c//2) covers four fine pixels
    rows, cols = np.arange(ds.sizes["y"]) // 2, np.arange(ds.sizes["x"]) // 2
    np.testing.assert_array_equal(ds.coarse.values, expected(1, rows, cols, "uint16"))
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")
        only_coarse = eexarray.open_dataset("test/multigrid", endpoint=server.url, bands=["coarse"])
    assert only_coarse.rio.transform().a == 20


def test_band_metadata_and_properties(server):
    ds = eexarray.open_dataset("test/memory", endpoint=server.url)
    assert ds.attrs["CLOUD"] == 3.5 and ds.attrs["NAME"] == "memory"
    band = ds.a.encoding["eexarray_band"]  # encoding, not attrs: derived variables must not inherit it
    assert band["missing_values"] == [-1.0]
    assert "precision" in band["data_type"]
    assert band["pyramiding_policy"] in ("MEAN", "SAMPLE", "MIN", "MAX", "MODE", "MEDIAN")
    assert ds.a.attrs == {}  # decoded: NaN is the only missing value, recorded as the fill to write back
    assert np.isnan(ds.a.encoding["_FillValue"]) and np.isnan(ds.a.rio.nodata)
    # native values: masked pixels (the -1s included: Earth Engine masks them) arrive as 0
    raw = eexarray.open_dataset("test/memory", endpoint=server.url, mask_and_scale=False)
    assert raw.a.attrs["nodata"] == 0 and raw.a.attrs["_FillValue"] == 0 and raw.a.rio.nodata == 0
    assert "_FillValue" not in raw.a.encoding


def test_mask_and_scale_turns_missing_into_nan(server):
    raw = eexarray.open_dataset("test/masked", endpoint=server.url, mask_and_scale=False).B1.values
    masked = eexarray.open_dataset("test/masked", endpoint=server.url).B1.values  # mask_and_scale=True
    assert raw.dtype == np.uint16 and masked.dtype == np.float32
    assert (raw[10:20, 30:50] == 0).all()
    missing = np.zeros(raw.shape, dtype=bool)
    missing[10:20, 30:50] = True
    np.testing.assert_array_equal(np.isnan(masked), missing)  # exactly the masked window
    assert (raw[~missing] == 0).sum() == 1  # pixel (0, 0) is a valid 0 ...
    assert masked[0, 0] == 0  # ... and stays 0
    np.testing.assert_array_equal(masked[~missing], raw[~missing].astype("float32"))


def test_huge_asset_opens_lazily_and_reads_a_far_corner(server, stats):
    ds = eexarray.open_dataset("test/huge", endpoint=server.url)
    assert ds.sizes == {"y": 2**20, "x": 2**20}
    assert stats()["requests"].get("getPixels", 0) == 0
    corner = ds.B3.isel(y=slice(-5, None), x=slice(-7, None)).values
    np.testing.assert_array_equal(corner, expected(2, range(2**20 - 5, 2**20), range(2**20 - 7, 2**20), "uint16"))


def test_rioxarray_round_trip(server, tmp_path):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, bands=["i16"])
    path = tmp_path / "out.tif"
    ds.i16.rio.to_raster(path)
    with rasterio.open(path) as written:
        assert written.crs.to_epsg() == 32610
        assert written.transform == SMALL.transform
        np.testing.assert_array_equal(written.read(1), expected(1, range(400), range(600), "int16"))
    reprojected = ds.i16.rio.reproject("EPSG:4326")
    assert reprojected.rio.crs.to_epsg() == 4326


def test_collection_time_coordinates(server, stats):
    ds = eexarray.open_dataset("test/series", endpoint=server.url)
    assert ds.sizes["time"] == 30
    assert ds.time.values[0] == np.datetime64("2020-01-01T00:00:00", "ns")
    assert ds.time.values[1] == np.datetime64("2020-01-11T00:00:00", "ns")
    assert ds.image_id.values[3].endswith("test/series/00003")
    counts = stats()["requests"]
    assert counts.get("listAssets", 0) + counts.get("listImages", 0) == 1
    assert counts.get("getAsset", 0) == 1  # the collection itself, never one call per image
    values = ds.nir.isel(time=[4, 7], y=slice(0, 3), x=slice(0, 2)).values
    for position, time in enumerate((4, 7)):
        np.testing.assert_array_equal(values[position], expected(1, range(3), range(2), "uint16", time))


def test_collection_filters_are_pushed_to_the_server(server):
    ds = eexarray.open_dataset("test/series", endpoint=server.url, start="2020-02-01", end="2020-03-01")
    assert ds.sizes["time"] == 2  # 2020-02-10 and 02-20; 03-01 is excluded (end is exclusive)
    assert str(ds.time.values[0])[:10] == "2020-02-10"
    filtered = eexarray.open_dataset("test/series", endpoint=server.url, filter="properties.index < 5")
    assert filtered.sizes["time"] == 5


def test_lazy_path_without_dask(server, stats):
    ds = xr.open_dataset("ee://test/mixed", engine="eexarray", endpoint=server.url)
    assert not hasattr(ds.u8.variable._data, "dask")
    window = ds.isel(y=slice(100, 110), x=slice(200, 205, 2))
    values = window.i16.values
    np.testing.assert_array_equal(values, expected(1, range(100, 110), range(200, 205, 2), "int16"))
    log = stats()["pixel_requests"]
    assert len(log) == 1
    assert log[0]["bandIds"] == with_masks(["i16"])
    assert (log[0]["width"], log[0]["height"]) == (5, 10)
