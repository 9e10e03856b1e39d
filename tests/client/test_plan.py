"""``ds.eexarray.plan()``: the requests a compute makes, counted before it, without any request."""

from __future__ import annotations

import json
import math

import dask.array as da
import numpy as np
import pytest
import requests
import xarray as xr

import eexarray
from eexarray.cli import main
from eexarray.server.images import procedural_values

from .test_computed import ndvi_expression


def formula(band, rows, cols, dtype, time=0):
    return procedural_values(band, np.asarray(rows)[:, None], np.asarray(cols)[None, :], time, dtype)


# Native values (getPixels where no expression is needed); the default, exact masks, is
# test_plan_counts_with_exact_masks below.
NATIVE = {"mask_and_scale": False}


def mixed(url, **kwargs):
    return eexarray.open_dataset("test/mixed", endpoint=url, chunks={"y": 100, "x": 100}, **{**NATIVE, **kwargs})


def long(url, **kwargs):
    return eexarray.open_dataset("test/long", endpoint=url, **{**NATIVE, **kwargs})


# name -> (how to get the Dataset from the server url, expected getPixels, expected computePixels)
CASES = {
    # 600x400 px in 100x100 blocks: one getPixels per block carries every band.
    "image": (lambda url: mixed(url), 24, 0),
    "window": (lambda url: mixed(url).isel(x=slice(50, 260), y=slice(10, 20)), 3, 0),
    "point": (lambda url: mixed(url).isel(x=123, y=45), 1, 0),
    # columns 0 and 300 of row 5: blocks 0 and 3 of the window 0..301, not the two between them
    "steps": (lambda url: mixed(url).isel(x=slice(0, 400, 300), y=5), 2, 0),
    "list of columns": (lambda url: mixed(url).isel(x=[5, 350], y=slice(0, 10)), 2, 0),
    "band subset": (lambda url: mixed(url)[["f32", "u8"]], 24, 0),
    "bands option": (lambda url: mixed(url, bands=["f64"]), 24, 0),
    # 500 images of a 64x64 window: one packed computePixels
    "packed series": (lambda url: long(url).isel(y=slice(0, 64), x=slice(0, 64)), 0, 1),
    "packed point series": (lambda url: long(url).isel(y=3, x=4), 0, 1),
    "time range of a collection": (lambda url: long(url).isel(time=slice(10, 15)), 0, 1),
    # 200 images of 600x400 px x 2 uint16 bands: 52 fit one request, so 4 packed requests
    "collection window": (lambda url: long(url).isel(time=slice(0, 200), y=slice(0, 400)), 0, 4),
    "one image of a collection": (lambda url: long(url).isel(time=7), 1, 0),
    "computed image": (
        lambda url: eexarray.open_dataset(
            ndvi_expression("test/series/00004"), endpoint=url, chunks={"x": 300}, **NATIVE
        ),
        0,
        2,
    ),
    # chunks=None: each variable is loaded by itself (one packed request each)
    "lazily indexed": (
        lambda url: xr.open_dataset("ee://test/long", engine="eexarray", endpoint=url, **NATIVE).isel(
            y=5, x=slice(3, 6)
        ),
        0,
        2,
    ),
}


@pytest.mark.parametrize(
    "make, compute_pixels",
    [
        (lambda url: mixed(url, mask_and_scale=True), 24),
        (lambda url: mixed(url, mask_and_scale=True).isel(x=[5, 350], y=slice(0, 10)), 2),
        (lambda url: long(url, mask_and_scale=True).isel(y=slice(0, 64), x=slice(0, 64)), 2),
        (lambda url: long(url, mask_and_scale=True).isel(time=7), 1),
    ],
    ids=["image", "list of columns", "packed series", "one image of a collection"],
)
def test_plan_counts_with_exact_masks(server, stats, make, compute_pixels):
    """The default (exact masks): every request is a computePixels, as many as plan() says."""
    ds = make(server.url)
    requests.post(f"{server.url}/_stats/reset", timeout=10).raise_for_status()
    plan = ds.eexarray.plan()
    assert (plan.get_pixels, plan.compute_pixels) == (0, compute_pixels)
    ds.compute()
    counts = stats()["requests"]
    assert (counts.get("getPixels", 0), counts.get("computePixels", 0)) == (0, compute_pixels)


@pytest.mark.parametrize("case", list(CASES))
def test_plan_counts_the_requests_compute_makes(server, stats, case):
    make, get_pixels, compute_pixels = CASES[case]
    ds = make(server.url)
    requests.post(f"{server.url}/_stats/reset", timeout=10).raise_for_status()  # the open's metadata calls
    plan = ds.eexarray.plan()
    assert stats()["requests"] == {}, "plan() made a request"
    assert (plan.get_pixels, plan.compute_pixels) == (get_pixels, compute_pixels)
    ds.compute()
    counts = stats()["requests"]
    assert counts.get("getPixels", 0) == plan.get_pixels
    assert counts.get("computePixels", 0) == plan.compute_pixels
    assert plan.requests == get_pixels + compute_pixels
    assert plan.endpoint == server.url.rstrip("/")
    assert plan.largest_request_bytes <= plan.request_limit_bytes == 48 * 2**20


def test_plan_bytes_and_largest_request_are_exact(server, stats):
    ds = mixed(server.url)  # uint8, int16, float32, float64: 15 bytes a pixel
    plan = ds.eexarray.plan()
    assert plan.reads == 24
    assert plan.pixel_bytes == 600 * 400 * 15
    assert plan.largest_request_bytes == 100 * 100 * (15 + 1)  # the limit counts a mask byte a pixel
    ds.compute()
    served = stats()["pixels_bytes"]  # NPY bodies: the pixels plus a header each
    assert plan.pixel_bytes < served < plan.pixel_bytes + 1024 * plan.requests


@pytest.mark.parametrize("selection", [{}, {"x": slice(0, 400, 300), "y": 5}], ids=["whole", "steps"])
def test_band_subset_bytes_follow_narrowing(server, stats, selection):
    """Classic graphs fetch only the bands computed; query planning fetches every band of the open."""
    subset = mixed(server.url).isel(selection)[["f32"]]
    plan = subset.eexarray.plan()
    # steps: the window is columns 0..300, so the blocks holding 0 and 300 are 100 and 1 px wide, 1 row
    pixels = 600 * 400 if not selection else 100 + 1
    assert plan.pixel_bytes == pixels * (15 if da.array_expr_enabled() else 4)
    requests.post(f"{server.url}/_stats/reset", timeout=10).raise_for_status()
    subset.compute()
    served = stats()["pixels_bytes"]
    assert plan.pixel_bytes < served < plan.pixel_bytes + 1024 * plan.requests


def test_packed_plan_counts_images_and_bytes(server, stats):
    series = long(server.url).isel(y=slice(0, 64), x=slice(0, 64))
    plan = series.eexarray.plan()
    assert plan.packed_images == 500
    assert plan.pixel_bytes == 500 * 64 * 64 * (2 + 2)
    values = series.compute()
    np.testing.assert_array_equal(values.nir.values[17], formula(1, range(64), range(64), "int16", 17))


def test_time_estimate_follows_the_stated_model(server):
    plan = mixed(server.url, max_concurrency=5).eexarray.plan(latency=2.0, bandwidth=1e6)
    assert plan.max_concurrency == 5 and plan.waves == math.ceil(24 / 5) == 5
    assert plan.estimated_seconds == pytest.approx(5 * 2.0 + 600 * 400 * 15 / 1e6)
    as_dict = plan.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["requests"] == 24 and as_dict["estimated_seconds"] == pytest.approx(plan.estimated_seconds)
    table = str(plan)
    for text in ("getPixels", "24", "5 waves x 2 s latency", "of the 48.0 MiB limit", server.url.rstrip("/")):
        assert text in table


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"latency": 0}, "latency must be a positive number of seconds"),
        ({"latency": float("nan")}, "latency must be a positive number"),
        ({"bandwidth": -1}, "bandwidth must be a positive number of bytes per second"),
        ({"bandwidth": "fast"}, "bandwidth must be a positive number"),
    ],
)
def test_bad_model_arguments_are_refused(server, arguments, message):
    with pytest.raises(ValueError, match=message):
        mixed(server.url).eexarray.plan(**arguments)


def test_derived_variables_are_refused_with_advice(server):
    ds = mixed(server.url)
    ds["ratio"] = ds.f32 / ds.f64
    with pytest.raises(ValueError, match=r"variable 'ratio' does not hold pixels eexarray reads.*eexarray.plan\(\)"):
        ds.eexarray.plan()
    assert ds[["f32", "f64"]].eexarray.plan().requests == 24
    with pytest.raises(ValueError, match="no data variables"):
        ds[[]].eexarray.plan()


def test_plan_on_a_local_cluster_matches_its_compute(server, stats):
    distributed = pytest.importorskip("distributed")
    ds = long(server.url).isel(y=slice(0, 100), x=slice(0, 100), time=slice(0, 40))
    plan = ds.eexarray.plan()
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster),
    ):
        ds.compute()
    counts = stats()["requests"]
    assert (counts.get("getPixels", 0), counts.get("computePixels", 0)) == (plan.get_pixels, plan.compute_pixels)


def test_cli_plan_prints_the_table_and_json(server, capsys):
    assert main(["plan", "test/mixed", "--endpoint", server.url, "--chunks", "y=100,x=100"]) == 0
    out = capsys.readouterr().out
    assert "getPixels" in out and "24" in out
    assert main(["plan", "test/long", "--endpoint", server.url, "--isel", "x=0:64,y=0:64", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    # The default, exact masks: each image carries a mask band next to its 2 bands, so the
    # 1,024-band limit holds 341 images per request, not 512: 2 requests.
    assert (plan["get_pixels"], plan["compute_pixels"], plan["packed_images"]) == (0, 2, 500)


def test_cli_plan_refuses_bad_selections(server, capsys):
    assert main(["plan", "test/mixed", "--endpoint", server.url, "--isel", "z=0:4"]) == 2
    assert "z" in capsys.readouterr().err
    assert main(["plan", "test/mixed", "--endpoint", server.url, "--chunks", "y=ten"]) == 2
    assert "y=ten" in capsys.readouterr().err
