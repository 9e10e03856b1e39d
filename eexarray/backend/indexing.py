"""Turn an outer index into what to fetch (time steps + window) and how to cut the result. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from eexarray.geometry import Window


@dataclass(frozen=True)
class Selection:
    """What an index needs: time steps, a window, and the cut applied to the fetched (t, rows, cols)."""

    times: tuple[int, ...]
    window: Window
    row_cut: Any  # slice or integer array, relative to the window
    col_cut: Any
    squeeze: tuple[int, ...]  # axes of the result indexed by an integer
    shape: tuple[int, ...]  # the result's shape before squeezing

    @property
    def empty(self) -> bool:
        return 0 in self.shape

    def cut(self, fetched: np.ndarray) -> np.ndarray:
        """``fetched`` (len(times), window rows, window cols) -> the indexed result."""
        rows, cols = self.row_cut, self.col_cut
        if isinstance(rows, slice) and isinstance(cols, slice):
            result = fetched[:, rows, cols]
        else:
            rows = np.arange(fetched.shape[1])[rows] if isinstance(rows, slice) else rows
            cols = np.arange(fetched.shape[2])[cols] if isinstance(cols, slice) else cols
            result = fetched[:, rows[:, None], cols[None, :]]
        return result.squeeze(axis=self.squeeze) if self.squeeze else result


def _axis(item: Any, size: int) -> tuple[list[int] | range, bool]:
    """The positions an index item picks on an axis of ``size``, and whether it was an integer."""
    if isinstance(item, (int, np.integer)):
        index = int(item)
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of bounds for an axis of size {size}")
        return [index % size], True
    if isinstance(item, slice):
        return range(*item.indices(size)), False
    positions = np.asarray(item)
    if positions.dtype == bool:
        positions = np.nonzero(positions)[0]
    if positions.ndim != 1 or not np.issubdtype(positions.dtype, np.integer):
        raise IndexError(f"unsupported index {item!r}: use integers, slices or 1-D integer arrays")
    if ((positions < -size) | (positions >= size)).any():
        raise IndexError(f"index {item!r} is out of bounds for an axis of size {size}")
    return [int(p) % size for p in positions], False


def _span(picked: list[int] | range) -> tuple[int, int, Any]:
    """(start, stop) to fetch and the cut relative to start."""
    if len(picked) == 0:
        return 0, 0, slice(0, 0)
    low, high = min(picked), max(picked) + 1
    if isinstance(picked, range) and picked.step > 0:
        return low, high, slice(0, high - low, picked.step)
    return low, high, np.asarray(picked, dtype=np.intp) - low


def select(index: tuple[Any, ...], shape: tuple[int, ...], has_time: bool) -> Selection:
    """The ``Selection`` of an outer index over an array of ``shape`` ((time,) rows, cols)."""
    if len(index) < len(shape):
        index = tuple(index) + (slice(None),) * (len(shape) - len(index))
    axes = [_axis(item, size) for item, size in zip(index, shape)]
    squeeze = tuple(axis for axis, (_, is_int) in enumerate(axes) if is_int)
    if has_time:
        (times, _), rows, cols = axes[0], axes[1], axes[2]
        times_tuple = tuple(times)
    else:
        rows, cols = axes[0], axes[1]
        times_tuple = (0,)
        squeeze = tuple(axis + 1 for axis in squeeze) + (0,)
    row_start, row_stop, row_cut = _span(rows[0])
    col_start, col_stop, col_cut = _span(cols[0])
    result_shape = (len(times_tuple), len(rows[0]), len(cols[0]))
    return Selection(
        times_tuple,
        Window(row_start, row_stop, col_start, col_stop),
        row_cut,
        col_cut,
        tuple(sorted(squeeze)),
        result_shape,
    )
