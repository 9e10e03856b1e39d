"""Lazy band pixels: how a computed band produces its values on any output grid.

A computed band holds a ``BandSource``: nothing is read when an expression is
evaluated, only when computePixels asks for a grid. Then every stored band involved
is read on that grid through the getPixels engine (``read_on_grid``: window reads
when aligned, nearest neighbour otherwise), and the operations run on numpy masked
arrays (mask True = missing) of the output size. So the memory of a request is a few
output-sized arrays per operation, never a whole (possibly 2**20-pixel) image.
Composites read their inputs in row strips so a stack of many images stays bounded.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from eexarray.geometry import PixelGrid, Window
from eexarray.server.images import BandInfo, ServerImage
from eexarray.server.resample import read_on_grid

STACK_BUDGET_BYTES = 64 * 2**20  # per composite strip: inputs x strip pixels x bytes


class BandSource(Protocol):
    def read(self, grid: PixelGrid) -> np.ma.MaskedArray:
        """Values on ``grid`` (dtype of the band's PixelType), mask True where missing."""


def masked(values: np.ndarray, mask: Any = False) -> np.ma.MaskedArray:
    """A masked array with an explicit boolean mask array (never ``nomask``)."""
    return np.ma.MaskedArray(values, np.broadcast_to(np.asarray(mask, bool), values.shape).copy())


# Stored bands already read on a grid during one computePixels request (see ``shared_reads``).
_reads: contextvars.ContextVar[dict[tuple[int, PixelGrid, str], np.ma.MaskedArray] | None] = contextvars.ContextVar(
    "eexarray_server_reads", default=None
)


@contextlib.contextmanager
def shared_reads() -> Iterator[None]:
    """Within the block, a stored band read twice on one grid is read once (then copied).

    An expression often uses a band twice: its values and its mask (``Image.mask``), an
    NDVI's bands in two operations. Reading the stored pixels again (a resampling, a
    procedural or landscape computation) would double the request's work.
    """
    token = _reads.set({})
    try:
        yield
    finally:
        _reads.reset(token)


@dataclass(frozen=True, eq=False)
class AssetSource:
    """Band ``index`` of a stored image; ``mode``: how pixels off its native grid are computed
    (``Image.resample``: "bilinear"/"bicubic"; else nearest)."""

    image: ServerImage
    index: int
    mode: str = "nearest"

    def read(self, grid: PixelGrid) -> np.ma.MaskedArray:
        cache = _reads.get()
        key = (id(self), grid, self.mode)
        band = cache.get(key) if cache is not None else None
        if band is None:
            band = read_on_grid(self.image, [self.index], grid, self.mode)[0]
            if cache is not None:
                cache[key] = band
        # A copy each time: the operations downstream may write into what they are given.
        return masked(np.ma.getdata(band).copy(), np.ma.getmaskarray(band))


@dataclass(frozen=True, eq=False)
class ConstantSource:
    value: int | float
    dtype: np.dtype
    all_masked: bool = False

    def read(self, grid: PixelGrid) -> np.ma.MaskedArray:
        return masked(np.full(grid.shape, self.value, dtype=self.dtype), self.all_masked)


@dataclass(frozen=True, eq=False)
class MapSource:
    """``function`` applied pixel-wise to the inputs read on the same grid."""

    function: Callable[..., np.ma.MaskedArray]
    inputs: tuple[BandSource, ...]

    def read(self, grid: PixelGrid) -> np.ma.MaskedArray:
        result = self.function(*[source.read(grid) for source in self.inputs])
        return masked(np.ma.getdata(result), np.ma.getmaskarray(result))


@dataclass(frozen=True, eq=False)
class ClipSource:
    """``inner`` with every pixel outside ``footprint`` masked."""

    inner: BandSource
    footprint: PixelGrid

    def read(self, grid: PixelGrid) -> np.ma.MaskedArray:
        band = self.inner.read(grid)
        return masked(np.ma.getdata(band), np.ma.getmaskarray(band) | outside(self.footprint, grid))


@dataclass(frozen=True, eq=False)
class StackSource:
    """``function`` of the list of all inputs (a composite), computed strip by strip."""

    function: Callable[[list[np.ma.MaskedArray]], np.ma.MaskedArray]
    inputs: tuple[BandSource, ...]
    dtype: np.dtype

    def read(self, grid: PixelGrid) -> np.ma.MaskedArray:
        per_row = max(1, len(self.inputs)) * grid.width * 17  # values + mask + a float64 working copy
        rows = max(1, STACK_BUDGET_BYTES // per_row)
        if rows >= grid.height:
            return self._strip(grid)
        values = np.zeros(grid.shape, self.dtype)
        mask = np.ones(grid.shape, bool)
        for start in range(0, grid.height, rows):
            window = Window(start, min(start + rows, grid.height), 0, grid.width)
            strip = self._strip(grid.window(window))
            values[window.slices()] = np.ma.getdata(strip)
            mask[window.slices()] = np.ma.getmaskarray(strip)
        return masked(values, mask)

    def _strip(self, grid: PixelGrid) -> np.ma.MaskedArray:
        if not self.inputs:
            return masked(np.zeros(grid.shape, self.dtype), True)
        result = self.function([source.read(grid) for source in self.inputs])
        return masked(np.ma.getdata(result).astype(self.dtype, copy=False), np.ma.getmaskarray(result))


class _FootprintProbe(ServerImage):
    """A one-band image valid everywhere on ``grid``: read on another grid, its mask is the outside."""

    def __init__(self, grid: PixelGrid):
        self.asset_id = "<footprint>"
        self.bands = (BandInfo("probe", "uint8", grid),)
        self.start_time = self.end_time = None
        self.properties = {}

    def read_band(self, band_index: int, window: Window) -> np.ma.MaskedArray:
        return masked(np.zeros(window.shape, "uint8"))

    def sample_band(self, band_index: int, rows: np.ndarray, cols: np.ndarray) -> np.ma.MaskedArray:
        return masked(np.zeros(np.broadcast_shapes(np.shape(rows), np.shape(cols)), "uint8"))


def outside(footprint: PixelGrid, grid: PixelGrid) -> np.ndarray:
    """True where a pixel of ``grid`` falls outside ``footprint`` (same sampling rule as reads)."""
    return np.ma.getmaskarray(read_on_grid(_FootprintProbe(footprint), [0], grid)[0])


def map_sources(function: Callable[..., np.ma.MaskedArray], *inputs: BandSource) -> MapSource:
    return MapSource(function, tuple(inputs))


def stack_source(
    function: Callable[[list[np.ma.MaskedArray]], np.ma.MaskedArray], inputs: Sequence[BandSource], dtype: np.dtype
) -> StackSource:
    return StackSource(function, tuple(inputs), np.dtype(dtype))
