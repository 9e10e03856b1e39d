"""Computed requests that Earth Engine finds too heavy split themselves (engine/splitting.py).

The local server's ``compute_budget`` reproduces the real service's refusal: a
``computePixels`` costing more than the budget (output pixels x ``Image.load`` calls) is
answered 400 "User memory limit exceeded." - the message Earth Engine gives, e.g.
``{"error": {"code": 400, "message": "User memory limit exceeded.", "status":
"INVALID_ARGUMENT"}}`` in gee-community/geemap#1465 (and geedim#11 / #17 on downloads).
"""

from __future__ import annotations

import numpy as np
import pytest
import requests

import eexarray
from eexarray.engine.source import PixelSource
from eexarray.engine.splitting import (
    ComputationTooHeavyError,
    SplitMemo,
    WorkingSize,
    halves,
    is_too_heavy,
    tiles_within,
)
from eexarray.geometry import Window
from eexarray.planning.expressions import canonical
from eexarray.server.images import procedural_values
from eexarray.transport import ConnectionConfig, EarthEngineRequestError

from .conftest import SMALL, catalog

BUDGET = 15_000  # output pixels x images


def invoke(name, **arguments):
    return {"functionInvocationValue": {"functionName": name, "arguments": arguments}}


def band_of(asset, band):
    return invoke(
        "Image.select", input=invoke("Image.load", id={"constantValue": asset}), bandSelectors={"constantValue": [band]}
    )


def formula(band, rows, cols, dtype, time=0):
    return procedural_values(band, np.asarray(rows)[:, None], np.asarray(cols)[None, :], time, dtype)


@pytest.fixture(scope="module")
def tight():
    with eexarray.serve(catalog=catalog(), compute_budget=BUDGET) as running:
        yield running


@pytest.fixture()
def counts(tight):
    requests.post(f"{tight.url}/_stats/reset", timeout=10).raise_for_status()

    def read():
        """The requests since the last call (or the test's start): by method, by status, pixel records."""
        snapshot = requests.get(f"{tight.url}/_stats", timeout=10).json()
        requests.post(f"{tight.url}/_stats/reset", timeout=10).raise_for_status()
        return snapshot["requests"], snapshot["statuses"], snapshot["pixel_requests"]

    return read


def test_a_computed_image_splits_and_later_blocks_go_straight_to_the_working_size(tight, counts):
    expression = {"result": "0", "values": {"0": band_of("test/mixed", "f64")}}
    ds = eexarray.open_dataset(expression, endpoint=tight.url, chunks={"y": 200, "x": 200})
    (name,) = list(ds.data_vars)
    counts()  # forget the open's value:compute

    # One 200x200 block (40,000 px > 15,000): 400 at 200x200 and at its upper half 100x200, whose
    # halves 100x100 work; the lower 100x200 half goes straight to two 100x100 requests.
    block = ds[name].isel(y=slice(0, 200), x=slice(0, 200)).values
    np.testing.assert_array_equal(block, formula(3, range(200), range(200), "float64"))
    methods, statuses, pixel_requests = counts()
    assert methods == {"computePixels": 6}
    assert statuses == {"400": 2, "200": 4}
    assert {(r["height"], r["width"]) for r in pixel_requests} == {(100, 100)}

    # The whole image (six blocks): every block at the size that worked, no 400 at all.
    counts()
    values = ds[name].values
    np.testing.assert_array_equal(values, formula(3, range(400), range(600), "float64"))
    methods, statuses, pixel_requests = counts()
    assert methods == {"computePixels": 24} and statuses == {"200": 24}
    assert all(r["height"] * r["width"] == 10_000 for r in pixel_requests)


@pytest.mark.parametrize("exact_masks", [True, False], ids=["exact masks", "native"])
def test_a_packed_time_series_splits_into_fewer_images(tight, counts, exact_masks):
    ds = eexarray.open_dataset("test/series", endpoint=tight.url, mask_and_scale=exact_masks)
    window = ds.isel(time=slice(0, 16), y=slice(0, 40), x=slice(0, 40))
    counts()
    # 16 images x 1,600 px = 25,600 > 15,000: 400, then two packed requests of 8 images.
    series = window.compute()
    for time in range(16):
        np.testing.assert_array_equal(series.red.values[time], formula(0, range(40), range(40), "uint16", time))
        np.testing.assert_array_equal(series.nir.values[time], formula(1, range(40), range(40), "uint16", time))
    methods, statuses, pixel_requests = counts()
    assert methods == {"computePixels": 3} and statuses == {"400": 1, "200": 2}
    per_image = 3 if exact_masks else 2  # 2 bands (and with exact masks their mask band)
    assert sorted(len(r["bandIds"]) for r in pixel_requests) == [8 * per_image] * 2  # 8 images each

    # Another window of the same Dataset: straight to 8 images a request.
    counts()
    other = ds.isel(time=slice(8, 24), y=slice(40, 80), x=slice(0, 40)).compute()
    np.testing.assert_array_equal(other.nir.values[15], formula(1, range(40, 80), range(40), "uint16", 23))
    methods, statuses, _ = counts()
    assert methods == {"computePixels": 2} and statuses == {"200": 2}


def test_another_400_fails_at_once_with_the_servers_message(tight, counts):
    bad = {"result": "0", "values": {"0": band_of("test/mixed", "no_such_band")}}
    source = PixelSource(
        config=ConnectionConfig(endpoint=tight.url),
        images=("computed",),
        grid=SMALL,
        band_ids=("no_such_band",),
        dtypes=("float64",),
        expressions=(canonical(bad),),
        split_scope="another-400",
    )
    with pytest.raises(EarthEngineRequestError) as raised:
        source.read([0], Window(0, 200, 0, 200), [0])
    assert not isinstance(raised.value, ComputationTooHeavyError)
    assert raised.value.status == 400 and "no_such_band" in raised.value.server_message
    methods, statuses, _ = counts()
    assert methods == {"computePixels": 1} and statuses == {"400": 1}


def test_a_computation_too_heavy_for_one_pixel_fails_clearly():
    # Two images per pixel against a budget of one: even 1x1 px is refused.
    expression = {
        "result": "0",
        "values": {"0": invoke("Image.add", image1=band_of("test/mixed", "f64"), image2=band_of("test/mixed", "f32"))},
    }
    with eexarray.serve(catalog=catalog(), compute_budget=1) as server:
        ds = eexarray.open_dataset(expression, endpoint=server.url)
        small = ds.isel(y=slice(0, 4), x=slice(0, 4))
        server.reset_stats()
        with pytest.raises(ComputationTooHeavyError, match="even for one pixel of one image") as raised:
            small.compute()
        assert "User memory limit exceeded." in str(raised.value)
        stats = server.stats()
    # 16 px -> 8 -> 4 -> 2 -> 1: five refused requests, then it stops.
    assert stats["requests"] == {"computePixels": 5} and stats["statuses"] == {"400": 5}


def test_the_heavy_messages_are_recognised_and_only_on_400():
    def error(status, message):
        return EarthEngineRequestError("x", status=status, server_message=message, request="computePixels")

    assert is_too_heavy(error(400, "User memory limit exceeded."))
    assert is_too_heavy(error(400, "Computation timed out."))
    assert not is_too_heavy(error(400, "Image.select: Pattern 'x' did not match any bands."))
    assert not is_too_heavy(error(403, "User memory limit exceeded."))
    heavy = ComputationTooHeavyError("x", status=400, server_message="User memory limit exceeded.", request="r")
    assert not is_too_heavy(heavy)  # already split to one pixel: never split again


def test_window_halves_and_tiles_cover_the_window_exactly():
    window = Window(10, 210, 5, 305)  # 200 x 300
    one, two = halves(window)
    assert (one, two) == (Window(10, 210, 5, 155), Window(10, 210, 155, 305))
    tiles = tiles_within(window, 7_000)
    covered = np.zeros((400, 400), int)
    for tile in tiles:
        assert tile.size <= 7_000
        covered[tile.slices()] += 1
    assert covered[window.slices()].min() == 1 and covered.sum() == window.size
    assert tiles_within(Window(0, 1, 0, 1), 0) == [Window(0, 1, 0, 1)]


def test_the_memo_keeps_the_smallest_working_size_per_scope():
    memo = SplitMemo(capacity=2)
    memo.record("a", 10_000, None)
    memo.record("a", 20_000, 8)
    memo.record("a", None, 4)
    assert memo.get("a") == WorkingSize(10_000, 4)
    memo.record("b", 1, 1)
    memo.record("c", 1, 1)  # capacity 2: the oldest scope is forgotten
    assert memo.get("a") == WorkingSize() and memo.get("c") == WorkingSize(1, 1)


def test_computation_timed_out_splits_the_same_way(tight, monkeypatch):
    # The local server only says "User memory limit exceeded."; Earth Engine's other heavy-work
    # answer, 400 "Computation timed out." (gee-community/geemap#1790), is given by a stand-in.
    import eexarray.engine.source as source_module

    sizes = []

    def timing_out(client, project, expression, grid, band_ids, dtypes, *, file_format="NPY", what="", version=None):
        sizes.append((grid.height, grid.width))
        if grid.height * grid.width > 1_000:
            raise EarthEngineRequestError(what, status=400, server_message="Computation timed out.", request=what)
        col, row = ~SMALL.transform * (grid.transform.c, grid.transform.f)
        rows, cols = np.mgrid[round(row) : round(row) + grid.height, round(col) : round(col) + grid.width]
        return {band_ids[0]: (rows * 1000 + cols).astype("float64")}

    monkeypatch.setattr(source_module, "compute_pixels", timing_out)
    expression = canonical({"result": "0", "values": {"0": band_of("test/mixed", "f64")}})
    source = PixelSource(
        config=ConnectionConfig(endpoint=tight.url),
        images=("computed",),
        grid=SMALL,
        band_ids=("f64",),
        dtypes=("float64",),
        expressions=(expression,),
        split_scope="timed-out",
    )
    values = source.read([0], Window(10, 50, 100, 150), [0])[0][0]
    rows, cols = np.mgrid[10:50, 100:150]
    np.testing.assert_array_equal(values, rows * 1000 + cols)
    assert sizes == [(40, 50), (40, 25), (40, 25)]
    sizes.clear()
    source.read([0], Window(50, 90, 100, 150), [0])  # straight to the size that worked
    assert sizes == [(40, 25), (40, 25)]
