"""The layout self-describing formats (Zarr, netCDF) share: variables, coordinates, attributes.

It is the opened Dataset's own: the same coordinates (``x``, ``y``, ``time``,
``image_id``, ``spatial_ref``), variable attributes and dataset attributes, so the
file read back with xarray is the Dataset ``open_dataset`` gives. Each band's
no-data value becomes its ``_FillValue`` (as CF and rioxarray expect), so readers that
decode masks (xarray's default) see it as missing; ``mask_and_scale=False`` reads
the native values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from eexarray.download.plan import BlockPlan
from eexarray.download.target import DownloadTarget


@dataclass(frozen=True)
class VariableLayout:
    name: str
    dims: tuple[str, ...]
    dtype: np.dtype
    attrs: dict[str, Any]
    fill_value: Any
    chunks: tuple[int, ...]


def variable_layouts(target: DownloadTarget, plan: BlockPlan) -> list[VariableLayout]:
    layouts = []
    for band, dtype in zip(target.band_ids, target.dtypes):
        variable = target.dataset[band]
        attrs = dict(variable.attrs)
        fill = attrs.pop("_FillValue", attrs.get("nodata", 0))
        fill = np.array(fill).astype(dtype).item()
        attrs["grid_mapping"] = variable.encoding.get("grid_mapping", "spatial_ref")
        chunks: tuple[int, ...] = (min(plan.tile_rows, plan.height), min(plan.tile_cols, plan.width))
        if target.has_time:
            chunks = (1, *chunks)
        layouts.append(VariableLayout(band, tuple(str(dim) for dim in variable.dims), dtype, attrs, fill, chunks))
    return layouts


def template_dataset(target: DownloadTarget, plan: BlockPlan) -> xr.Dataset:
    """The opened Dataset with lazy, never-computed placeholders of the output chunks as variables."""
    variables = {}
    for layout in variable_layouts(target, plan):
        shape = target.dataset[layout.name].shape
        data = da.zeros(shape, chunks=layout.chunks, dtype=layout.dtype)
        attrs = {k: v for k, v in layout.attrs.items() if k != "grid_mapping"}
        variable = xr.Variable(layout.dims, data, attrs)
        variable.encoding = {"_FillValue": layout.fill_value, "grid_mapping": layout.attrs["grid_mapping"]}
        variables[layout.name] = variable
    coords = {name: coord.variable for name, coord in target.dataset.coords.items()}
    return xr.Dataset(variables, coords=coords, attrs=dict(target.dataset.attrs))
