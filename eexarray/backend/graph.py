"""The dask arrays of a chunked Dataset, built with public dask API only (``map_blocks``, ``rechunk``).

Two steps, both ordinary dask arrays:

1. ``reads``: one task per planned read (engine/plan.py) - every band of the Dataset
   from one spatial block and a run of time blocks, packed when that saves requests.
   Each task returns a 1x1x1 object array holding ``{band position: pixels}``.
2. when reads pack several time blocks, ``rechunk`` of that object array to one
   element per time block (object references, no pixels); then per band,
   ``map_blocks(take, ...)``: the band's pixels of each block.

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
    ones = tuple((1,) * len(chunks) for chunks in spatial)
    # One task per read; a group of k time blocks yields k holders (one per block, views).
    reads = da.map_blocks(
        read_block,
        plan=plan,
        chunks=(plan.group_blocks, *ones) if has_time else ones,
        dtype=object,
        meta=np.empty((0,) * (len(spatial) + has_time), dtype=object),
        name=plan.read_name,
    )
    holders = reads
    if has_time and len(plan.groups) != len(layout.time_chunks):
        # Split the holders per time block: object references, not pixels. Done on the object
        # array shared by every band (not per band), so dask fuses each split with its blocks'
        # band tasks and the user's elementwise work: one task per block, as without packing.
        holders = reads.rechunk({0: 1}, method="tasks")
    grid = (layout.time_chunks, *spatial) if has_time else spatial
    takes = {}
    for band, band_id in band_ids.items():
        finish = finishes.get(band)
        dtype = np.dtype(finish.float_dtype if finish else plan.source.dtypes[band])
        takes[band] = da.map_blocks(
            _take,
            holders,
            band=band,
            finish=finish,
            has_time=has_time,
            chunks=grid,
            dtype=dtype,
            meta=np.empty((0,) * len(grid), dtype=dtype),
            name=f"{band_id}-{plan.token}",
        )
    return {band_ids[band]: array for band, array in narrow(plan, reads, takes).items()}
