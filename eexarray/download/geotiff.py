"""GEO_TIFF, ZIPPED_GEO_TIFF and ZIPPED_GEO_TIFF_PER_BAND writers (rasterio / GDAL).

Files are tiled (tiles divide the blocks, see plan.py), deflate-compressed,
band-interleaved (each band's tiles are independent, so blocks can be written
band by band and time step by time step) and BigTIFF when the uncompressed size
might exceed 4 GB (GDAL's ``BIGTIFF=IF_SAFER``). GDAL's block cache is capped so
memory stays bounded whatever the file size.

A multi-band file needs one dtype: bands are promoted with ``common_dtype``. Per
band files keep each band's native dtype. Zipped formats write their GeoTIFFs
next to the temporary zip, then store them in it (``ZIP_STORED``: they are
already compressed) and delete them.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.windows import Window as RasterioWindow

from eexarray.download.names import output_band_names, zip_member_names
from eexarray.download.plan import Block, BlockPlan
from eexarray.download.target import DownloadTarget
from eexarray.download.writer import BlockWriter, common_dtype, nodata_of

GDAL_CACHE_MB = 64


def _crs(target: DownloadTarget) -> CRS:
    try:
        return CRS.from_user_input(target.grid.crs)
    except Exception:  # noqa: BLE001 - a CRS rasterio cannot parse from its name: use the WKT
        return CRS.from_wkt(target.grid.pyproj_crs.to_wkt())


def _window(block: Block) -> RasterioWindow:
    window = block.window
    return RasterioWindow(window.col_start, window.row_start, window.width, window.height)


def _band_tags(target: DownloadTarget) -> list[dict[str, str]]:
    """Per output band: which image, band and time it holds (collections only)."""
    if not target.has_time:
        return [{} for _ in target.band_ids]
    times = target.dataset["time"].values
    return [
        {"image_id": image, "band": band, "time": str(np.datetime_as_string(times[t], unit="s"))}
        for t, image in enumerate(target.image_ids)
        for band in target.band_ids
    ]


def create_geotiff(
    path: Path, target: DownloadTarget, plan: BlockPlan, count: int, dtype: np.dtype, nodata: Any
) -> Any:
    tile_rows, tile_cols = plan.tiff_tile_shape
    profile = {
        "driver": "GTiff",
        "width": plan.width,
        "height": plan.height,
        "count": count,
        "dtype": np.dtype(dtype).name,
        "crs": _crs(target),
        "transform": target.grid.transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": tile_cols,
        "blockysize": tile_rows,
        "compress": "deflate",
        "interleave": "band",
        "bigtiff": "IF_SAFER",
    }
    return rasterio.open(path, "w", **profile)


def _shared_nodata(values: list[Any], dtype: np.dtype) -> Any:
    """The file's nodata: the bands' common value, if they agree and ``dtype`` holds it (one per file)."""
    distinct = {float(v) for v in values}
    if len(distinct) != 1:
        return None
    value = distinct.pop()
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return value
    info = np.iinfo(dtype)
    return int(value) if value.is_integer() and info.min <= value <= info.max else None


class GeoTiffWriter(BlockWriter):
    """One multi-band GeoTIFF; a collection's bands are ``<index>_<band>``, image by image."""

    def __init__(self, path: Path, target: DownloadTarget, plan: BlockPlan) -> None:
        super().__init__(path, target, plan)
        self.dtype = common_dtype(list(target.dtypes))
        self.env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)
        self.env.__enter__()
        names = output_band_names(target.band_ids, target.image_ids if target.has_time else None)
        nodata = _shared_nodata(nodata_of(target), self.dtype)
        try:
            self.dataset = create_geotiff(path, target, plan, len(names), self.dtype, nodata)
            for index, (name, tags) in enumerate(zip(names, _band_tags(target)), start=1):
                self.dataset.set_band_description(index, name)
                if tags:
                    self.dataset.update_tags(index, **tags)
            self.dataset.update_tags(**_file_tags(target))
        except BaseException:
            self.env.__exit__(None, None, None)
            raise

    def write(self, block: Block, arrays: list[np.ndarray]) -> None:
        bands = len(self.target.band_ids)
        for position, time in enumerate(block.times):
            first = time * bands + 1
            stacked = np.stack([np.asarray(array[position], dtype=self.dtype) for array in arrays])
            self.dataset.write(stacked, indexes=list(range(first, first + bands)), window=_window(block))

    def finish(self) -> None:
        if self.env is None:
            return
        try:
            self.dataset.close()
        finally:
            self.env.__exit__(None, None, None)
            self.env = None

    def abort(self) -> None:
        self.finish()


def _file_tags(target: DownloadTarget) -> dict[str, str]:
    return {"asset_id": str(target.dataset.attrs.get("asset_id", "")), "software": "eexarray download"}


class ZippedGeoTiffWriter(BlockWriter):
    """ZIPPED_GEO_TIFF (``<name>.tif``) or ZIPPED_GEO_TIFF_PER_BAND (``<name>.<band>.tif``) in a zip."""

    def __init__(self, path: Path, target: DownloadTarget, plan: BlockPlan, *, base: str, per_band: bool) -> None:
        super().__init__(path, target, plan)
        self.per_band = per_band
        self.scratch = path.with_name(path.name + ".files")
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir()
        names = output_band_names(target.band_ids, target.image_ids if target.has_time else None)
        self.members = zip_member_names(base, names, per_band)
        self.nodata = nodata_of(target)
        self.tags = _band_tags(target)
        self.env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)
        self.env.__enter__()
        self.multi: GeoTiffWriter | None = None
        self.open_files: dict[int, list[Any]] = {}  # time step -> its per-band files
        if not per_band:
            self.multi = GeoTiffWriter(self.scratch / self.members[0], target, plan)

    def _create_files(self, time: int) -> list[Any]:
        bands = len(self.target.band_ids)
        files = []
        for b, dtype in enumerate(self.target.dtypes):
            member = time * bands + b
            dataset = create_geotiff(
                self.scratch / self.members[member],
                self.target,
                self.plan,
                1,
                dtype,
                _shared_nodata([self.nodata[b]], dtype),
            )
            dataset.set_band_description(1, self.target.band_ids[b])
            if self.tags[member]:
                dataset.update_tags(1, **self.tags[member])
            dataset.update_tags(**_file_tags(self.target))
            files.append(dataset)
        return files

    def _close_files(self, keep: range = range(0)) -> None:
        for time in [time for time in self.open_files if time not in keep]:
            for dataset in self.open_files.pop(time):
                dataset.close()

    def write(self, block: Block, arrays: list[np.ndarray]) -> None:
        if self.multi is not None:
            self.multi.write(block, arrays)
            return
        # Blocks arrive time block by time block: files of earlier time steps are complete.
        self._close_files(keep=block.times)
        whole = block.window.size == self.plan.height * self.plan.width
        for position, time in enumerate(block.times):
            if time not in self.open_files:
                self.open_files[time] = self._create_files(time)
            for dataset, array in zip(self.open_files[time], arrays):
                dataset.write(array[position][np.newaxis], indexes=[1], window=_window(block))
            if whole:  # a block of many time steps covers each image at once: close its files now
                self._close_files(keep=range(time + 1, block.times.stop))

    def _close(self) -> None:
        if self.env is None:
            return
        try:
            if self.multi is not None:
                self.multi.finish()
            self._close_files()
        finally:
            self.env.__exit__(None, None, None)
            self.env = None

    def finish(self) -> None:
        self._close()
        with zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for member in self.members:
                archive.write(self.scratch / member, arcname=member)
                (self.scratch / member).unlink()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def abort(self) -> None:
        try:
            self._close()
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)
