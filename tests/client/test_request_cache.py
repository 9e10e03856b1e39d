"""``request_cache=``: a rerun makes no pixel request and returns the same values; changes are refetched."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
import requests
import xarray as xr
from affine import Affine

import eexarray
from eexarray.server.images import procedural_values
from eexarray.transport import EarthEngineError, RetryPolicy, set_default_retry_policy
from eexarray.transport.cache import RequestCache

from .conftest import catalog
from .test_computed import load, ndvi_expression


def formula(band, rows, cols, dtype, time=0):
    return procedural_values(band, np.asarray(rows)[:, None], np.asarray(cols)[None, :], time, dtype)


def pixel_requests(server) -> int:
    counts = requests.get(f"{server.url}/_stats", timeout=10).json()["requests"]
    return counts.get("getPixels", 0) + counts.get("computePixels", 0)


def reset(server) -> None:
    requests.post(f"{server.url}/_stats/reset", timeout=10).raise_for_status()


def assert_same(first: xr.Dataset, second: xr.Dataset) -> None:
    assert list(first.data_vars) == list(second.data_vars)
    for name in first.data_vars:
        assert first[name].dtype == second[name].dtype
        np.testing.assert_array_equal(first[name].values, second[name].values)


# name -> the Dataset to compute twice (opened with the given keywords)
CASES = {
    "image in blocks": lambda url, **kw: eexarray.open_dataset(
        "test/mixed", endpoint=url, chunks={"y": 100, "x": 100}, **kw
    ),
    "packed series": lambda url, **kw: eexarray.open_dataset("test/long", endpoint=url, **kw).isel(
        y=slice(0, 32), x=slice(0, 32)
    ),
    "collection per image": lambda url, **kw: eexarray.open_dataset("test/series", endpoint=url, **kw).isel(
        time=slice(0, 3)
    ),
    "lazily indexed": lambda url, **kw: xr.open_dataset("ee://test/mixed", engine="eexarray", endpoint=url, **kw),
    "computed image with a version": lambda url, **kw: eexarray.open_dataset(
        {"result": "0", "values": {"0": load("test/series/00004")}}, endpoint=url, **kw
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_second_compute_makes_no_pixel_request(server, tmp_path, case):
    first = CASES[case](server.url, request_cache=str(tmp_path))
    reset(server)
    values = first.compute()
    made = pixel_requests(server)
    assert made > 0
    hits_before = eexarray.transport_stats()["cache_hits"]
    reset(server)
    again = CASES[case](server.url, request_cache=str(tmp_path)).compute()  # a new open: the notebook rerun
    assert pixel_requests(server) == 0
    assert eexarray.transport_stats()["cache_hits"] - hits_before == made
    assert_same(values, again)


def test_cached_values_are_the_truth(server, tmp_path):
    for _ in range(2):
        ds = eexarray.open_dataset("test/long", endpoint=server.url, request_cache=str(tmp_path))
        window = ds.isel(y=slice(0, 32), x=slice(0, 32)).compute()
        np.testing.assert_array_equal(window.red.values[123], formula(0, range(32), range(32), "uint16", 123))
        window.red.values[123] += 1  # results are writable, and writing them leaves the cache alone


def test_the_environment_variable_turns_the_cache_on(server, tmp_path, monkeypatch):
    monkeypatch.setenv("EEXARRAY_REQUEST_CACHE", str(tmp_path))
    eexarray.open_dataset("test/mixed", endpoint=server.url).compute()
    reset(server)
    eexarray.open_dataset("test/mixed", endpoint=server.url).compute()
    assert pixel_requests(server) == 0
    eexarray.open_dataset("test/mixed", endpoint=server.url, request_cache=False).compute()
    assert pixel_requests(server) > 0


def test_without_a_version_a_computed_image_is_fetched_again(server, tmp_path):
    """An expression Earth Engine reports no version for (a derived image) could read changed assets."""
    for _ in range(2):
        reset(server)
        ds = eexarray.open_dataset(
            ndvi_expression("test/series/00004"), endpoint=server.url, request_cache=str(tmp_path)
        )
        ds.compute()
        assert pixel_requests(server) == 1
    assert RequestCache(str(tmp_path)).entries() == []


def test_a_local_cluster_reads_through_the_cache(server, tmp_path):
    distributed = pytest.importorskip("distributed")
    ds = CASES["image in blocks"](server.url, request_cache=str(tmp_path))
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster),
    ):
        reset(server)
        first = ds.compute()
        assert pixel_requests(server) == 24  # filled by the workers' processes
        reset(server)
        second = CASES["image in blocks"](server.url, request_cache=str(tmp_path)).compute()
        assert pixel_requests(server) == 0
    assert_same(first, second)
    assert len(RequestCache(str(tmp_path)).entries()) == 24


def write_tif(path, array):
    profile = {"driver": "GTiff", "width": array.shape[1], "height": array.shape[0], "count": 1,
               "dtype": array.dtype.name, "crs": "EPSG:32633", "transform": Affine(30, 0, 300000, 0, -30, 5000000)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(array[None])


def _pixel_requests(server) -> int:
    counts = server.stats()["requests"]
    return counts.get("getPixels", 0) + counts.get("computePixels", 0)


def test_a_changed_asset_is_fetched_again(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    tif = root / "dem.tif"
    old = np.arange(1, 401, dtype="uint16").reshape(20, 20)
    write_tif(tif, old)
    os.utime(tif, (1_600_000_000, 1_600_000_000))
    cache = str(tmp_path / "cache")
    with eexarray.serve(str(root)) as server:
        np.testing.assert_array_equal(eexarray.open_dataset("dem", endpoint=server.url, request_cache=cache).B1, old)
        server.reset_stats()
        np.testing.assert_array_equal(eexarray.open_dataset("dem", endpoint=server.url, request_cache=cache).B1, old)
        assert _pixel_requests(server) == 0
        new = old * 2
        write_tif(tif, new)  # a new version: the server reports a new updateTime
        os.utime(tif, (1_700_000_000, 1_700_000_000))
        reopened = eexarray.open_dataset("dem", endpoint=server.url, request_cache=cache)
        np.testing.assert_array_equal(reopened.B1, new)
        assert _pixel_requests(server) == 1
    assert len(RequestCache(cache).entries()) == 2  # both versions (the old one ages out by LRU)


def test_refused_requests_are_not_cached(tmp_path):
    """A packed request over the server's body limit is refused (an error, raised): nothing is stored."""
    cache = str(tmp_path / "cache")
    with eexarray.serve(catalog=catalog(), max_body_bytes=20_000) as server:
        ds = eexarray.open_dataset("test/long", endpoint=server.url, request_cache=cache)
        with pytest.raises(EarthEngineError, match="HTTP 413"):
            ds.isel(y=slice(0, 8), x=slice(0, 8)).compute()
    assert RequestCache(cache).entries() == []


def test_corrupt_and_failed_responses_are_not_cached(tmp_path):
    """Bodies cut short are retried, never stored: every stored entry is a good body."""
    cache = str(tmp_path / "cache")
    previous = set_default_retry_policy(RetryPolicy(max_attempts=8, initial_delay=0.001, max_delay=0.01))
    try:
        with eexarray.serve(catalog=catalog(), faults="truncate=0.3,503=0.2", seed=4) as server:
            ds = eexarray.open_dataset(
                "test/mixed", endpoint=server.url, chunks={"y": 100, "x": 100}, request_cache=cache
            )
            first = ds.compute()
            faults = server.stats()["faults"]
            assert faults.get("truncate", 0) > 0 and faults.get("503", 0) > 0
            assert len(RequestCache(cache).entries()) == 24
        with eexarray.serve(catalog=catalog()) as clean:
            truth = eexarray.open_dataset("test/mixed", endpoint=clean.url, chunks={"y": 100, "x": 100}).compute()
    finally:
        set_default_retry_policy(previous)
    assert_same(first, truth)
