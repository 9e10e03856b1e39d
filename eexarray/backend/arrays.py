"""The lazily indexed (non-dask) array of one band, and the hook that gives dask our graph.

Without ``chunks`` xarray keeps variables lazy and indexes them before loading:
``EexarrayBackendArray`` turns the final index into one read of exactly the
selected window, time steps and this band.

With ``chunks`` xarray calls ``Variable.chunk`` on each variable.
``EexarrayVariable.chunk`` answers with the arrays of ``graph.py`` (one request
per block for every band) instead of ``dask.array.from_array`` (one request per
block *per band*), and records in the variable's encoding (``ORIGIN``) which
rectangle of the opened asset it holds. Selecting from such a variable with
``isel``/``sel`` (``EexarrayVariable.__getitem__``) builds the arrays again on the
selected window, cut on the same tile boundaries, so a point or a small window
costs requests of that window (packed across images) rather than whole tiles.
Anything else falls back to xarray's own chunking and indexing, which stay correct.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from eexarray.backend.indexing import select

if TYPE_CHECKING:
    from eexarray.backend.dataset import OpenedAsset


def decode_masked(array: np.ndarray, float_dtype: str) -> np.ndarray:
    """A read's masked array (exact masks, fetched with the pixels) -> ``float_dtype`` with NaN where masked.

    Only the mask decides: a valid 0 stays 0, and a band's declared no-data values need no
    test of their own (Earth Engine masks them, so they arrive masked).
    """
    result = np.asarray(np.ma.getdata(array)).astype(float_dtype)
    mask = np.ma.getmask(array)
    if mask is not np.ma.nomask:  # reads with nothing masked come as plain arrays: one pass
        np.copyto(result, np.nan, where=mask)
    return result


class EexarrayBackendArray(BackendArray):
    def __init__(self, opened: OpenedAsset, band: int) -> None:
        self.opened = opened
        self.band = band
        self.shape = opened.variable_shape
        self.dtype = np.dtype(opened.variable_dtype(band))

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._read)

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        selection = select(key, self.shape, self.opened.has_time)
        if selection.empty:
            shape = tuple(n for axis, n in enumerate(selection.shape) if axis not in selection.squeeze)
            return np.empty(shape, dtype=self.dtype)
        data = self.opened.source.read(selection.times, selection.window, [self.band])[self.band]
        return selection.cut(self.opened.finish(data, self.band))


ORIGIN = "eexarray_origin"  # encoding key: where a variable's pixels come from (an ``Origin``)
# Encoding key of a band variable's Earth Engine metadata (dataType, pyramiding policy, no-data values,
# native grid). Encoding, not attrs: xarray carries attrs into derived variables (an NDVI would
# claim an INT dataType), and drops encodings there.
BAND_METADATA = "eexarray_band"


@dataclass(frozen=True, eq=False)
class Origin:
    """One band of an opened asset over a rectangle (one ``(start, stop)`` per dim), chunked by ``chunks``.

    ``array_name`` is the dask array it describes (``None``: the lazily indexed array of
    the whole asset). Encodings are deep-copied with Datasets: the origin is shared, not copied.
    """

    opened: OpenedAsset
    band: int
    dims: tuple[Hashable, ...]
    ranges: tuple[tuple[int, int], ...]
    chunks: tuple[tuple[int, ...], ...] | None = None
    array_name: str | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> Origin:
        return self

    def describes(self, variable: xr.Variable) -> bool:
        data = variable._data
        if self.array_name is None:
            return _find_backend_array(data) is not None
        return getattr(data, "name", None) == self.array_name and variable.dims == self.dims

    def build(self, ranges: tuple[tuple[int, int], ...], chunks: Any) -> tuple[Any, Origin]:
        """The dask array of this band over ``ranges`` (asset coordinates) and its origin."""
        key = tuple(slice(start, stop) for start, stop in ranges)
        data = self.opened.dask_array(self.band, key, chunks, self.dims)
        return data, Origin(self.opened, self.band, self.dims, ranges, data.chunks, data.name)


def origin_of(variable: xr.Variable | xr.DataArray) -> Origin | None:
    """Where an eexarray variable's pixels come from, while it still holds exactly them."""
    plain: xr.Variable = variable.variable if isinstance(variable, xr.DataArray) else variable
    origin = plain.encoding.get(ORIGIN)
    return origin if isinstance(origin, Origin) and origin.describes(plain) else None


PICKED = "eexarray_picked"  # encoding key: what a selection holding less than a rectangle reads (a ``Picked``)


@dataclass(frozen=True, eq=False)
class Picked:
    """A selection with points, steps or lists of positions: the rectangle it reads and the blocks it needs.

    ``origin`` is the rectangle built for the selection (its dask array is read), ``blocks``
    the block indices (per dim of ``origin``) holding a selected position: dask computes
    only those, so ``ds.eexarray.plan()`` counts only their reads. ``array_name`` is the
    selection's own dask array, so a record that no longer describes the data is ignored.
    """

    origin: Origin
    blocks: tuple[tuple[int, ...], ...]
    array_name: str

    def __deepcopy__(self, memo: dict[int, Any]) -> Picked:
        return self


def _blocks_holding(chunks: tuple[int, ...], rest: Any) -> tuple[int, ...]:
    """The blocks of ``chunks`` (from 0) holding a position ``rest`` selects (an int, a slice or positions)."""
    size = sum(chunks)
    if isinstance(rest, slice):
        positions = np.arange(size)[rest]
    else:
        positions = np.atleast_1d(np.asarray(rest))
    bounds = np.cumsum(chunks)
    return tuple(int(b) for b in np.unique(np.searchsorted(bounds, positions, side="right")))


def reads_of(variable: xr.Variable | xr.DataArray) -> tuple[Origin, tuple[tuple[int, ...], ...] | None] | None:
    """The rectangle a chunked eexarray variable reads and the blocks of it a compute needs (None: all).

    For the variables ``origin_of`` describes, and for selections of them with points,
    steps or lists of positions (``isel``/``sel``), which read a rectangle's blocks in part.
    """
    plain: xr.Variable = variable.variable if isinstance(variable, xr.DataArray) else variable
    origin = origin_of(plain)
    if origin is not None:
        return (origin, None) if origin.chunks is not None else None
    picked = plain.encoding.get(PICKED)
    if isinstance(picked, Picked) and getattr(plain._data, "name", None) == picked.array_name:
        return picked.origin, picked.blocks
    return None


def _find_backend_array(data: Any) -> tuple[EexarrayBackendArray, tuple[slice, ...]] | None:
    """Our array and the plain slices xarray applied to it, if ``data`` is just that."""
    while isinstance(data, (indexing.MemoryCachedArray, indexing.CopyOnWriteArray)):
        data = data.array
    if not isinstance(data, indexing.LazilyIndexedArray) or not isinstance(data.array, EexarrayBackendArray):
        return None
    key = data.key.tuple
    if not all(isinstance(k, slice) and k.step in (None, 1) for k in key):
        return None
    return data.array, key


def _is_dask(chunked_array_type: Any) -> bool:
    if chunked_array_type in (None, "dask"):
        return True
    from xarray.namedarray.daskmanager import DaskManager

    return isinstance(chunked_array_type, DaskManager)


def _clip_chunks(chunks: tuple[int, ...], start: int, stop: int) -> tuple[int, ...]:
    """The chunks of ``chunks`` (from 0) cut to ``[start, stop)``: same boundaries, fewer chunks."""
    bounds = np.concatenate([[0], np.cumsum(chunks)])
    inner = bounds[(bounds > start) & (bounds < stop)]
    edges = [start, *inner.tolist(), stop]
    return tuple(int(b - a) for a, b in zip(edges[:-1], edges[1:]))


def _span(item: Any, size: int) -> tuple[int, int, Any] | None:
    """(start, stop) an index item needs on an axis of ``size``, and the rest relative to start."""
    if isinstance(item, (int, np.integer)):
        index = int(item) % size if -size <= int(item) < size else None
        return None if index is None else (index, index + 1, 0)
    if isinstance(item, slice):
        picked = range(*item.indices(size))
        if len(picked) == 0:
            return None
        low, high = min(picked), max(picked) + 1
        if picked.step > 0:
            return low, high, slice(0, high - low, picked.step) if picked.step > 1 else slice(None)
        return low, high, np.asarray(picked, dtype=np.intp) - low
    positions = np.asarray(item)
    if positions.ndim != 1 or positions.size == 0 or not np.issubdtype(positions.dtype, np.integer):
        return None
    if ((positions < -size) | (positions >= size)).any():
        return None
    positions = positions % size
    low = int(positions.min())
    return low, int(positions.max()) + 1, positions - low


def _pick(data: Any, axis: int, positions: np.ndarray) -> Any:
    """``data`` at ``positions`` along ``axis``, as slices of consecutive runs put together.

    Plain slices and a concatenation: no fancy-indexing tasks, which dask's array query
    planning cannot lower (its ``Shuffle``) and which cost a task per position elsewhere.
    """
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    runs = [(int(run[0]), int(run[-1]) + 1) for run in np.split(positions, breaks)]
    pieces = [data[(slice(None),) * axis + (slice(start, stop),)] for start, stop in runs]
    return pieces[0] if len(pieces) == 1 else da.concatenate(pieces, axis=axis)


class EexarrayVariable(xr.Variable):
    """An xarray Variable whose ``chunk`` builds eexarray's shared-request graph and whose
    selections are pushed into the requests (see the module docstring)."""

    __slots__ = ()

    def chunk(self, chunks: Any = {}, *args: Any, **kwargs: Any) -> Any:  # noqa: B006 - xarray's signature
        found = _find_backend_array(self._data)
        if found is None or args or not _is_dask(kwargs.get("chunked_array_type")):
            return xr.Variable(self.dims, self._data, self.attrs, self.encoding).chunk(chunks, *args, **kwargs)
        array, key = found
        extra = {
            k: v
            for k, v in kwargs.items()
            if k not in ("name", "lock", "inline_array", "chunked_array_type", "from_array_kwargs")
        }
        if isinstance(chunks, dict) and extra:
            chunks = {**chunks, **extra}
        ranges = tuple(item.indices(size)[:2] for item, size in zip(key, array.shape))
        whole = Origin(array.opened, array.band, self.dims, ranges)
        data, origin = whole.build(ranges, chunks)
        return type(self)(self.dims, data, self.attrs, {**self.encoding, ORIGIN: origin})

    def __getitem__(self, key: Any) -> Any:
        origin = self.encoding.get(ORIGIN)
        if not isinstance(origin, Origin) or origin.chunks is None or not origin.describes(self):
            return super().__getitem__(key)
        dims, indexer, new_order = self._broadcast_indexes(key)
        if new_order or not isinstance(indexer, (indexing.BasicIndexer, indexing.OuterIndexer)):
            return super().__getitem__(key)
        found = [_span(item, size) for item, size in zip(indexer.tuple, self.shape)]
        spans = [span for span in found if span is not None]
        if len(spans) != len(found):
            return super().__getitem__(key)  # empty or unusual: xarray's own indexing is right
        ranges = tuple((base + span[0], base + span[1]) for (base, _), span in zip(origin.ranges, spans))
        chunks = tuple(_clip_chunks(c, span[0], span[1]) for c, span in zip(origin.chunks, spans))
        data, narrowed = origin.build(ranges, chunks)
        rests = [span[2] for span in spans]
        for axis in reversed(range(len(rests))):  # last axis first: integer picks drop axes
            rest = rests[axis]
            if isinstance(rest, np.ndarray):
                data = _pick(data, axis, rest)
            elif not (isinstance(rest, slice) and rest == slice(None)):
                data = data[(slice(None),) * axis + (rest,)]
        encoding = dict(self.encoding)
        encoding.pop(PICKED, None)
        if all(isinstance(rest, slice) and rest == slice(None) for rest in rests):
            encoding[ORIGIN] = narrowed
        else:
            encoding.pop(ORIGIN, None)
            assert narrowed.chunks is not None  # built as a dask array
            blocks = tuple(_blocks_holding(c, rest) for c, rest in zip(narrowed.chunks, rests))
            encoding[PICKED] = Picked(narrowed, blocks, data.name)
        return type(self)(dims, data, self.attrs, encoding, fastpath=True)
