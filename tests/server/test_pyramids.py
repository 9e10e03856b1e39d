"""Pyramids: reads coarser than native aggregate power-of-two levels by the band's policy."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import rasterio
import requests
from affine import Affine

from eexarray.geometry import PixelGrid
from eexarray.server import InMemoryImage, serve
from eexarray.server.pyramids import aggregate, pyramid_level

GRID = PixelGrid("EPSG:32610", Affine(10, 0, 500000, 0, -10, 4200000), 64, 48)
RNG = np.random.default_rng(3)
VALUES = RNG.integers(0, 1000, GRID.shape).astype("uint16")
FLOATS = RNG.random(GRID.shape).astype("float32")
MASK = np.zeros(GRID.shape, bool)
MASK[0:3, 0:3] = True  # a block fully masked at level 1 (rows/cols 0-1) and partly (row/col 2)


def blocks(array: np.ndarray, mask: np.ndarray, size: int) -> np.ma.MaskedArray:
    """(rows, cols, size*size) groups of a masked array (shape divisible by size)."""
    h, w = array.shape
    grouped = array.reshape(h // size, size, w // size, size).transpose(0, 2, 1, 3).reshape(h // size, w // size, -1)
    grouped_mask = (
        mask.reshape(h // size, size, w // size, size).transpose(0, 2, 1, 3).reshape(h // size, w // size, -1)
    )
    return np.ma.MaskedArray(grouped, grouped_mask)


@pytest.mark.parametrize("policy", ["MEAN", "SAMPLE", "MIN", "MAX", "MODE", "MEDIAN"])
def test_one_step_per_policy(policy):
    values = np.array([[1, 2, 5, 5, 7], [3, 4, 5, 9, 7], [8, 8, 1, 1, 0]], "int16")
    mask = np.zeros(values.shape, bool)
    mask[0, 0] = True  # upper-left of the first group masked
    level = aggregate(np.ma.MaskedArray(values, mask), policy)
    # Groups: [., 2, 3, 4] [5, 5, 5, 9] [7, 7] / [8, 8] [1, 1] [0] (padding at the odd edges is masked).
    expected = {
        "MEAN": [[3, 6, 7], [8, 1, 0]],  # 3.0, 6.0, 7; 8, 1, 0
        "SAMPLE": [[1, 5, 7], [8, 1, 0]],  # the masked upper-left value (masked below)
        "MIN": [[2, 5, 7], [8, 1, 0]],
        "MAX": [[4, 9, 7], [8, 1, 0]],
        "MODE": [[2, 5, 7], [8, 1, 0]],  # a tie of three values: the smallest
        "MEDIAN": [[3, 5, 7], [8, 1, 0]],
    }[policy]
    assert level.dtype == np.int16
    assert np.ma.getdata(level).tolist() == expected
    assert np.ma.getmaskarray(level).tolist() == [[policy == "SAMPLE", False, False], [False, False, False]]


def test_pyramid_level_choice():
    assert pyramid_level(GRID, GRID) == 0
    coarser = [PixelGrid("EPSG:32610", Affine(s, 0, 500000, 0, -s, 4200000), 8, 8) for s in (15, 20, 39, 40, 80, 100)]
    assert [pyramid_level(GRID, grid) for grid in coarser] == [0, 1, 1, 2, 3, 3]


@pytest.fixture(scope="module")
def pyramid_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    profile = {"driver": "GTiff", "width": 64, "height": 48, "count": 2, "dtype": "uint16", "crs": "EPSG:32610",
               "transform": GRID.transform}  # fmt: skip
    with rasterio.open(root / "dem.tif", "w", **profile) as dataset:
        dataset.write(VALUES, 1)
        dataset.write(VALUES[::-1], 2)
    (root / "dem.json").write_text(json.dumps({"bands": ["elevation", "class"],
                                               "pyramidingPolicy": {"class": "MODE"}}))  # fmt: skip
    catalog = [
        InMemoryImage("t/pyramid", {"v": np.ma.MaskedArray(VALUES, MASK), "f": FLOATS}, GRID, pyramids=True,
                      pyramiding_policies={"f": "MAX"}),
        InMemoryImage("t/flat", {"v": VALUES}, GRID),
    ]  # fmt: skip
    with serve(root=str(root), catalog=catalog) as server:
        yield server


def pixels(server, asset: str, scale: float, width: int, height: int, bands: list[str]) -> np.ndarray:
    body = {"fileFormat": "NPY", "bandIds": bands, "grid": {
        "crsCode": "EPSG:32610", "dimensions": {"width": width, "height": height},
        "affineTransform": {"scaleX": scale, "shearX": 0, "translateX": 500000,
                            "shearY": 0, "scaleY": -scale, "translateY": 4200000}}}  # fmt: skip
    response = requests.post(f"{server.url}/v1/projects/earthengine-public/assets/{asset}:getPixels", json=body,
                             timeout=30)  # fmt: skip
    assert response.status_code == 200, response.text
    return np.load(io.BytesIO(response.content))


def test_mean_at_two_and_four_times_native(pyramid_server):
    level1 = blocks(VALUES, MASK, 2).mean(axis=2)
    got = pixels(pyramid_server, "t/pyramid", 20, 32, 24, ["v", "f"])
    assert np.array_equal(got["v"], np.rint(level1.filled(0)).astype("uint16"))  # the masked block is 0
    assert np.array_equal(got["f"], blocks(FLOATS, np.zeros(GRID.shape, bool), 2).max(axis=2).filled(0))
    # Level 2 is built from level 1 (rounded means of rounded means), as pyramids are.
    level1_rounded = np.ma.MaskedArray(np.rint(level1.filled(0)), np.ma.getmaskarray(level1))
    level2 = blocks(level1_rounded.filled(0), np.ma.getmaskarray(level1), 2).mean(axis=2)
    got4 = pixels(pyramid_server, "t/pyramid", 40, 16, 12, ["v"])
    assert np.array_equal(got4["v"], np.rint(level2.filled(0)).astype("uint16"))


def test_three_times_native_samples_level_one(pyramid_server):
    level1 = np.rint(blocks(VALUES, MASK, 2).mean(axis=2).filled(0)).astype("uint16")
    got = pixels(pyramid_server, "t/pyramid", 30, 20, 16, ["v"])["v"]
    centres = (np.arange(20) + 0.5) * 30 / 20  # level-1 pixel index of each output centre
    rows, cols = np.floor((np.arange(16) + 0.5) * 30 / 20).astype(int), np.floor(centres).astype(int)
    assert np.array_equal(got, level1[np.ix_(rows, cols)])


def test_native_aligned_and_finer_reads_are_unchanged(pyramid_server):
    assert np.array_equal(pixels(pyramid_server, "t/pyramid", 10, 64, 48, ["v"])["v"], np.where(MASK, 0, VALUES))
    finer = pixels(pyramid_server, "t/pyramid", 15, 40, 30, ["v"])["v"]  # 1.5x: still native pixels (nearest)
    index = np.floor((np.arange(40) + 0.5) * 1.5).astype(int)
    assert np.array_equal(finer, np.where(MASK, 0, VALUES)[np.ix_(index[:30], index)])
    # Without pyramids (InMemoryImage's default), coarser reads are nearest neighbour.
    assert np.array_equal(pixels(pyramid_server, "t/flat", 20, 32, 24, ["v"])["v"], VALUES[1::2, 1::2])


def test_geotiff_root_mean_and_sidecar_mode(pyramid_server):
    asset = requests.get(f"{pyramid_server.url}/v1/projects/earthengine-public/assets/dem", timeout=30).json()
    assert [band["pyramidingPolicy"] for band in asset["bands"]] == ["MEAN", "MODE"]
    got = pixels(pyramid_server, "dem", 20, 32, 24, ["elevation", "class"])
    no_mask = np.zeros(GRID.shape, bool)
    assert np.array_equal(got["elevation"], np.rint(blocks(VALUES, no_mask, 2).mean(axis=2)).astype("uint16"))
    groups = blocks(VALUES[::-1], no_mask, 2).data
    modes = np.empty(groups.shape[:2], "uint16")
    for r in range(groups.shape[0]):
        for c in range(groups.shape[1]):
            found, counts = np.unique(groups[r, c], return_counts=True)
            modes[r, c] = found[np.argmax(counts)]  # np.unique sorts: the smallest wins a tie
    assert np.array_equal(got["class"], modes)
