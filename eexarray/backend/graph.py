"""Dask arrays for the variables of an opened asset, one request per block for all bands.

Each variable (band) is an ordinary ``dask.array.Array`` backed by a lazy graph
layer (``BandLayer``): nothing is materialised when a Dataset is opened, so
opening is flat in the asset's size.

Bands share requests without sharing tasks. When dask culls a graph before a
compute, every band layer of one open adds the blocks it must deliver to one
``FetchPlan`` shared by that cull pass: for each block, the bands this compute
needs from it. The plan is complete before any task runs. All band tasks of the
compute reference that plan, so the first
band task of a block fetches every *needed* band in one request and the other
band tasks pick their arrays up (see prefetch.py). Computing a subset of
variables therefore never fetches the other bands, and computing all of them
costs one request per block, not one per band.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import dask.array as da
import numpy as np
from dask._task_spec import DataNode, Task
from dask.array.core import getter
from dask.highlevelgraph import HighLevelGraph, Layer

from eexarray.backend.indexing import select
from eexarray.backend.prefetch import BlockIndex, BlockLayout, FetchPlan
from eexarray.backend.source import PixelSource


@dataclass
class GraphContext:
    """What the band layers of one open share: the source, the blocks, the plans of recent culls."""

    source: PixelSource
    layout: BlockLayout
    band_of_name: dict[str, int]
    has_time: bool
    finishes: dict[int, Finish] = field(default_factory=dict)
    _plans: dict[int, tuple[object, FetchPlan]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def key_block(self, key: tuple[Any, ...]) -> BlockIndex:
        return (key[1], key[2], key[3]) if self.has_time else (0, key[1], key[2])

    def __getstate__(self) -> dict[str, Any]:
        # Locks do not pickle and recent plans mean nothing in another process.
        return {
            "source": self.source, "layout": self.layout, "band_of_name": self.band_of_name,
            "has_time": self.has_time, "finishes": self.finishes,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def plan_for(self, keys: set[Any]) -> FetchPlan:
        """The plan of the cull pass whose (shared, mutated) key set is ``keys``.

        Dask's ``HighLevelGraph.cull`` hands one set object to every layer of one
        pass, so its identity names the pass. Each band layer adds its own needs to
        the pass's plan; the plan is complete before any task runs.
        """
        with self._lock:
            entry = self._plans.get(id(keys))
            if entry is not None and entry[0] is keys:
                return entry[1]
            plan = FetchPlan(self.source, self.layout, {})
            if len(self._plans) >= 8:  # only concurrent culls need more than one
                self._plans.pop(next(iter(self._plans)))
            # Holding `keys` keeps its id from being reused while the entry lives.
            self._plans[id(keys)] = (keys, plan)
            return plan


@dataclass(frozen=True)
class Finish:
    """``mask_and_scale``: missing values -> NaN in ``float_dtype`` (applied inside the read)."""

    missing_values: tuple[float, ...]
    float_dtype: str

    def __call__(self, array: np.ndarray) -> np.ndarray:
        from eexarray.backend.arrays import apply_missing

        return apply_missing(array, self.missing_values, self.float_dtype)


@dataclass(frozen=True)
class BlockReader:
    """One band of one block, indexable like an array.

    Its task is ``getter(reader, full_index)``; dask fuses a later ``ds.isel`` slice
    into that index, so ``__getitem__`` receives the final selection and fetches
    only the time steps and window it covers.
    """

    plan: FetchPlan
    block: BlockIndex
    band: int
    has_time: bool
    shape: tuple[int, ...]
    dtype: str
    finish: Finish | None = None

    def __getitem__(self, index: Any) -> np.ndarray:
        selection = select(index if isinstance(index, tuple) else (index,), self.shape, self.has_time)
        if selection.empty:
            shape = tuple(n for axis, n in enumerate(selection.shape) if axis not in selection.squeeze)
            return np.empty(shape, dtype=self.dtype)
        data = self.plan.take(self.block, self.band, (selection.times, selection.window))
        if self.finish is not None:
            data = self.finish(data)
        return selection.cut(data)


class BandLayer(Layer):
    """The blocks of one band, generated on demand."""

    def __init__(self, name: str, band: int, context: GraphContext, plan: FetchPlan | None = None) -> None:
        super().__init__()
        self.name = name
        self.band = band
        self.context = context
        self.plan = plan
        self._keys: set[Any] | None = None

    @property
    def has_legacy_tasks(self) -> bool:  # type: ignore[override]
        return False  # our tasks are Task objects; never materialise to find out

    def _all_keys(self) -> Iterator[tuple[Any, ...]]:
        layout = self.context.layout
        ranges = [range(len(layout.row_chunks)), range(len(layout.col_chunks))]
        if self.context.has_time:
            ranges.insert(0, range(len(layout.time_chunks)))
        for index in product(*ranges):
            yield (self.name, *index)

    def _key_set(self) -> set[Any]:
        if self._keys is None:
            self._keys = set(self._all_keys())
        return self._keys

    def __getitem__(self, key: Any) -> Task:
        if not (isinstance(key, tuple) and key and key[0] == self.name):
            raise KeyError(key)
        block = self.context.key_block(key)
        layout = self.context.layout
        if not (
            0 <= block[0] < len(layout.time_chunks)
            and 0 <= block[1] < len(layout.row_chunks)
            and 0 <= block[2] < len(layout.col_chunks)
        ):
            raise KeyError(key)
        plan = self.plan or FetchPlan(self.context.source, layout, {})
        shape = (layout.row_chunks[block[1]], layout.col_chunks[block[2]])
        if self.context.has_time:
            shape = (layout.time_chunks[block[0]], *shape)
        finish = self.context.finishes.get(self.band)
        dtype = finish.float_dtype if finish else self.context.source.dtypes[self.band]
        reader = BlockReader(plan, block, self.band, self.context.has_time, shape, dtype, finish)
        return Task(key, getter, DataNode(None, reader), tuple(slice(0, n) for n in shape))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._all_keys())

    def __len__(self) -> int:
        layout = self.context.layout
        count = len(layout.row_chunks) * len(layout.col_chunks)
        return count * (len(layout.time_chunks) if self.context.has_time else 1)

    def __contains__(self, key: object) -> bool:
        try:
            self[key]
        except (KeyError, TypeError, IndexError):
            return False
        return True

    def is_materialized(self) -> bool:
        return False

    def get_output_keys(self) -> Collection[Any]:
        return self._key_set()

    def cull(self, keys: set[Any], all_hlg_keys: Collection[Any]) -> tuple[Layer, Mapping[Any, set[Any]]]:
        plan = self.context.plan_for(keys)
        planned = BandLayer(self.name, self.band, self.context, plan)
        needed = [key for key in keys if isinstance(key, tuple) and key and key[0] == self.name and key in self]
        for key in needed:
            plan.add(self.context.key_block(key), self.band)
        culled = _CulledBandLayer({key: planned[key] for key in needed})
        return culled, {key: set() for key in needed}


class _CulledBandLayer(Layer):
    """A materialised, culled band layer (only the blocks one compute needs)."""

    def __init__(self, tasks: dict[Any, Task]) -> None:
        super().__init__()
        self.tasks = tasks

    @property
    def has_legacy_tasks(self) -> bool:  # type: ignore[override]
        return False

    def __getitem__(self, key: Any) -> Task:
        return self.tasks[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def is_materialized(self) -> bool:
        return True

    def get_output_keys(self) -> Collection[Any]:
        return self.tasks.keys()

    def cull(self, keys: set[Any], all_hlg_keys: Collection[Any]) -> tuple[Layer, Mapping[Any, set[Any]]]:
        needed = {key: task for key, task in self.tasks.items() if key in keys}
        return _CulledBandLayer(needed), {key: set() for key in needed}


def band_arrays(
    source: PixelSource, layout: BlockLayout, token: str, has_time: bool, finishes: dict[int, Finish] | None = None
) -> dict[str, da.Array]:
    """One dask array per band of ``source``, sharing requests as described in the module doc."""
    names = {band_id: f"{band_id}-{token}" for band_id in source.band_ids}
    finishes = finishes or {}
    context = GraphContext(source, layout, {name: i for i, name in enumerate(names.values())}, has_time, finishes)
    chunks: tuple[tuple[int, ...], ...] = (layout.row_chunks, layout.col_chunks)
    if has_time:
        chunks = (layout.time_chunks, *chunks)
    arrays = {}
    for index, band_id in enumerate(source.band_ids):
        name = names[band_id]
        graph = HighLevelGraph({name: BandLayer(name, index, context)}, {name: set()})
        dtype = np.dtype(finishes[index].float_dtype if index in finishes else source.dtypes[index])
        arrays[band_id] = da.Array(graph, name, chunks, meta=np.empty((0,) * len(chunks), dtype=dtype))
    return arrays
