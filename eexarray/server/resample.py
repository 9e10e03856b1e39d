"""The pixel engine: a band's native pixels delivered on any output grid.

* Aligned output (same CRS, same pixel size and orientation, integer offset; see
  ``PixelGrid.offset_in``): a pure window read, bit-exact, with the part outside the
  native extent masked.
* Coarser than twice native, for images with pyramids (``eexarray.server.pyramids``):
  the pyramid level's aggregated pixels (the band's pyramidingPolicy), then nearest
  neighbour from that level.
* Anything else: nearest neighbour. Each output pixel centre goes through the output
  affine, pyproj (when the CRS differs) and the inverse native affine; the native
  pixel containing it is sampled. Between two axis-aligned grids in one CRS the row
  and column maps are separable, so only the needed rows and columns are touched.
  Output is produced in tiles so a downsampled huge image never needs its full
  native window in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyproj

from eexarray.geometry import PixelGrid, Window, crs_equal, to_pyproj
from eexarray.geometry.window import tile_window
from eexarray.server.images import ServerImage
from eexarray.server.pyramids import PyramidLevel, has_pyramids, level_grid, pyramid_level

TILE = 512  # output pixels a side per resampling step


def read_on_grid(image: ServerImage, band_indices: Sequence[int], grid: PixelGrid) -> list[np.ma.MaskedArray]:
    """Each band on ``grid``: values in the band's dtype, mask True where missing or outside."""
    results: list[np.ma.MaskedArray | None] = [None] * len(band_indices)
    # Bands sharing one native grid and aligned with the output are read together.
    aligned: dict[tuple[PixelGrid, Window], list[int]] = {}
    for position, index in enumerate(band_indices):
        native = image.bands[index].grid
        offset = grid.offset_in(native)
        if offset is not None:
            window = Window(offset[0], offset[0] + grid.height, offset[1], offset[1] + grid.width)
            aligned.setdefault((native, window), []).append(position)
        else:
            level = pyramid_level(native, grid) if has_pyramids(image) else 0
            if level > 0:  # coarser than twice native: the pyramid level's pixels, sampled (see pyramids)
                results[position] = _resample(PyramidLevel(image, index, level), 0, level_grid(native, level), grid)
            else:
                results[position] = _resample(image, index, native, grid)
    for (native, window), positions in aligned.items():
        for position, band in zip(positions, _window_read(image, [band_indices[p] for p in positions], native, window)):
            results[position] = band
    return results  # type: ignore[return-value]


def _window_read(
    image: ServerImage, band_indices: list[int], native: PixelGrid, window: Window
) -> list[np.ma.MaskedArray]:
    inside = window.intersection(Window.from_shape(native.height, native.width))
    if inside == window:
        return image.read_bands(band_indices, window)
    dtypes = [image.bands[index].dtype for index in band_indices]
    values = [np.zeros(window.shape, dtype) for dtype in dtypes]
    masks = [np.ones(window.shape, bool) for _ in dtypes]
    if inside is not None:
        target = inside.relative_to(window).slices()
        for value, mask, band in zip(values, masks, image.read_bands(band_indices, inside)):
            value[target] = np.ma.getdata(band)
            mask[target] = np.ma.getmaskarray(band)
    return [np.ma.MaskedArray(value, mask) for value, mask in zip(values, masks)]


def _resample(image: ServerImage, band_index: int, native: PixelGrid, grid: PixelGrid) -> np.ma.MaskedArray:
    dtype = image.bands[band_index].dtype
    values = np.zeros(grid.shape, dtype)
    mask = np.ones(grid.shape, bool)
    same_crs = crs_equal(grid.crs, native.crs)
    separable = same_crs and grid.is_axis_aligned and native.is_axis_aligned
    transformer = None
    if not same_crs:
        transformer = pyproj.Transformer.from_crs(to_pyproj(grid.crs), to_pyproj(native.crs), always_xy=True)
    for tile in tile_window(Window.from_shape(grid.height, grid.width), TILE, TILE):
        block_values, block_mask = values[tile.slices()], mask[tile.slices()]  # views
        if separable:
            rows, cols = _separable_indices(native, grid, tile)
            row_ok = (rows >= 0) & (rows < native.height)
            col_ok = (cols >= 0) & (cols < native.width)
            if not (row_ok.any() and col_ok.any()):
                continue
            sampled = image.sample_band(band_index, rows[row_ok][:, None], cols[col_ok][None, :])
            selector = np.ix_(row_ok, col_ok)
            block_values[selector] = np.ma.getdata(sampled)
            block_mask[selector] = np.ma.getmaskarray(sampled)
        else:
            rows, cols = _point_indices(native, grid, tile, transformer)
            valid = (cols >= 0) & (cols < native.width) & (rows >= 0) & (rows < native.height)
            if not valid.any():
                continue
            sampled = image.sample_band(band_index, rows[valid], cols[valid])
            block_values[valid] = np.ma.getdata(sampled)
            block_mask[valid] = np.ma.getmaskarray(sampled)
    return np.ma.MaskedArray(values, mask)


def _centres(tile: Window) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(tile.row_start, tile.row_stop, dtype="float64") + 0.5
    cols = np.arange(tile.col_start, tile.col_stop, dtype="float64") + 0.5
    return rows, cols


def _separable_indices(native: PixelGrid, grid: PixelGrid, tile: Window) -> tuple[np.ndarray, np.ndarray]:
    """Native row of each output row and native column of each output column."""
    out_rows, out_cols = _centres(tile)
    out, inv = grid.transform, ~native.transform
    cols = np.floor(np.clip(inv.c + (out.c + out_cols * out.a) * inv.a, -1, native.width)).astype("int64")
    rows = np.floor(np.clip(inv.f + (out.f + out_rows * out.e) * inv.e, -1, native.height)).astype("int64")
    return rows, cols


def _point_indices(
    native: PixelGrid, grid: PixelGrid, tile: Window, transformer: pyproj.Transformer | None
) -> tuple[np.ndarray, np.ndarray]:
    """Native (row, col) of every output pixel of the tile; -1 where the CRS transform fails."""
    out_rows, out_cols = _centres(tile)
    col_grid, row_grid = np.meshgrid(out_cols, out_rows)
    out = grid.transform
    xs = out.a * col_grid + out.b * row_grid + out.c
    ys = out.d * col_grid + out.e * row_grid + out.f
    if transformer is not None:
        xs, ys = transformer.transform(xs, ys, errcheck=False)
        xs, ys = np.asarray(xs), np.asarray(ys)
    inv = ~native.transform
    with np.errstate(invalid="ignore"):
        col_f = inv.a * xs + inv.b * ys + inv.c
        row_f = inv.d * xs + inv.e * ys + inv.f
    finite = np.isfinite(col_f) & np.isfinite(row_f)
    # Clipping first keeps far-away points representable as int64 (and still outside).
    cols = np.where(finite, np.floor(np.clip(np.where(finite, col_f, 0.0), -1, native.width)), -1).astype("int64")
    rows = np.where(finite, np.floor(np.clip(np.where(finite, row_f, 0.0), -1, native.height)), -1).astype("int64")
    return rows, cols
