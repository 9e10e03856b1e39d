"""``xr.open_dataset("ee://...")`` without ``engine=`` opens with eexarray, also with netCDF4 installed.

xarray asks netCDF4 first, whose guess claims any "scheme://" string; the entrypoint makes
the netCDF engines decline ``ee://`` (see eexarray/backend/entrypoint.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from eexarray.server.images import procedural_values

from .conftest import MIXED_DTYPES


def test_ee_uri_without_engine_opens_our_dataset(server):
    pytest.importorskip("netCDF4")
    ds = xr.open_dataset("ee://test/mixed", endpoint=server.url)
    assert list(ds.data_vars) == ["u8", "i16", "f32", "f64"]
    assert ds.sizes == {"y": 400, "x": 600}
    for index, (name, dtype) in enumerate(zip(ds.data_vars, MIXED_DTYPES)):
        rows, cols = np.arange(5)[:, None], np.arange(7)[None, :]
        np.testing.assert_array_equal(ds[name][:5, :7].values, procedural_values(index, rows, cols, 0, dtype))


def test_full_asset_name_without_engine_opens_our_dataset(server):
    ds = xr.open_dataset("projects/earthengine-public/assets/test/mixed", endpoint=server.url, chunks={})
    assert ds.attrs["asset_id"] and list(ds.data_vars) == ["u8", "i16", "f32", "f64"]


def test_netcdf4_still_guesses_its_own_urls():
    from xarray.backends.netCDF4_ import NetCDF4BackendEntrypoint

    backend = NetCDF4BackendEntrypoint()
    assert not backend.guess_can_open("ee://test/mixed")
    assert backend.guess_can_open("https://example.com/data.nc")
    assert backend.guess_can_open("https://example.com/dap/dataset")  # xarray's behaviour, unchanged
