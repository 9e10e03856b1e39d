"""Each format read back (rasterio / numpy / xarray) equals the same pixels read through open_dataset."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import rasterio
import xarray as xr

import eexarray
from eexarray.download.plan import plan_blocks
from eexarray.server.images import procedural_values
from tests.qp import FILL_VALUE, dask_expr_gap

from .conftest import GRID, IMAGE_BANDS, IMAGE_DTYPES, MASKED, SERIES_GRID, reference

# A small memory limit makes small blocks, so even these small assets take many requests.
LIMIT = "3MB"


def fetch(server, asset, path, **options):
    return eexarray.download(asset, path, endpoint=server.url, memory_limit=LIMIT, progress=False, **options)


def test_geotiff_is_tiled_compressed_georeferenced_and_exact(server, counter, tmp_path):
    expected = reference(server, "dl/image")
    counter.reset()
    out = fetch(server, "dl/image", tmp_path / "image.tif")
    assert out == tmp_path / "image.tif" and not (tmp_path / "image.tif.partial").exists()
    plan = plan_blocks(GRID.height, GRID.width, 1, IMAGE_DTYPES, 3_000_000)
    assert plan.block_count > 1 and counter.pixels == plan.block_count  # one request per block, no more
    with rasterio.open(out) as tif:
        assert tif.count == 4 and tif.descriptions == IMAGE_BANDS
        assert tif.dtypes[0] == "float64"  # uint8, int16, float32, float64 promote to float64, exactly
        assert tif.crs.to_epsg() == 32610 and tif.transform == GRID.transform
        assert (tif.width, tif.height) == (GRID.width, GRID.height)
        assert tif.profile["tiled"] and tif.compression.name == "deflate"
        assert tif.block_shapes[0] == plan.tiff_tile_shape and tif.nodata == 0
        for index, band in enumerate(IMAGE_BANDS, start=1):
            np.testing.assert_array_equal(tif.read(index), expected[band])
            assert tif.read(index).dtype == np.float64


def test_geotiff_promotes_integers_to_an_integer_type(server, tmp_path):
    expected = reference(server, "dl/image", bands=["b", "a"])
    with rasterio.open(fetch(server, "dl/image", tmp_path / "ints.tif", bands=["b", "a"])) as tif:
        assert tif.dtypes == ("int16", "int16") and tif.descriptions == ("b", "a")
        np.testing.assert_array_equal(tif.read(1), expected["b"])
        np.testing.assert_array_equal(tif.read(2), expected["a"])


def test_geotiff_of_a_collection_has_tobands_bands(server, tmp_path):
    expected = reference(server, "dl/series")
    with rasterio.open(fetch(server, "dl/series", tmp_path / "series.tif")) as tif:
        names = [f"{index:05d}_{band}" for index in range(4) for band in ("red", "nir")]
        assert list(tif.descriptions) == names and tif.dtypes[0] == "int32"
        assert tif.tags(3) == {"image_id": "dl/series/00001", "band": "red", "time": "2021-01-06T00:00:00"}
        for position, name in enumerate(names):
            time, band = int(name[:5]), name[6:]
            np.testing.assert_array_equal(tif.read(position + 1), expected[band][time])


def test_zipped_geotiff_holds_one_multiband_file_named_after_the_image(server, tmp_path):
    expected = reference(server, "dl/image")
    out = fetch(server, "dl/image", tmp_path / "image.zip", format="ZIPPED_GEO_TIFF")
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["image.tif"]
        archive.extractall(tmp_path / "unzipped")
    assert not (tmp_path / "image.zip.partial.files").exists()
    with rasterio.open(tmp_path / "unzipped" / "image.tif") as tif:
        for index, band in enumerate(IMAGE_BANDS, start=1):
            np.testing.assert_array_equal(tif.read(index), expected[band])


def test_zipped_per_band_keeps_native_dtypes_and_getdownloadid_names(server, tmp_path):
    expected = reference(server, "dl/image")
    # file_per_band=True without a format chooses ZIPPED_GEO_TIFF_PER_BAND, as getDownloadId does.
    out = fetch(server, "dl/image", tmp_path / "bands.zip", file_per_band=True, name="scene")
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == [f"scene.{band}.tif" for band in IMAGE_BANDS]
        archive.extractall(tmp_path / "unzipped")
    for band, dtype in zip(IMAGE_BANDS, IMAGE_DTYPES):
        with rasterio.open(tmp_path / "unzipped" / f"scene.{band}.tif") as tif:
            assert tif.count == 1 and tif.dtypes[0] == dtype and tif.transform == GRID.transform
            np.testing.assert_array_equal(tif.read(1), expected[band])


def test_zipped_per_band_of_a_collection(server, tmp_path):
    expected = reference(server, "dl/series")
    out = fetch(server, "dl/series", tmp_path / "series.zip", format="ZIPPED_GEO_TIFF_PER_BAND")
    with zipfile.ZipFile(out) as archive:
        names = [f"series.{index:05d}_{band}.tif" for index in range(4) for band in ("red", "nir")]
        assert archive.namelist() == names
        archive.extractall(tmp_path / "unzipped")
    with rasterio.open(tmp_path / "unzipped" / "series.00002_nir.tif") as tif:
        assert tif.dtypes[0] == "int16"
        np.testing.assert_array_equal(tif.read(1), expected["nir"][2])


def test_npy_is_a_structured_array_like_getdownloadid(server, tmp_path):
    expected = reference(server, "dl/image")
    array = np.load(fetch(server, "dl/image", tmp_path / "image.npy", format="NPY"))
    assert array.shape == (GRID.height, GRID.width)
    assert array.dtype.names == IMAGE_BANDS
    assert [array.dtype[band] for band in IMAGE_BANDS] == [np.dtype(d) for d in IMAGE_DTYPES]
    for band in IMAGE_BANDS:
        np.testing.assert_array_equal(array[band], expected[band])
    # And the formula itself, so both readings cannot be wrong in the same way.
    rows, cols = np.mgrid[0 : GRID.height, 0 : GRID.width]
    truth = procedural_values(1, rows, cols, 0, "int16")
    truth[MASKED.slices()] = 0
    np.testing.assert_array_equal(array["b"], truth)


def test_npy_of_a_collection_is_time_y_x(server, counter, tmp_path):
    expected = reference(server, "dl/series")
    counter.reset()
    out = eexarray.download("dl/series", tmp_path / "series.npy", format="NPY", endpoint=server.url, progress=False)
    # The small region fits one block of all 4 images, which the source packs into one request.
    assert counter.pixels == 1
    array = np.load(out)
    assert array.shape == (4, SERIES_GRID.height, SERIES_GRID.width) and array.dtype.names == ("red", "nir")
    np.testing.assert_array_equal(array["red"], expected["red"])
    np.testing.assert_array_equal(array["nir"], expected["nir"])


@dask_expr_gap(FILL_VALUE, NotImplementedError)
def test_zarr_reads_back_as_the_dataset(server, tmp_path):
    opened = eexarray.open_dataset("dl/series", endpoint=server.url, mask_and_scale=False).compute()
    out = fetch(server, "dl/series", tmp_path / "series.zarr", format="ZARR")
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("eexarray")) == []  # resume files removed
    assert "consolidated_metadata" in json.loads((out / "zarr.json").read_text())
    stored = xr.open_zarr(out, mask_and_scale=False)
    plan = plan_blocks(SERIES_GRID.height, SERIES_GRID.width, 4, ("uint16", "int16"), 3_000_000)
    assert stored["red"].encoding["chunks"] == (1, plan.tile_rows, plan.tile_cols)
    for name in ("red", "nir"):
        assert stored[name].dtype == opened[name].dtype
        np.testing.assert_array_equal(stored[name].values, opened[name].values)
    for coord in ("x", "y", "time"):
        np.testing.assert_array_equal(stored[coord].values, opened[coord].values)
    assert list(stored["image_id"].values) == list(opened["image_id"].values)
    assert stored.attrs["asset_id"] == opened.attrs["asset_id"]
    decoded = xr.open_zarr(out, decode_coords="all")
    assert decoded.rio.crs.to_epsg() == 32610 and decoded.rio.transform() == SERIES_GRID.transform


def test_netcdf_reads_back_as_the_dataset(server, tmp_path):
    opened = eexarray.open_dataset("dl/image", endpoint=server.url, mask_and_scale=False).compute()
    out = fetch(server, "dl/image", tmp_path / "image.nc", format="NETCDF")
    with xr.open_dataset(out, mask_and_scale=False, decode_coords="all") as stored:
        for name in IMAGE_BANDS:
            assert stored[name].dtype == opened[name].dtype
            np.testing.assert_array_equal(stored[name].values, opened[name].values)
        np.testing.assert_array_equal(stored["x"].values, opened["x"].values)
        assert stored.rio.crs.to_epsg() == 32610 and stored.rio.transform() == GRID.transform
    with xr.open_dataset(out) as decoded:  # CF decoding: the no-data value (0) is missing
        assert np.isnan(decoded["a"].values[MASKED.slices()]).all()


def test_netcdf_of_a_collection_keeps_times_and_image_ids(server, tmp_path):
    opened = eexarray.open_dataset("dl/series", endpoint=server.url, mask_and_scale=False).compute()
    out = fetch(server, "dl/series", tmp_path / "series.nc", format="NETCDF")
    with xr.open_dataset(out, mask_and_scale=False) as stored:
        np.testing.assert_array_equal(stored["time"].values, opened["time"].values)
        assert list(stored["image_id"].values) == list(opened["image_id"].values)
        np.testing.assert_array_equal(stored["nir"].values, opened["nir"].values)


@pytest.mark.parametrize("fmt", ["GEO_TIFF", "NPY"])
def test_grid_options_select_the_same_pixels_as_open_dataset(server, tmp_path, fmt):
    # resolution: degrees per pixel (scale would be metres, as in Earth Engine)
    options = {"crs": "EPSG:4326", "resolution": 0.0004, "region": (-123.0, 37.9, -122.9, 37.93), "bands": ["d", "a"]}
    expected = reference(server, "dl/image", **options)
    out = fetch(server, "dl/image", tmp_path / f"warped.{fmt}", format=fmt, **options)
    if fmt == "NPY":
        array = np.load(out)
        got = {band: array[band] for band in ("d", "a")}
    else:
        with rasterio.open(out) as tif:
            assert tif.crs.to_epsg() == 4326
            got = {"d": tif.read(1), "a": tif.read(2)}
    assert got["d"].shape == expected["d"].shape and expected["d"].size > 0
    for band in ("d", "a"):
        np.testing.assert_array_equal(got[band], expected[band])


@dask_expr_gap(FILL_VALUE, NotImplementedError)
def test_overwrite_replaces_files_and_stores(server, tmp_path):
    (tmp_path / "image.tif").write_text("old")
    fetch(server, "dl/image", tmp_path / "image.tif", bands=["a"], overwrite=True)
    with rasterio.open(tmp_path / "image.tif") as tif:
        assert tif.count == 1
    store = tmp_path / "image.zarr"
    fetch(server, "dl/image", store, format="ZARR", bands=["b"])
    fetch(server, "dl/image", store, format="ZARR", bands=["a"], overwrite=True)  # a store of ours: replaced
    assert list(xr.open_zarr(store, decode_coords="all").data_vars) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.tif", "image.zarr"]  # nothing aside, no lock


def test_an_expression_graph_downloads_like_open_dataset_reads_it(server, tmp_path):
    # NDVI-like arithmetic on a stored image, evaluated by the server (computePixels).
    load = {
        "functionInvocationValue": {"functionName": "Image.load", "arguments": {"id": {"constantValue": "dl/image"}}}
    }
    expression = {
        "result": "0",
        "values": {
            "0": {
                "functionInvocationValue": {
                    "functionName": "Image.normalizedDifference",
                    "arguments": {"input": load, "bandNames": {"constantValue": ["d", "c"]}},
                }
            }
        },
    }
    expected = reference(server, expression)
    (band,) = expected
    out = fetch(server, expression, tmp_path / "computed.zip", format="ZIPPED_GEO_TIFF_PER_BAND")
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == [f"download.{band}.tif"]  # getDownloadId's name for computed images
        archive.extractall(tmp_path / "unzipped")
    with rasterio.open(tmp_path / "unzipped" / f"download.{band}.tif") as tif:
        np.testing.assert_array_equal(tif.read(1), expected[band])
        assert np.isfinite(expected[band]).all() and np.ptp(expected[band]) > 0
