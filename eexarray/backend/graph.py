"""Dask arrays for the variables of an opened asset, one request per block for all bands.

Each variable (band) is an ordinary ``dask.array.Array`` backed by a lazy graph
layer (``BandLayer``); a second lazy layer (``BlocksLayer``) holds one tiny task per
block that every band task of the block depends on. Nothing is materialised when a
Dataset is opened, so opening is flat in the asset's size.

Bands share requests without sharing pixel tasks. When dask culls a graph before a
compute, every band layer records the blocks it must deliver in one ``FetchPlan``
shared by that cull pass (``GraphContext.plan_for``); the blocks layer, culled after
them, then bakes each block's set of needed bands into its task. At run time each
band task receives that set from its block task, so the first band task of a block
fetches every *needed* band in one request and the others pick their arrays up
(prefetch.py) - in this process through the plan's prefetcher, on a dask.distributed
worker through a small per-process coalescer (the shared dependency also makes the
scheduler place a block's band tasks on one worker). Computing a subset of variables
never fetches the other bands; computing all of them costs one request per block.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Collection, Iterator, KeysView, Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import dask.array as da
import numpy as np
from dask._task_spec import DataNode, Task, TaskRef
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
    has_time: bool
    finishes: dict[int, Finish] = field(default_factory=dict)
    _plans: dict[int, tuple[object, FetchPlan]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        # Locks do not pickle and recent plans mean nothing in another process.
        return {
            "source": self.source,
            "layout": self.layout,
            "has_time": self.has_time,
            "finishes": self.finishes,
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
    only the time steps and window it covers. ``bands`` (every band the compute
    needs from this block) arrives from the block's shared task at run time.
    """

    plan: FetchPlan
    block: BlockIndex
    band: int
    has_time: bool
    shape: tuple[int, ...]
    dtype: str
    finish: Finish | None = None
    bands: tuple[int, ...] = ()

    def __getitem__(self, index: Any) -> np.ndarray:
        selection = select(index if isinstance(index, tuple) else (index,), self.shape, self.has_time)
        if selection.empty:
            shape = tuple(n for axis, n in enumerate(selection.shape) if axis not in selection.squeeze)
            return np.empty(shape, dtype=self.dtype)
        data = self.plan.take(self.block, self.band, (selection.times, selection.window), self.bands)
        if self.finish is not None:
            data = self.finish(data)
        return selection.cut(data)


def _with_bands(reader: BlockReader, bands: tuple[int, ...]) -> BlockReader:
    return dataclasses.replace(reader, bands=bands)


def _bands_of_block(bands: tuple[int, ...]) -> tuple[int, ...]:
    return bands


class _BlockGridLayer(Layer):
    """A lazy layer with one task per block (``(name, *block index)`` keys), made on demand.

    ``cull`` builds the tasks one compute needs against that compute's plan.
    """

    def __init__(self, name: str, context: GraphContext, plan: FetchPlan | None = None) -> None:
        super().__init__()
        self.name = name
        self.context = context
        self.plan = plan
        self._keys: set[Any] | None = None

    # -- what subclasses define ------------------------------------------------------------
    index_has_time = True

    def task(self, key: tuple[Any, ...], block: BlockIndex, plan: FetchPlan | None) -> Task:
        raise NotImplementedError

    def dependencies_of(self, key: tuple[Any, ...], block: BlockIndex) -> set[Any]:
        return set()

    def on_cull(self, block: BlockIndex, plan: FetchPlan) -> None:
        """Record what the compute needs (called for each needed key while culling)."""

    # -- the Layer protocol ----------------------------------------------------------------
    @property
    def has_legacy_tasks(self) -> bool:
        return False  # our tasks are Task objects; never materialise to find out

    def block_of(self, key: Any) -> BlockIndex | None:
        if not (isinstance(key, tuple) and key and key[0] == self.name):
            return None
        layout = self.context.layout
        if self.index_has_time:
            if len(key) != 4:
                return None
            block = (key[1], key[2], key[3])
        else:
            if len(key) != 3:
                return None
            block = (0, key[1], key[2])
        limits = (len(layout.time_chunks), len(layout.row_chunks), len(layout.col_chunks))
        if not all(isinstance(i, int) and 0 <= i < n for i, n in zip(block, limits)):
            return None
        return block

    def __getitem__(self, key: Any) -> Task:
        block = self.block_of(key)
        if block is None:
            raise KeyError(key)
        return self.task(key, block, self.plan)

    def __contains__(self, key: object) -> bool:
        return self.block_of(key) is not None

    def __iter__(self) -> Iterator[Any]:
        layout = self.context.layout
        ranges = [range(len(layout.row_chunks)), range(len(layout.col_chunks))]
        if self.index_has_time:
            ranges.insert(0, range(len(layout.time_chunks)))
        for index in product(*ranges):
            yield (self.name, *index)

    def __len__(self) -> int:
        layout = self.context.layout
        count = len(layout.row_chunks) * len(layout.col_chunks)
        return count * (len(layout.time_chunks) if self.index_has_time else 1)

    def is_materialized(self) -> bool:
        return False

    def get_output_keys(self) -> set[Any]:
        if self._keys is None:
            self._keys = set(self)
        return self._keys

    def cull(self, keys: set[Any], all_hlg_keys: Collection[Any]) -> tuple[Layer, Mapping[Any, set[Any]]]:
        plan = self.context.plan_for(keys)
        needed = {}
        for key in keys:
            block = self.block_of(key)
            if block is not None:
                needed[key] = block
                self.on_cull(block, plan)
        tasks = {key: self.task(key, block, plan) for key, block in needed.items()}
        return _CulledLayer(tasks), {key: self.dependencies_of(key, block) for key, block in needed.items()}


class BandLayer(_BlockGridLayer):
    """The blocks of one band: ``getter(reader, index)`` tasks depending on their block's task."""

    def __init__(self, name: str, band: int, blocks_name: str, context: GraphContext, plan: FetchPlan | None = None):
        super().__init__(name, context, plan)
        self.band = band
        self.blocks_name = blocks_name
        self.index_has_time = context.has_time

    def block_key(self, block: BlockIndex) -> tuple[Any, ...]:
        return (self.blocks_name, *block)

    def on_cull(self, block: BlockIndex, plan: FetchPlan) -> None:
        plan.add(block, self.band)

    def dependencies_of(self, key: tuple[Any, ...], block: BlockIndex) -> set[Any]:
        return {self.block_key(block)}

    def task(self, key: tuple[Any, ...], block: BlockIndex, plan: FetchPlan | None) -> Task:
        layout = self.context.layout
        shape: tuple[int, ...] = (layout.row_chunks[block[1]], layout.col_chunks[block[2]])
        if self.context.has_time:
            shape = (layout.time_chunks[block[0]], *shape)
        finish = self.context.finishes.get(self.band)
        dtype = finish.float_dtype if finish else self.context.source.dtypes[self.band]
        reader = BlockReader(
            plan or FetchPlan(self.context.source, layout, {}),
            block,
            self.band,
            self.context.has_time,
            shape,
            dtype,
            finish,
        )
        # The shared block task makes dask run a block's band tasks together (so a read
        # serving several bands is released quickly) and hands each the block's band set.
        # `getter` stays the outer function so dask can fuse later slicing into the index.
        with_bands = Task(None, _with_bands, DataNode(None, reader), TaskRef(self.block_key(block)))
        return Task(key, getter, with_bands, tuple(slice(0, n) for n in shape))


class BlocksLayer(_BlockGridLayer):
    """One tiny task per block, returning the bands the compute needs from it."""

    def task(self, key: tuple[Any, ...], block: BlockIndex, plan: FetchPlan | None) -> Task:
        bands = plan.blocks.get(block) if plan is not None else None
        every = range(len(self.context.source.band_ids))
        return Task(key, _bands_of_block, DataNode(None, tuple(sorted(bands if bands else every))))


class _CulledLayer(Layer):
    """A materialised, culled layer (only the tasks one compute needs)."""

    def __init__(self, tasks: dict[Any, Task]) -> None:
        super().__init__()
        self.tasks = tasks

    @property
    def has_legacy_tasks(self) -> bool:
        return False

    def __getitem__(self, key: Any) -> Task:
        return self.tasks[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def is_materialized(self) -> bool:
        return True

    def get_output_keys(self) -> KeysView[Any]:
        return self.tasks.keys()

    def cull(self, keys: set[Any], all_hlg_keys: Collection[Any]) -> tuple[Layer, Mapping[Any, set[Any]]]:
        needed = {key: task for key, task in self.tasks.items() if key in keys}
        return _CulledLayer(needed), {key: set(task.dependencies) for key, task in needed.items()}


def band_arrays(
    source: PixelSource, layout: BlockLayout, token: str, has_time: bool, finishes: dict[int, Finish] | None = None
) -> dict[str, da.Array]:
    """One dask array per band of ``source``, sharing requests as described in the module doc."""
    names = {band_id: f"{band_id}-{token}" for band_id in source.band_ids}
    finishes = finishes or {}
    context = GraphContext(source, layout, has_time, finishes)
    blocks_name = f"eexarray-blocks-{token}"
    blocks = BlocksLayer(blocks_name, context)
    chunks: tuple[tuple[int, ...], ...] = (layout.row_chunks, layout.col_chunks)
    if has_time:
        chunks = (layout.time_chunks, *chunks)
    arrays = {}
    for index, band_id in enumerate(source.band_ids):
        name = names[band_id]
        graph = HighLevelGraph(
            {name: BandLayer(name, index, blocks_name, context), blocks_name: blocks},
            {name: {blocks_name}, blocks_name: set()},
        )
        dtype = np.dtype(finishes[index].float_dtype if index in finishes else source.dtypes[index])
        arrays[band_id] = da.Array(graph, name, chunks, meta=np.empty((0,) * len(chunks), dtype=dtype))
    return arrays
