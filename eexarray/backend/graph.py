"""The dask arrays of a chunked Dataset: one read task per planned read, one take per band and block.

1. ``reads``: one task per planned read (engine/plan.py) - every band of the Dataset
   from one spatial block and a run of time blocks, packed when that saves requests.
   Each task returns an object array holding ``{band position: pixels}``.
2. per band, ``map_blocks(take, ...)``: the band's pixels of each block. Plain blockwise
   tasks, so dask fuses them with the user's elementwise work (one task per block).
   Reads that pack a run of time blocks are split per time block first (object
   references, not pixels); where one read per spatial block holds every time block
   (classic graphs only), each take picks its block straight from it.

So the plan is in the graph: every scheduler runs the same requests and bands share them.
``_build(classic=False)`` uses public dask API only (``map_blocks``, ``rechunk``) and is
what dask's array query planning gets; ``classic=True`` adds narrowing.py's labelled
tricks (fewer tasks, reads narrowed to the bands a compute uses), and falls back to the
public graph with one warning if dask's HighLevelGraph changed. Selections made through
xarray (``isel``/``sel``) are pushed into the plan by ``EexarrayVariable`` (arrays.py),
which builds these arrays again on the selected window.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np

from eexarray.backend.narrowing import band_marker, narrow, split_per_time_block, warn_unavailable
from eexarray.engine.plan import ReadPlan
from eexarray.engine.run import read_block, register_plan


@dataclass(frozen=True)
class Finish:
    """``mask_and_scale``: masked pixels -> NaN in ``float_dtype`` (applied inside the task)."""

    float_dtype: str

    def __call__(self, array: np.ndarray) -> np.ndarray:
        from eexarray.backend.arrays import decode_masked

        return decode_masked(array, self.float_dtype)


def _take(holder: np.ndarray, *marker: int, band: int, finish: Finish | None, has_time: bool) -> np.ndarray:
    # ``marker``: the band's narrowing marker (narrowing.py), on classic graphs; unused here.
    data = holder.item().band(band)
    if not has_time:
        data = data[0]  # an image: (rows, cols)
    return finish(data) if finish is not None else data


def _take_span(
    holder: np.ndarray,
    *marker: int,
    band: int,
    finish: Finish | None,
    spans: tuple[tuple[int, int], ...],
    block_id: tuple[int, ...] | None = None,
) -> np.ndarray:
    """``_take`` of time block ``block_id[0]`` from a read holding every time block."""
    assert block_id is not None  # map_blocks passes it
    start, stop = spans[block_id[0]]
    data = holder.item().band(band)[start:stop]
    return finish(data) if finish is not None else data


def band_arrays(
    plan: ReadPlan, band_ids: dict[int, str], has_time: bool, finishes: dict[int, Finish]
) -> dict[str, da.Array]:
    """One dask array per band position in ``band_ids`` (all read by ``plan``'s shared read tasks)."""
    register_plan(plan)
    if da.array_expr_enabled():
        warn_unavailable("dask's array query planning is on")
    else:
        try:
            built = _build(plan, band_ids, has_time, finishes, classic=True)
        except Exception as error:  # noqa: BLE001 - any change in dask's internals: the public graph
            warn_unavailable(error)
        else:
            return built
    return _build(plan, band_ids, has_time, finishes, classic=False)


def _build(
    plan: ReadPlan, band_ids: dict[int, str], has_time: bool, finishes: dict[int, Finish], classic: bool
) -> dict[str, da.Array]:
    """The arrays with public dask API only, or (``classic``) with narrowing.py's tricks."""
    layout = plan.layout
    spatial = (layout.row_chunks, layout.col_chunks)
    ones = tuple((1,) * len(chunks) for chunks in spatial)
    grid = (layout.time_chunks, *spatial) if has_time else spatial
    # Classic graphs, one read per spatial block holding every time block: each band's take
    # reads its time block straight from it (a broadcast over time; no split tasks). Only
    # where narrowing.py wraps the read layer: dask's blockwise fusion would otherwise copy
    # the read into every take that broadcasts it (one request per block per time step).
    series = classic and has_time and len(plan.groups) == 1 and len(layout.time_chunks) > 1
    packed = has_time and not series
    # One task per read; a group of k time blocks yields k holders (one per block, views).
    reads = da.map_blocks(
        read_block,
        plan=plan,
        chunks=(plan.group_blocks, *ones) if packed else ones,
        dtype=object,
        meta=np.empty((0,) * (len(spatial) + packed), dtype=object),
        name=plan.read_name,
    )
    holders = reads
    if packed and len(plan.groups) != len(layout.time_chunks):
        # Split the holders per time block: object references, not pixels, on the object array
        # every band shares, so dask fuses each band's take with the user's elementwise work.
        holders = split_per_time_block(plan, reads, ones) if classic else reads.rechunk({0: 1}, method="tasks")
    takes = {}
    for band, band_id in band_ids.items():
        finish = finishes.get(band)
        dtype = np.dtype(finish.float_dtype if finish else plan.source.dtypes[band])
        inputs = [holders, band_marker(plan, band)] if classic else [holders]
        options = {"spans": plan.block_spans(0), "new_axis": 0} if series else {"has_time": has_time}
        takes[band] = da.map_blocks(
            _take_span if series else _take,
            *inputs,
            band=band,
            finish=finish,
            chunks=grid,
            dtype=dtype,
            meta=np.empty((0,) * len(grid), dtype=dtype),
            name=f"{band_id}-{plan.token}",
            **options,
        )
    if classic:
        takes = narrow(plan, reads, takes)
    return {band_ids[band]: array for band, array in takes.items()}
