"""The dask arrays of a chunked Dataset, built with public dask API only (``map_blocks``, ``rechunk``).

Two steps, both ordinary dask arrays:

1. ``reads``: one task per planned read (engine/plan.py) - every band of the Dataset
   from one spatial block and a run of time blocks, packed when that saves requests.
   Each task returns a 1x1x1 object array holding ``{band position: pixels}``.
2. per band, ``map_blocks(take, reads)``: the band's pixels of each read, then
   ``rechunk`` along time to the chunks the user asked for (a split, no copies).

So the plan is in the graph: every scheduler runs the same requests, bands share
them, and nothing here depends on dask internals (the same code runs with dask's
array query planning on or off). narrowing.py then narrows each compute's reads to
the bands it uses, where dask's classic graph allows it. Selections made through xarray (``isel``/``sel``) are
pushed into the plan by ``EexarrayVariable`` (arrays.py), which builds these arrays
again on the selected window.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np

from eexarray.backend.narrowing import narrow
from eexarray.engine.plan import ReadPlan
from eexarray.engine.run import read_block, register_plan


@dataclass(frozen=True)
class Finish:
    """``mask_and_scale``: masked pixels -> NaN in ``float_dtype`` (applied inside the task)."""

    float_dtype: str

    def __call__(self, array: np.ndarray) -> np.ndarray:
        from eexarray.backend.arrays import decode_masked

        return decode_masked(array, self.float_dtype)


def _take(holder: np.ndarray, band: int, finish: Finish | None, has_time: bool) -> np.ndarray:
    data = holder.item()[band]
    if not has_time:
        data = data[0]  # an image: (rows, cols)
    return finish(data) if finish is not None else data


def band_arrays(
    plan: ReadPlan, band_ids: dict[int, str], has_time: bool, finishes: dict[int, Finish]
) -> dict[str, da.Array]:
    """One dask array per band position in ``band_ids`` (all read by ``plan``'s shared read tasks)."""
    register_plan(plan)
    layout = plan.layout
    spatial = (layout.row_chunks, layout.col_chunks)
    grid = (plan.group_chunks, *spatial) if has_time else spatial
    reads = da.map_blocks(
        read_block,
        plan=plan,
        chunks=tuple((1,) * len(chunks) for chunks in grid),
        dtype=object,
        meta=np.empty((0,) * len(grid), dtype=object),
        name=plan.read_name,
    )
    takes = {}
    for band, band_id in band_ids.items():
        finish = finishes.get(band)
        dtype = np.dtype(finish.float_dtype if finish else plan.source.dtypes[band])
        takes[band] = da.map_blocks(
            _take,
            reads,
            band=band,
            finish=finish,
            has_time=has_time,
            chunks=grid,
            dtype=dtype,
            meta=np.empty((0,) * len(grid), dtype=dtype),
            name=f"{band_id}-{plan.token}",
        )
    arrays = {}
    for band, array in narrow(plan, reads, takes).items():
        if has_time and plan.group_chunks != layout.time_chunks:
            # Groups of time blocks -> the asked chunks: a split, done by plain tasks (no shuffle).
            array = array.rechunk({0: layout.time_chunks}, method="tasks")
        arrays[band_ids[band]] = array
    return arrays
