"""Selections fetch only what they cover; time series at small windows are packed."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import eexarray
from eexarray.engine import source as source_module
from eexarray.server.images import procedural_values
from eexarray.transport import EarthEngineRequestError

from .conftest import bands_fetched


def formula(band, rows, cols, dtype, time=0):
    return procedural_values(band, np.asarray(rows)[:, None], np.asarray(cols)[None, :], time, dtype)


def test_isel_after_chunking_fetches_only_the_window(server, stats):
    ds = eexarray.open_dataset("test/huge", endpoint=server.url)  # request-sized chunks of ~2365 px
    values = ds.B2.isel(y=slice(100, 110), x=slice(5, 25)).values
    np.testing.assert_array_equal(values, formula(1, range(100, 110), range(5, 25), "uint16"))
    log = stats()["pixel_requests"]
    assert [(e["width"], e["height"], e["bandIds"]) for e in log] == [
        (20, 10, bands_fetched(["B2"], ["B1", "B2", "B3", "B4"], masks=True))
    ]


def test_sel_nearest_point_and_steps(server, stats):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks={"y": 200, "x": 300})
    x, y = float(ds.x[123]), float(ds.y[45])
    point = ds.sel(x=x, y=y, method="nearest").compute()
    assert int(point.i16) == int(formula(1, [45], [123], "int16")[0, 0])
    stepped = ds.f32.isel(y=slice(10, 50, 7), x=slice(290, 310, 3)).values
    np.testing.assert_array_equal(stepped, formula(2, range(10, 50, 7), range(290, 310, 3), "float32"))
    windows = sorted((e["width"], e["height"]) for e in stats()["pixel_requests"][1:])
    assert windows == [(9, 36), (10, 36)]  # the bounding window (cols 290..308) cut on the block boundary at 300


def test_time_series_at_a_small_window_is_packed(server, stats):
    ds = eexarray.open_dataset("test/long", endpoint=server.url)
    assert ds.sizes["time"] == 500
    series = ds.isel(y=slice(0, 64), x=slice(0, 64)).compute()
    for time in (0, 17, 499):
        np.testing.assert_array_equal(series.nir.values[time], formula(1, range(64), range(64), "int16", time))
        np.testing.assert_array_equal(series.red.values[time], formula(0, range(64), range(64), "uint16", time))
    counts = stats()["requests"]
    assert counts.get("getPixels", 0) == 0
    assert counts.get("computePixels", 0) <= 2


def test_lazy_time_series_is_packed_too(server, stats):
    ds = xr.open_dataset("ee://test/long", engine="eexarray", endpoint=server.url)
    values = ds.red.isel(y=5, x=slice(3, 6)).values
    assert values.shape == (500, 3)
    np.testing.assert_array_equal(values[250], formula(0, [5], range(3, 6), "uint16", 250)[0])
    counts = stats()["requests"]
    assert counts.get("getPixels", 0) == 0 and counts.get("computePixels", 0) == 1


def test_packing_falls_back_to_getpixels_when_refused(server, stats, monkeypatch):
    def refuse(*args, **kwargs):
        raise EarthEngineRequestError("no", status=404, server_message="not here", request="computePixels")

    monkeypatch.setattr(source_module, "compute_pixels", refuse)
    monkeypatch.setattr(source_module, "_no_packing", set())
    # Exact masks need computePixels: refused, the read fails and says what to do instead.
    with pytest.raises(source_module.ExactMasksUnavailableError, match="mask_and_scale=False"):
        eexarray.open_dataset("test/long", endpoint=server.url).nir.isel(y=0, x=0, time=slice(0, 40)).compute()
    # Native values fall back to getPixels per image.
    ds = eexarray.open_dataset("test/long", endpoint=server.url, mask_and_scale=False)
    series = ds.nir.isel(y=slice(0, 4), x=slice(0, 4), time=slice(0, 40)).compute()
    for time in (0, 39):
        np.testing.assert_array_equal(series.values[time], formula(1, range(4), range(4), "int16", time))
    assert stats()["requests"].get("getPixels", 0) == 40
    assert server.url.rstrip("/") in source_module._no_packing or any(
        url.startswith(server.url.rstrip("/")) for url in source_module._no_packing
    )


@pytest.mark.parametrize(
    "chunks",
    [{}, None],  # image_id is a numpy coordinate: no dask fancy indexing, which query planning lacks
)
def test_integer_time_and_fancy_indices(server, chunks):
    ds = xr.open_dataset("ee://test/series", engine="eexarray", endpoint=server.url, chunks=chunks)
    picked = ds.red.isel(time=[3, 1, 3], y=[7, 2], x=4).values
    expected = np.array([[formula(0, [r], [4], "uint16", t)[0, 0] for r in (7, 2)] for t in (3, 1, 3)])
    np.testing.assert_array_equal(picked, expected)
    single = ds.nir.isel(time=-1, y=slice(0, 2), x=slice(0, 2)).values
    np.testing.assert_array_equal(single, formula(1, range(2), range(2), "uint16", 29))
