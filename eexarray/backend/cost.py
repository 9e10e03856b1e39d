"""The reads a compute of an eexarray Dataset runs, found from the Dataset itself (for ``plan()``).

Chunked variables: the ``ReadPlan`` their dask graph holds (``OpenedAsset.plan_reads``
with the open's bands, as ``dask_array`` builds it), narrowed to the variables' bands
where narrowing.py narrows the compute, and only the reads whose blocks the selection
needs (``reads_of``). Lazily indexed variables (opened with ``chunks=None``): one read
per variable of its band over its selection, as ``EexarrayBackendArray`` loads it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import xarray as xr
from xarray.core import indexing

from eexarray.backend.arrays import EexarrayBackendArray, reads_of
from eexarray.backend.indexing import select
from eexarray.backend.narrowing import narrows
from eexarray.engine.cost import Read

# (the open, its rectangle, its chunks): variables sharing one read graph
GraphKey = tuple[int, tuple[tuple[int, int], ...], tuple[tuple[int, ...], ...]]


def dataset_reads(dataset: xr.Dataset) -> list[Read]:
    """Every read a compute of ``dataset``'s data variables runs; ValueError for what eexarray does not read."""
    variables = dict(dataset.data_vars.items())
    if not variables:
        raise ValueError("the Dataset has no data variables: there is nothing to read")
    graphs: dict[GraphKey, dict[str, Any]] = {}
    reads: list[Read] = []
    for name, variable in variables.items():
        plain = variable.variable
        found = reads_of(plain)
        if found is not None:
            origin, blocks = found
            assert origin.chunks is not None  # reads_of returns chunked origins only
            key = (id(origin.opened), origin.ranges, origin.chunks)
            entry = graphs.setdefault(key, {"origin": origin, "bands": set(), "blocks": [], "arrays": []})
            entry["bands"].add(origin.band)
            entry["blocks"].append(blocks)
            entry["arrays"].append(plain.data)
            continue
        lazy = _lazy_read(plain)
        if lazy is None:
            raise ValueError(
                f"variable {name!r} does not hold pixels eexarray reads (it is derived, or was indexed in a way "
                "eexarray does not push into requests); plan the bands it is computed from instead, "
                "e.g. ds[['nir', 'red']].eexarray.plan()"
            )
        if lazy.times and lazy.window.size:
            reads.append(lazy)
    for entry in graphs.values():
        origin = entry["origin"]
        opened = origin.opened
        plan = opened.plan_reads(origin.ranges, origin.chunks, opened.bands)  # the plan dask_array built
        needed = tuple(sorted(entry["bands"]))
        if needed != plan.bands and all(narrows(array, plan) for array in entry["arrays"]):
            plan = dataclasses.replace(plan, bands=needed)  # what narrowing.py's _ReadLayer runs
        keys: set[tuple[int, int, int]] = set()
        for blocks in entry["blocks"]:
            keys.update(plan.read_keys(blocks))
        for read_key in sorted(keys):
            times, window = plan.read_of(*read_key)
            reads.append(Read(plan.source, times, window, plan.bands))
    return reads


def _lazy_read(variable: xr.Variable) -> Read | None:
    """The one read that loading a lazily indexed eexarray variable makes, else None."""
    data = variable._data
    while isinstance(data, (indexing.MemoryCachedArray, indexing.CopyOnWriteArray)):
        data = data.array
    if not isinstance(data, indexing.LazilyIndexedArray) or not isinstance(data.array, EexarrayBackendArray):
        return None
    array = data.array
    try:
        selection = select(data.key.tuple, array.shape, array.opened.has_time)
    except IndexError:
        return None
    return Read(array.opened.source, selection.times, selection.window, (array.band,))
