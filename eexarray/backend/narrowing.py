"""Fetch only the bands a compute needs: the one dask trick, labelled as such.

The graph of graph.py is public dask API and correct everywhere: each read fetches
every band of the Dataset. This module narrows reads to the bands a compute actually
uses, which needs to see the whole compute - something only dask's graph culling sees.

With dask's classic ``HighLevelGraph`` (array query planning off), ``HighLevelGraph.cull``
hands one mutable key set to every layer of one pass, dependents first. Each band's
layer (wrapped in ``_BandLayer``) records, under that set's identity, that the compute
needs its band; the read layer (``_ReadLayer``), culled after every band layer, then
builds its tasks with only those bands. Keys, groups and packing stay as planned.

``tests/client/test_narrowing.py`` pins the behaviour this relies on. Where it is not
available (dask's array query planning, or a dask whose HighLevelGraph changed), the
graph stays as built - still one request per block for all bands - and a warning says
so once.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import dask.array as da

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


class _BandLayer(_Wrapped):
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


def narrow(plan: ReadPlan, reads: da.Array, takes: dict[int, da.Array]) -> dict[int, da.Array]:
    """``takes`` (band position -> the band's array over ``reads``) with reads narrowed per compute."""
    try:
        if da.array_expr_enabled():
            raise RuntimeError("dask's array query planning is on")
        from dask.highlevelgraph import HighLevelGraph

        narrowed = {}
        for band, array in takes.items():
            graph = array.dask
            layers = dict(graph.layers)
            layers[reads.name] = _ReadLayer(layers[reads.name], plan)
            for name in graph.layers:
                if name.endswith(plan.token) and name != reads.name:
                    layers[name] = _BandLayer(layers[name], plan.token, band)
            wrapped = HighLevelGraph(layers, graph.dependencies)
            narrowed[band] = da.Array(wrapped, array.name, array.chunks, meta=array._meta)
        return narrowed
    except Exception as error:  # noqa: BLE001 - any change in dask's internals: keep the correct graph
        _warn_once(error)
        return takes


def _warn_once(error: Exception) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    warnings.warn(
        f"eexarray cannot narrow reads to the bands a compute needs here ({error}); every read fetches all "
        "the Dataset's bands (still one request per block). Open with bands=[...] to fetch fewer.",
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
