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
* ``mode="bilinear"|"bicubic"`` (an image given ``Image.resample``): the same output
  pixel centres, interpolated between native (or pyramid level) pixel centres instead:
  bilinear over the 2 x 2 nearest pixels, bicubic over 4 x 4 with the Keys cubic
  convolution kernel, a = -0.5 (Catmull-Rom; GDAL's ``cubic`` too - Earth Engine does not
  document its kernel). Pixels beyond the edge repeat the edge pixel. Where the output is
  masked does not change: the pixel containing the centre decides, as for nearest.
  Masked neighbours are left out (the remaining weights renormalised); bicubic with a
  masked neighbour falls back to bilinear. Integer bands are rounded to the nearest
  integer and clipped to their type, so a band keeps its type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyproj

from eexarray.geometry import PixelGrid, Window, crs_equal, to_pyproj
from eexarray.geometry.window import tile_window
from eexarray.server.images import ServerImage
from eexarray.server.pyramids import PyramidLevel, has_pyramids, level_grid, pyramid_level

TILE = 512  # output pixels a side per resampling step
RESAMPLING_MODES = ("nearest", "bilinear", "bicubic")


def read_on_grid(
    image: ServerImage, band_indices: Sequence[int], grid: PixelGrid, mode: str = "nearest"
) -> list[np.ma.MaskedArray]:
    """Each band on ``grid``: values in the band's dtype, mask True where missing or outside.
    ``mode`` says how pixels off the native grid are computed (aligned reads are exact in every mode)."""
    if mode not in RESAMPLING_MODES:
        raise ValueError(f"Unknown resampling mode {mode!r}; expected one of {RESAMPLING_MODES}")
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
                results[position] = _resample(
                    PyramidLevel(image, index, level), 0, level_grid(native, level), grid, mode
                )
            else:
                results[position] = _resample(image, index, native, grid, mode)
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


def _resample(
    image: ServerImage, band_index: int, native: PixelGrid, grid: PixelGrid, mode: str = "nearest"
) -> np.ma.MaskedArray:
    if mode != "nearest":
        return _interpolate(image, band_index, native, grid, mode)
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
    row_f, col_f = _continuous_positions(native, grid, tile, transformer)
    finite = np.isfinite(col_f) & np.isfinite(row_f)
    # Clipping first keeps far-away points representable as int64 (and still outside).
    cols = np.where(finite, np.floor(np.clip(np.where(finite, col_f, 0.0), -1, native.width)), -1).astype("int64")
    rows = np.where(finite, np.floor(np.clip(np.where(finite, row_f, 0.0), -1, native.height)), -1).astype("int64")
    return rows, cols


# -- interpolation (Image.resample) -------------------------------------------------------------


def keys_cubic(distance: np.ndarray, a: float = -0.5) -> np.ndarray:
    """The Keys (1981) cubic convolution kernel at ``distance`` (in pixels)."""
    x = np.abs(distance)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def _taps(position: np.ndarray, size: int, mode: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Native indices (clipped to the band: the edge repeats) and weights of each tap along one axis,
    for continuous pixel coordinates ``position`` (pixel ``i`` spans ``[i, i + 1)``)."""
    centred = position - 0.5
    base = np.floor(centred)
    fraction = centred - base
    offsets = (0, 1) if mode == "bilinear" else (-1, 0, 1, 2)
    indices, weights = [], []
    for offset in offsets:
        indices.append(np.clip(base + offset, 0, size - 1).astype("int64"))
        if mode == "bilinear":
            weights.append(1 - fraction if offset == 0 else fraction)
        else:
            weights.append(keys_cubic(fraction - offset))
    return indices, weights


def _interpolate(
    image: ServerImage, band_index: int, native: PixelGrid, grid: PixelGrid, mode: str
) -> np.ma.MaskedArray:
    dtype = np.dtype(image.bands[band_index].dtype)
    values = np.zeros(grid.shape, dtype)
    mask = np.ones(grid.shape, bool)
    transformer = None
    if not crs_equal(grid.crs, native.crs):
        transformer = pyproj.Transformer.from_crs(to_pyproj(grid.crs), to_pyproj(native.crs), always_xy=True)
    for tile in tile_window(Window.from_shape(grid.height, grid.width), TILE, TILE):
        row_f, col_f = _continuous_positions(native, grid, tile, transformer)
        finite = np.isfinite(row_f) & np.isfinite(col_f)
        row_f, col_f = np.where(finite, row_f, -1.0), np.where(finite, col_f, -1.0)
        inside = finite & (row_f >= 0) & (row_f < native.height) & (col_f >= 0) & (col_f < native.width)
        if not inside.any():
            continue
        rows, cols = np.clip(row_f, 0, native.height - 1e-9), np.clip(col_f, 0, native.width - 1e-9)
        row_taps, row_weights = _taps(rows, native.height, mode)
        col_taps, col_weights = _taps(cols, native.width, mode)
        sample = _sampler(image, band_index, row_taps + col_taps, inside)
        result, weight = _weighted(sample, inside, row_taps, row_weights, col_taps, col_weights)
        if mode == "bicubic":
            complete = _all_valid(sample, inside, row_taps, col_taps)
            if not complete.all():  # a masked neighbour: bilinear over the valid ones there
                b_rows, b_row_weights = _taps(rows, native.height, "bilinear")
                b_cols, b_col_weights = _taps(cols, native.width, "bilinear")
                fallback, fallback_weight = _weighted(sample, inside, b_rows, b_row_weights, b_cols, b_col_weights)
                result = np.where(complete, result, fallback)
                weight = np.where(complete, weight, fallback_weight)
        # The pixel containing the centre decides whether the output is valid (as for nearest).
        _, own_valid = sample(np.floor(rows).astype("int64"), np.floor(cols).astype("int64"))
        ok = inside & own_valid & (weight > 1e-12)
        with np.errstate(invalid="ignore", divide="ignore"):
            interpolated = np.where(ok, result / np.where(ok, weight, 1.0), 0.0)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            interpolated = np.clip(np.rint(interpolated), info.min, info.max)
        values[tile.slices()] = interpolated.astype(dtype)
        mask[tile.slices()] = ~ok
    return np.ma.MaskedArray(values, mask)


def _continuous_positions(
    native: PixelGrid, grid: PixelGrid, tile: Window, transformer: pyproj.Transformer | None
) -> tuple[np.ndarray, np.ndarray]:
    """Native (row, col) coordinates, as floats, of every output pixel centre of the tile."""
    out_rows, out_cols = _centres(tile)
    col_grid, row_grid = np.meshgrid(out_cols, out_rows)
    out = grid.transform
    xs = out.a * col_grid + out.b * row_grid + out.c
    ys = out.d * col_grid + out.e * row_grid + out.f
    if transformer is not None:
        xs, ys = transformer.transform(xs, ys, errcheck=False)
        xs, ys = np.asarray(xs, dtype="float64"), np.asarray(ys, dtype="float64")
    inv = ~native.transform
    with np.errstate(invalid="ignore"):
        return inv.d * xs + inv.e * ys + inv.f, inv.a * xs + inv.b * ys + inv.c


Sampler = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _sampler(image: ServerImage, band_index: int, taps: list[np.ndarray], inside: np.ndarray) -> Sampler:
    """``sample(rows, cols)`` -> (values as float64, valid) at native indices (only ``inside`` matters).

    One native read per tile when the taps' bounding window is compact (upsampling, mild
    rescaling); otherwise (a far downsample of an image without pyramids) each tap set is
    sampled on its own, so the window between the taps is never read.
    """
    points = int(inside.sum())
    rows = np.concatenate([taps[inside] for taps in taps[: len(taps) // 2]])
    cols = np.concatenate([taps[inside] for taps in taps[len(taps) // 2 :]])
    window = Window(int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
    if window.size <= 4 * len(taps) * points:
        block = image.read_band(band_index, window)
        valid_block = ~np.ma.getmaskarray(block)
        data_block = np.where(valid_block, np.ma.getdata(block).astype("float64"), 0.0)

        def from_block(r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            local_r = np.where(inside, r - window.row_start, 0).clip(0, window.height - 1)
            local_c = np.where(inside, c - window.col_start, 0).clip(0, window.width - 1)
            return data_block[local_r, local_c], valid_block[local_r, local_c] & inside

        return from_block

    def pointwise(r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        data = np.zeros(r.shape)
        valid = np.zeros(r.shape, bool)
        sampled = image.sample_band(band_index, r[inside], c[inside])
        ok = ~np.ma.getmaskarray(sampled)
        data[inside] = np.where(ok, np.ma.getdata(sampled).astype("float64"), 0.0)
        valid[inside] = ok
        return data, valid

    return pointwise


def _weighted(
    sample: Sampler,
    inside: np.ndarray,
    row_taps: list[np.ndarray],
    row_weights: list[np.ndarray],
    col_taps: list[np.ndarray],
    col_weights: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of weight x value over the valid taps, and the sum of their weights."""
    total = np.zeros(inside.shape)
    weight = np.zeros(inside.shape)
    for rows, row_weight in zip(row_taps, row_weights):
        for cols, col_weight in zip(col_taps, col_weights):
            data, valid = sample(rows, cols)
            w = row_weight * col_weight * valid
            total += w * data
            weight += w
    return total, weight


def _all_valid(
    sample: Sampler, inside: np.ndarray, row_taps: list[np.ndarray], col_taps: list[np.ndarray]
) -> np.ndarray:
    complete = inside.copy()
    for rows in row_taps:
        for cols in col_taps:
            complete &= sample(rows, cols)[1]
    return complete
