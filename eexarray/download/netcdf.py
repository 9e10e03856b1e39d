"""NETCDF writer (netCDF-4 / HDF5 through ``netCDF4``), streamed block by block.

Coordinates and attributes are encoded with xarray's own CF encoder (times become
``<unit> since <date>`` numbers), so ``xr.open_dataset`` reads the file back as the
Dataset ``open_dataset`` gave. Data variables are chunked one block per chunk and
deflate-compressed; each block is written as whole chunks, so HDF5 compresses
and writes it at once without caching it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Final

import numpy as np
import xarray as xr

from eexarray._optional import require
from eexarray.download.plan import Block, BlockPlan
from eexarray.download.target import DownloadTarget
from eexarray.download.template import variable_layouts
from eexarray.download.writer import BlockWriter, write_failed

COMPRESSION_LEVEL: Final = 4
PURPOSE: Final = "download(format='NETCDF') / eexarray download --format NETCDF"


def _attr(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    return value


def _set_attrs(item: Any, attrs: dict[str, Any]) -> None:
    item.setncatts({name: _attr(value) for name, value in attrs.items() if value is not None})


class NetcdfWriter(BlockWriter):
    def __init__(self, path: Path, target: DownloadTarget, plan: BlockPlan) -> None:
        netCDF4: Any = require("netCDF4", "netcdf", PURPOSE)
        super().__init__(path, target, plan)
        # Blocks are written as whole chunks, so HDF5 needs no chunk cache; with one, every
        # chunk written stays in memory up to the cache size (64 MiB per variable by
        # default). Variables take the process-wide setting when created, so it is
        # lowered for the creation only.
        previous = netCDF4.get_chunk_cache()
        netCDF4.set_chunk_cache(0, 0, 1.0)
        try:
            try:
                self.file = netCDF4.Dataset(path, "w", format="NETCDF4")
            except (OSError, RuntimeError) as error:
                raise write_failed(path, error) from error
            try:
                self._define()
            except BaseException as error:
                with contextlib.suppress(RuntimeError):
                    self.file.close()
                if isinstance(error, RuntimeError):  # HDF5 failures (a full disk) come as RuntimeError
                    raise write_failed(path, error) from error
                raise
        finally:
            netCDF4.set_chunk_cache(*previous)

    def _define(self) -> None:
        dataset = self.target.dataset
        for dim, size in dataset.sizes.items():
            self.file.createDimension(str(dim), size)
        # Like xarray: non-dimension coordinates in ``coordinates``, except grid mappings.
        mappings = {dataset[band].encoding.get("grid_mapping") for band in self.target.band_ids}
        extra_coords = [str(name) for name in dataset.coords if name not in dataset.dims and name not in mappings]
        for name, coord in dataset.coords.items():
            encoded = xr.conventions.encode_cf_variable(coord.variable, name=name)
            values = encoded.values
            attrs = dict(encoded.attrs)
            fill = attrs.pop("_FillValue", None)
            dtype: Any = str if values.dtype.kind in "OUS" else values.dtype
            dims = tuple(str(dim) for dim in encoded.dims)
            variable = self.file.createVariable(str(name), dtype, dims, fill_value=fill)
            _set_attrs(variable, attrs)  # attributes first: HDF5 fixes some once data exist
            variable[...] = values.astype(object) if dtype is str else values
        self.variables = []
        for layout in variable_layouts(self.target, self.plan):
            data_type: Any = layout.dtype
            variable = self.file.createVariable(
                layout.name,
                data_type,
                layout.dims,
                zlib=True,
                complevel=COMPRESSION_LEVEL,
                chunksizes=layout.chunks,
                fill_value=layout.fill_value,
            )
            attrs = dict(layout.attrs)
            if extra_coords:
                attrs["coordinates"] = " ".join(extra_coords)
            _set_attrs(variable, attrs)
            self.variables.append(variable)
        _set_attrs(self.file, dict(dataset.attrs))

    def write(self, block: Block, arrays: list[np.ndarray]) -> None:
        rows, cols = block.window.slices()
        times = slice(block.times.start, block.times.stop)
        try:
            for variable, array in zip(self.variables, arrays):
                if self.target.has_time:
                    variable[times, rows, cols] = array
                else:
                    variable[rows, cols] = array[0]
        except RuntimeError as error:  # netCDF4 reports HDF5 write failures (a full disk) as RuntimeError
            raise write_failed(self.path, error) from error

    def finish(self) -> None:
        try:
            if self.file.isopen():
                self.file.close()
        except RuntimeError as error:
            raise write_failed(self.path, error) from error

    def abort(self) -> None:
        if self.file.isopen():
            with contextlib.suppress(RuntimeError):  # the write failed already: that error is the one to report
                self.file.close()
