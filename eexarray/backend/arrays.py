"""The lazily indexed (non-dask) array of one band, and the hook that gives dask our graph.

Without ``chunks`` xarray keeps variables lazy and indexes them before loading:
``EexarrayBackendArray`` turns the final index into one read of exactly the
selected window, time steps and this band.

With ``chunks`` xarray calls ``Variable.chunk`` on each variable.
``EexarrayVariable.chunk`` answers with the arrays of ``graph.py`` (one request
per block for every needed band) instead of ``dask.array.from_array`` (one
request per block *per band*). It only does so while the variable still
addresses a plain rectangle of the opened asset; anything else falls back to
xarray's own chunking, which stays correct.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from eexarray.backend.indexing import select

if TYPE_CHECKING:
    from eexarray.backend.dataset import OpenedAsset


def apply_missing(array: np.ndarray, missing_values: tuple[float, ...], float_dtype: str) -> np.ndarray:
    """Missing data -> NaN: Earth Engine encodes masked pixels as 0, plus the band's no-data values."""
    result = array.astype(float_dtype)
    result[np.isin(array, (0, *missing_values))] = np.nan
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


class EexarrayVariable(xr.Variable):
    """An xarray Variable whose ``chunk`` builds eexarray's shared-request dask graph."""

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
        data = array.opened.dask_array(array.band, key, chunks, self.dims)
        return xr.Variable(self.dims, data, self.attrs, self.encoding)
