"""Pyramids: reads coarser than native come from power-of-two levels, as in Earth Engine.

Level ``L`` of a band has pixels ``2**L`` times the native size on the native lattice
(same origin); each of its pixels aggregates the 2 x 2 pixels below it in level
``L - 1`` by the band's ``pyramidingPolicy``, ignoring masked ones (a level pixel is
masked only when all its inputs are):

* ``MEAN`` (default): the mean (integer bands rounded half to even),
* ``SAMPLE``: the upper-left input (masked when it is),
* ``MIN``, ``MAX``; ``MODE``: the most frequent value (the smallest on a tie);
  ``MEDIAN``: the median (the mean of the middle two of four; rounded for integers).

A read picks the coarsest level whose pixels are no larger than the requested ones
(``L = floor(log2(requested / native))``, pixel sizes as the square root of the pixel
area, the output's measured in the native CRS at the centre of the output grid), then
samples it by nearest neighbour like any other read. Reads less than twice coarser,
and window reads aligned with the native grid, use the native pixels (bit-exact).
Level pixels at the right and bottom edges aggregate the native pixels that exist.

Which images have pyramids: ``GeoTiffImage`` (a served root, like stored Earth Engine
assets) and ``InMemoryImage(..., pyramids=True)``. ``ProceduralImage`` has none: it is a
formula of any size, sampled at every scale (which the tests of clients rely on).
"""

from __future__ import annotations

import math

import numpy as np
import pyproj
from affine import Affine

from eexarray.geometry import PixelGrid, Window, crs_equal, to_pyproj
from eexarray.server.images import BandInfo, ServerImage

ALIGNMENT_TOLERANCE = 1e-9


def has_pyramids(image: ServerImage) -> bool:
    return bool(getattr(image, "pyramids", False))


def pyramid_level(native: PixelGrid, grid: PixelGrid) -> int:
    """The level a read of ``grid`` uses: 0 unless the output pixels are at least twice the native ones."""
    native_size = math.sqrt(abs(native.transform.determinant))
    output_size = _output_pixel_size(native, grid)
    if not (math.isfinite(output_size) and output_size > 0 and native_size > 0):
        return 0
    ratio = output_size / native_size
    if ratio < 2:
        return 0
    return int(math.floor(math.log2(ratio) + ALIGNMENT_TOLERANCE))


def _output_pixel_size(native: PixelGrid, grid: PixelGrid) -> float:
    """The size of one output pixel in native CRS units (square root of its area there)."""
    if crs_equal(native.crs, grid.crs):
        return math.sqrt(abs(grid.transform.determinant))
    t = grid.transform
    col, row = grid.width / 2, grid.height / 2
    points = [t * (col, row), t * (col + 1, row), t * (col, row + 1)]
    transformer = pyproj.Transformer.from_crs(to_pyproj(grid.crs), to_pyproj(native.crs), always_xy=True)
    xs, ys = transformer.transform([p[0] for p in points], [p[1] for p in points], errcheck=False)
    (x0, x1, x2), (y0, y1, y2) = xs, ys
    return math.sqrt(abs((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)))


def level_grid(native: PixelGrid, level: int) -> PixelGrid:
    factor = 2**level
    return PixelGrid(
        native.crs,
        native.transform * Affine.scale(factor),
        -(-native.width // factor),
        -(-native.height // factor),
    )


def aggregate(block: np.ma.MaskedArray, policy: str) -> np.ma.MaskedArray:
    """One pyramid step: each 2 x 2 group of ``block`` (odd edges padded as masked) to one pixel."""
    values, mask = np.ma.getdata(block), np.ma.getmaskarray(block)
    height, width = values.shape
    padded_h, padded_w = height + height % 2, width + width % 2
    if (padded_h, padded_w) != (height, width):
        grown = np.zeros((padded_h, padded_w), values.dtype)
        grown_mask = np.ones((padded_h, padded_w), bool)
        grown[:height, :width], grown_mask[:height, :width] = values, mask
        values, mask = grown, grown_mask
    # (rows/2, cols/2, 4): the four inputs of each output pixel, upper-left first.
    groups = values.reshape(padded_h // 2, 2, padded_w // 2, 2).transpose(0, 2, 1, 3).reshape(padded_h // 2, -1, 4)
    missing = mask.reshape(padded_h // 2, 2, padded_w // 2, 2).transpose(0, 2, 1, 3).reshape(padded_h // 2, -1, 4)
    all_missing = missing.all(axis=2)
    dtype = values.dtype
    if policy == "SAMPLE":
        return np.ma.MaskedArray(groups[..., 0], missing[..., 0])
    if policy in ("MIN", "MAX"):
        reduced = np.ma.MaskedArray(groups, missing)
        result = reduced.min(axis=2) if policy == "MIN" else reduced.max(axis=2)
        return np.ma.MaskedArray(np.ma.getdata(result).astype(dtype), all_missing)
    if policy == "MODE":
        return np.ma.MaskedArray(_mode(groups, missing), all_missing)
    floats = np.ma.MaskedArray(groups.astype("float64"), missing)
    combined = floats.mean(axis=2) if policy == "MEAN" else np.ma.median(floats, axis=2)
    result = np.ma.getdata(combined)
    result = np.where(all_missing, 0, result)
    if dtype.kind in "iu":
        result = np.rint(result)
    return np.ma.MaskedArray(result.astype(dtype), all_missing)


def _mode(groups: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """The most frequent valid value of each group of four (the smallest on a tie)."""
    best = np.zeros(groups.shape[:2], groups.dtype)
    best_count = np.zeros(groups.shape[:2], "int64")
    for position in range(4):
        candidate = groups[..., position]
        count = ((groups == candidate[..., None]) & ~missing).sum(axis=2)
        count = np.where(missing[..., position], 0, count)
        better = (count > best_count) | ((count == best_count) & (count > 0) & (candidate < best))
        best = np.where(better, candidate, best)
        best_count = np.where(better, count, best_count)
    return best


class PyramidLevel(ServerImage):
    """Level ``level`` of band ``band_index`` of ``image`` as a one-band image."""

    def __init__(self, image: ServerImage, band_index: int, level: int):
        band = image.bands[band_index]
        self.asset_id = image.asset_id
        self.bands = (BandInfo(band.id, band.dtype, level_grid(band.grid, level), band.nodata, band.pyramiding_policy),)
        self.start_time, self.end_time, self.properties = image.start_time, image.end_time, image.properties
        self._image, self._band_index, self._level = image, band_index, level
        self._native = band.grid
        self._policy = band.pyramiding_policy

    def read_band(self, band_index: int, window: Window) -> np.ma.MaskedArray:
        factor = 2**self._level
        native = Window(
            window.row_start * factor,
            min(window.row_stop * factor, self._native.height),
            window.col_start * factor,
            min(window.col_stop * factor, self._native.width),
        )
        block = self._image.read_band(self._band_index, native)
        for _ in range(self._level):
            block = aggregate(block, self._policy)
        # The last level window may extend past partial edge blocks: cut to the window asked for.
        return np.ma.MaskedArray(
            np.ma.getdata(block)[: window.height, : window.width],
            np.ma.getmaskarray(block)[: window.height, : window.width],
        )
