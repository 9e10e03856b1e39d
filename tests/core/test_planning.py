"""Request planning: every request within every limit; tiles cover each chunk exactly once."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eexarray.geometry import Window
from eexarray.planning import (
    DEFAULT_LIMITS,
    MAX_BANDS,
    MAX_PIXELS_PER_SIDE,
    MAX_REQUEST_BYTES,
    RequestLimits,
    auto_tile_shape,
    band_groups,
    plan_requests,
)

DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]


def test_reference_limits():
    assert MAX_REQUEST_BYTES == 50_331_648
    assert MAX_PIXELS_PER_SIDE == 32_768
    assert MAX_BANDS == 1_024
    # the mask byte counts: 4 uint16 bands cost 9 bytes a pixel
    assert DEFAULT_LIMITS.bytes_per_pixel(["uint16"] * 4) == 9


@pytest.mark.parametrize(
    "dtypes",
    [["uint8"], ["uint16"] * 4, ["float64"] * 13, ["uint8", "float64", "int16"], ["float32"] * 200, ["int32"] * 1024],
)
def test_auto_tiles_fill_at_least_90_percent_of_the_budget(dtypes):
    rows, cols = auto_tile_shape(1_000_000, 1_000_000, dtypes)
    used = DEFAULT_LIMITS.request_bytes(rows, cols, dtypes)
    assert used <= MAX_REQUEST_BYTES
    assert used >= 0.9 * MAX_REQUEST_BYTES
    assert rows <= MAX_PIXELS_PER_SIDE and cols <= MAX_PIXELS_PER_SIDE


def test_small_region_is_one_tile_and_thin_region_widens():
    assert auto_tile_shape(100, 200, ["uint16"]) == (100, 200)
    rows, cols = auto_tile_shape(10, 10**6, ["uint8"])
    assert rows == 10 and cols == MAX_PIXELS_PER_SIDE


def test_band_groups_respect_band_limit():
    groups = band_groups(["uint8"] * 2500)
    assert [len(g) for g in groups] == [1024, 1024, 452]
    assert [i for g in groups for i in g] == list(range(2500))


def test_one_pixel_over_budget_is_refused():
    with pytest.raises(ValueError, match="budget"):
        auto_tile_shape(10, 10, ["float64"] * 2, RequestLimits(max_bytes=8))


@settings(max_examples=150, deadline=None)
@given(
    height=st.integers(1, 1500),
    width=st.integers(1, 1500),
    row0=st.integers(0, 10**6),
    col0=st.integers(0, 10**6),
    dtypes=st.lists(st.sampled_from(DTYPES), min_size=1, max_size=40),
    subset=st.data(),
    max_bytes=st.integers(2_000, 400_000),
    max_side=st.integers(16, 2_000),
    max_bands=st.integers(1, 16),
)
def test_plans_are_valid_and_cover_each_chunk_exactly_once(
    height, width, row0, col0, dtypes, subset, max_bytes, max_side, max_bands
):
    limits = RequestLimits(max_bytes=max_bytes, max_side=max_side, max_bands=max_bands)
    if limits.bytes_per_pixel([max(dtypes, key=lambda d: np.dtype(d).itemsize)]) > max_bytes:
        return
    bands = sorted(subset.draw(st.sets(st.integers(0, len(dtypes) - 1), min_size=1)))
    window = Window(row0, row0 + height, col0, col0 + width)
    requests = plan_requests(window, dtypes, bands, limits)
    coverage = {band: np.zeros((height, width), dtype=np.int32) for band in bands}
    for request in requests:
        band_dtypes = [dtypes[b] for b in request.bands]
        assert limits.violations(request.window.height, request.window.width, band_dtypes) == []
        assert window.contains(request.window)
        for band in request.bands:
            coverage[band][request.window.relative_to(window).slices()] += 1
    for band in bands:
        assert (coverage[band] == 1).all(), f"band {band} not covered exactly once"
    assert {b for r in requests for b in r.bands} == set(bands)


def test_plan_for_empty_selection_is_empty():
    assert plan_requests(Window(0, 10, 0, 10), ["uint8"], []) == []


def test_a_mosaic_member_packs_as_imagecollection_mosaic_of_its_images():
    from eexarray.planning.expressions import mosaic_image, packed_band_ids, packed_time_series

    def load_select(asset):
        load = {
            "functionInvocationValue": {"functionName": "Image.load", "arguments": {"id": {"constantValue": asset}}}
        }
        arguments = {"input": load, "bandSelectors": {"constantValue": ["v"]}}
        return {"functionInvocationValue": {"functionName": "Image.select", "arguments": arguments}}

    def from_images(images):
        arguments = {"images": {"arrayValue": {"values": images}}}
        return {"functionInvocationValue": {"functionName": "ImageCollection.fromImages", "arguments": arguments}}

    mosaic = {
        "functionInvocationValue": {
            "functionName": "ImageCollection.mosaic",
            "arguments": {"collection": from_images([load_select("c/a"), load_select("c/b")])},
        }
    }
    assert mosaic_image(["c/a", "c/b"], ["v"]) == {"result": "0", "values": {"0": mosaic}}
    members = [(("c/a", "c/b"), ["v"]), ("c/c", ["v"]), (("c/d",), ["v"])]  # a 1-image "mosaic" is the image
    packed = packed_time_series(members)["values"]["0"]["functionInvocationValue"]
    assert packed["functionName"] == "ImageCollection.toBands"
    assert packed["arguments"]["collection"] == from_images([mosaic, load_select("c/c"), load_select("c/d")])
    assert packed_band_ids(members) == ["0_v", "1_v", "2_v"]
