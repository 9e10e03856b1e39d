"""Classic-graph tricks, labelled as such: fetch only the bands a compute needs, and split
packed reads per time block without extra tasks.

The graph of graph.py is public dask API and correct everywhere: each read fetches
every band of the Dataset. This module narrows reads to the bands a compute actually
uses, which needs to see the whole compute - something only dask's graph culling sees.

With dask's classic ``HighLevelGraph`` (array query planning off), every band's take
also depends on a one-task *marker* array of that band (``band_marker``), whose layer
(``_MarkerLayer``) the HighLevelGraph lists as depending on the read layer. So
``HighLevelGraph.cull``, which hands one mutable key set to every layer of one pass,
dependents first, culls each marker the compute needs before the reads: the marker
records its band under that set's identity, and the read layer (``_ReadLayer``) then
builds its tasks with only those bands. Keys, groups and packing stay as planned. The
takes themselves stay plain ``Blockwise`` layers, so dask still fuses them with the
user's elementwise work (one task per block); only the tiny marker layers are wrapped.

A packed read's (k, 1, 1) holder is split per time block by ``split_per_time_block``: one
layer of k tasks that each take one element of the read's result. ``rechunk`` does the same
with public API (and is what dask's query planning gets), but its split and merge tasks
plus dask's linear fusion leave two tasks per block (a fused task and an ``Alias``) - on
dask.distributed, where every task costs about a millisecond, a third of a small-chunk job.

The wrapped read layer also keeps dask's blockwise fusion from copying a read into each
take that broadcasts it (graph.py's shortcut for a read holding every time block).

The request- and task-count tests (tests/client/test_scale_out.py and others) pin the
behaviour this relies on. Where it is not available (dask's array query planning, or a
dask whose HighLevelGraph changed), graph.py builds the public graph instead - still one
request per block, for all bands - and ``warn_unavailable`` says so once.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import dask.array as da
import numpy as np

from eexarray.engine.plan import ReadPlan
from eexarray.engine.run import read_block

_passes: dict[int, tuple[set[Any], dict[str, set[int]]]] = {}
_passes_lock = threading.Lock()
_warned = False


class NarrowingUnavailableWarning(UserWarning):
    """Computing some variables fetches every band of the Dataset (still one request per block)."""


def _needs(keys: set[Any]) -> dict[str, set[int]]:
    """The bands each plan must fetch in the cull pass whose (shared, mutated) key set is ``keys``."""
    with _passes_lock:
        entry = _passes.get(id(keys))
        if entry is None or entry[0] is not keys:
            if len(_passes) >= 8:  # only concurrent culls need more than one
                _passes.pop(next(iter(_passes)))
            # Holding `keys` keeps its id from being reused while the entry lives.
            entry = _passes[id(keys)] = (keys, {})
        return entry[1]


def _layer_base() -> type:
    from dask.highlevelgraph import Layer

    return Layer


class _Wrapped(_layer_base()):  # type: ignore[misc]
    """A layer that behaves exactly like ``inner`` except when culled."""

    def __init__(self, inner: Any) -> None:
        super().__init__(annotations=inner.annotations, collection_annotations=inner.collection_annotations)
        self.inner = inner

    @property
    def has_legacy_tasks(self) -> bool:
        return bool(self.inner.has_legacy_tasks)

    def __getitem__(self, key: Any) -> Any:
        return self.inner[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.inner)

    def __len__(self) -> int:
        return len(self.inner)

    def is_materialized(self) -> bool:
        return bool(self.inner.is_materialized())

    def get_output_keys(self) -> Any:
        return self.inner.get_output_keys()


class _MarkerLayer(_Wrapped):
    """The one-task layer of a band's marker: culled (so needed) means the compute needs the band."""

    def __init__(self, inner: Any, token: str, band: int) -> None:
        super().__init__(inner)
        self.token = token
        self.band = band

    def cull(self, keys: set[Any], all_hlg_keys: Collection[Any]) -> tuple[Any, Mapping[Any, set[Any]]]:
        culled, dependencies = self.inner.cull(keys, all_hlg_keys)
        if dependencies:
            _needs(keys).setdefault(self.token, set()).add(self.band)
        return culled, dependencies


class _ReadLayer(_Wrapped):
    def __init__(self, inner: Any, plan: ReadPlan) -> None:
        super().__init__(inner)
        self.plan = plan

    def cull(self, keys: set[Any], all_hlg_keys: Collection[Any]) -> tuple[Any, Mapping[Any, set[Any]]]:
        from dask._task_spec import DataNode, Task
        from dask.highlevelgraph import MaterializedLayer

        culled, dependencies = self.inner.cull(keys, all_hlg_keys)
        bands = _needs(keys).get(self.plan.token)
        if not dependencies or not bands or set(self.plan.bands) <= bands:
            return culled, dependencies
        plan = dataclasses.replace(self.plan, bands=tuple(sorted(bands)))
        tasks = {
            key: Task(key, read_block, DataNode(None, plan), block_id=DataNode(None, tuple(key[1:])))
            for key in dependencies
        }
        return MaterializedLayer(tasks), {key: set() for key in tasks}


def _marker_name(plan: ReadPlan, band: int) -> str:
    return f"eexarray-band-{band}-{plan.token}"


def band_marker(plan: ReadPlan, band: int) -> da.Array:
    """A 0-d array (one tiny task) every block of ``band``'s take depends on."""
    from dask.highlevelgraph import HighLevelGraph

    name = _marker_name(plan, band)
    graph = HighLevelGraph.from_collections(name, {(name,): band}, dependencies=())
    return da.Array(graph, name, chunks=(), dtype=int, meta=np.empty((), dtype=int))


def narrow(plan: ReadPlan, reads: da.Array, takes: dict[int, da.Array]) -> dict[int, da.Array]:
    """``takes`` (band position -> the band's array over ``reads`` and its marker) with reads
    narrowed per compute. Raises if dask's HighLevelGraph is not what this relies on."""
    from dask.highlevelgraph import HighLevelGraph

    narrowed = {}
    for band, array in takes.items():
        graph = array.dask
        layers = dict(graph.layers)
        dependencies = {name: set(deps) for name, deps in graph.dependencies.items()}
        layers[reads.name] = _ReadLayer(layers[reads.name], plan)
        for marked in plan.bands:
            name = _marker_name(plan, marked)
            if name in layers:
                layers[name] = _MarkerLayer(layers[name], plan.token, marked)
                # Layer order only (no task depends on a read through it): culled before the reads.
                dependencies[name] = dependencies[name] | {reads.name}
        wrapped = HighLevelGraph(layers, dependencies)
        narrowed[band] = da.Array(wrapped, array.name, array.chunks, meta=array._meta)
    return narrowed


def _element(holder: np.ndarray, index: int) -> np.ndarray:
    return holder[index : index + 1]


def split_per_time_block(plan: ReadPlan, reads: da.Array, ones: tuple[tuple[int, ...], ...]) -> da.Array:
    """``reads`` (time chunks: ``plan.group_blocks``) with one (1, 1, 1) holder per time block:
    one task per time block, each depending on its group's read only."""
    from dask._task_spec import Task, TaskRef
    from dask.highlevelgraph import HighLevelGraph

    name = f"eexarray-split-{plan.token}"
    rows, cols = (range(len(chunks)) for chunks in ones)
    tasks: dict[Any, Any] = {}
    for group, (first, stop) in enumerate(plan.groups):
        for index, block in enumerate(range(first, stop)):
            for row in rows:
                for col in cols:
                    key = (name, block, row, col)
                    tasks[key] = Task(key, _element, TaskRef((reads.name, group, row, col)), index)
    graph = HighLevelGraph.from_collections(name, tasks, dependencies=[reads])  # type: ignore[list-item]
    chunks = ((1,) * len(plan.layout.time_chunks), *ones)
    return da.Array(graph, name, chunks, meta=reads._meta)


def warn_unavailable(reason: object) -> None:
    """Once per process: the classic-graph tricks are off, the graph is the public one."""
    global _warned
    if _warned:
        return
    _warned = True
    warnings.warn(
        f"eexarray cannot narrow reads to the bands a compute needs here ({reason}); every read fetches all "
        "the Dataset's bands (still one request per block, packed reads split with dask's rechunk). "
        "Open with bands=[...] to fetch fewer.",
        NarrowingUnavailableWarning,
        stacklevel=4,
    )


def narrows(array: Any, plan: ReadPlan) -> bool:
    """Does a compute of ``array`` (built over ``plan``'s reads) fetch only the bands it needs?

    True when its graph holds the narrowing read layer (classic graphs); under dask's array
    query planning, or where ``narrow`` fell back, every read fetches all the plan's bands.
    """
    if da.array_expr_enabled():
        return False
    layers = getattr(getattr(array, "dask", None), "layers", {})
    return isinstance(layers.get(plan.read_name), _ReadLayer)
