"""Request planning: which requests cover which window, under which limits. Pure.

Two questions are answered here:

* ``auto_tile_shape``: the largest tile (rows, cols) whose request, with *all*
  selected bands and the mask byte, fits the byte budget and the side limit.
  Auto dask chunks use it, so one chunk is one request at >= 90 % of the budget
  when the region is large enough.
* ``plan_requests``: for any window and any band selection (a user's chunk may be
  larger than one request), the list of requests (window, bands) that covers the
  window exactly once and respects every limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eexarray.geometry import Window, tile_window
from eexarray.planning.limits import DEFAULT_LIMITS, RequestLimits


@dataclass(frozen=True)
class PlannedRequest:
    """One request: a window of the output grid and the positions of the bands it fetches."""

    window: Window
    bands: tuple[int, ...]


def auto_tile_shape(
    height: int, width: int, dtypes: Sequence[np.dtype | str], limits: RequestLimits = DEFAULT_LIMITS
) -> tuple[int, int]:
    """Largest near-square tile ``(rows, cols)`` of a ``height`` x ``width`` region in one request.

    Square-ish tiles keep spatial operations local; when the region is narrower
    than the square side the tile widens the other way so the budget stays full.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"Region shape must be positive, got {height}x{width}")
    max_pixels = limits.max_bytes // limits.bytes_per_pixel(dtypes)
    if max_pixels < 1:
        raise ValueError(f"One pixel of {len(dtypes)} bands exceeds the {limits.max_bytes}-byte request budget")
    side = min(limits.max_side, math.isqrt(max_pixels))
    cols = min(width, side)
    rows = min(height, limits.max_side, max_pixels // cols)
    if rows == height:  # region shorter than a square tile: use the spare budget for width
        cols = min(width, limits.max_side, max_pixels // rows)
    return rows, cols


def band_groups(dtypes: Sequence[np.dtype | str], limits: RequestLimits = DEFAULT_LIMITS) -> list[tuple[int, ...]]:
    """Split band positions into consecutive groups a single request can carry.

    A group holds at most ``max_bands`` bands and one pixel of it fits the byte
    budget (only absurd band counts need more than one group). Linear in the number
    of bands: packed time series plan 1000 (image, band) pairs at a time.
    """
    groups: list[tuple[int, ...]] = []
    current: list[int] = []
    pixel_bytes = limits.mask_bytes_per_pixel
    for index, dtype in enumerate(dtypes):
        size = np.dtype(dtype).itemsize
        if current and (len(current) + 1 > limits.max_bands or pixel_bytes + size > limits.max_bytes):
            groups.append(tuple(current))
            current, pixel_bytes = [], limits.mask_bytes_per_pixel
        current.append(index)
        pixel_bytes += size
    if current:
        groups.append(tuple(current))
    return groups


def plan_requests(
    window: Window,
    dtypes: Sequence[np.dtype | str],
    bands: Sequence[int] | None = None,
    limits: RequestLimits = DEFAULT_LIMITS,
) -> list[PlannedRequest]:
    """Requests covering ``window`` for ``bands`` (positions into ``dtypes``), each within ``limits``.

    Every band of the selection lands in exactly one group and every pixel of
    the window in exactly one tile of that group.
    """
    selected = list(range(len(dtypes))) if bands is None else list(bands)
    if not selected or window.size == 0:
        return []
    requests: list[PlannedRequest] = []
    for group in band_groups([dtypes[i] for i in selected], limits):
        group_bands = tuple(selected[i] for i in group)
        rows, cols = auto_tile_shape(window.height, window.width, [dtypes[i] for i in group_bands], limits)
        requests.extend(PlannedRequest(tile, group_bands) for tile in tile_window(window, rows, cols))
    return requests
