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

Nothing GDAL fails to write is published. rasterio's ``close()`` does not raise when
GDAL fails to flush (a full disk at close leaves a file without its directory, and
exit code 0), so: (1) every GDAL error rasterio reports on this thread while a file is
written or closed (``GdalErrors``) is fatal, and (2) once closed, each file is opened
again and every block read back and compared (CRC-32) with what was written, together
with its size, band count and dtype (``verify_geotiff``). Reading back costs a
decompression of the file, far less than its download.
"""

from __future__ import annotations

import logging
import shutil
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.windows import Window as RasterioWindow

from eexarray.download.names import output_band_names, zip_member_names
from eexarray.download.plan import Block, BlockPlan
from eexarray.download.resume import checksum
from eexarray.download.target import DownloadTarget
from eexarray.download.writer import BlockWriter, OutputWriteError, common_dtype, nodata_of, write_failed

GDAL_CACHE_MB = 64
# rasterio logs each GDAL error (CE_Failure, CE_Fatal) here, as "GDAL signalled an error: ...".
RASTERIO_ERROR_LOGGER = "rasterio._env"
_GDAL_ERROR_PREFIX = "GDAL signalled an error"


class GdalErrors(logging.Handler):
    """The GDAL errors rasterio reports on the writing thread, while installed (``with GdalErrors() as errors``).

    Other threads (e.g. a server in the same process reading its files) are not counted.
    rasterio logs GDAL failures at INFO, so the logger is lowered to INFO while any
    instance is installed (counted across threads) and restored when the last one leaves.
    """

    _installed = 0
    _saved_level = logging.NOTSET
    _lock = threading.Lock()

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.thread = threading.get_ident()
        self.messages: list[str] = []
        self.logger = logging.getLogger(RASTERIO_ERROR_LOGGER)

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread and str(record.msg).startswith(_GDAL_ERROR_PREFIX):
            self.messages.append(record.getMessage())

    def __enter__(self) -> GdalErrors:
        with GdalErrors._lock:
            if GdalErrors._installed == 0:
                GdalErrors._saved_level = self.logger.level
                if self.logger.getEffectiveLevel() > logging.INFO:
                    self.logger.setLevel(logging.INFO)
            GdalErrors._installed += 1
            self.logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with GdalErrors._lock:
            self.logger.removeHandler(self)
            GdalErrors._installed -= 1
            if GdalErrors._installed == 0:
                self.logger.setLevel(GdalErrors._saved_level)

    def check(self, path: Path, doing: str) -> None:
        """Raise ``OutputWriteError`` if GDAL reported an error so far."""
        if self.messages:
            more = len(self.messages) - 3
            shown = "; ".join(self.messages[:3]) + (f" (and {more} more)" if more > 0 else "")
            raise OutputWriteError(
                f"GDAL failed while {doing} {str(path)!r} (is the disk full?): {shown}; no output was published"
            )


class Checksums:
    """CRC-32 of every (bands, window) piece written to one GeoTIFF, to compare with what reads back."""

    def __init__(self) -> None:
        self.pieces: list[tuple[tuple[int, ...], RasterioWindow, int]] = []

    def add(self, indexes: list[int], window: RasterioWindow, values: np.ndarray) -> None:
        self.pieces.append((tuple(indexes), window, checksum(values)))

    def __iter__(self) -> Iterator[tuple[tuple[int, ...], RasterioWindow, int]]:
        return iter(self.pieces)


def verify_geotiff(path: Path, plan: BlockPlan, count: int, dtype: np.dtype, checksums: Checksums) -> None:
    """Open the closed file again: its size, band count and dtype, and every written piece as written."""
    problem = None
    with GdalErrors() as errors:
        try:
            with rasterio.open(path, driver="GTiff") as written:
                layout = (written.width, written.height, written.count, written.dtypes[0])
                if layout != (plan.width, plan.height, count, np.dtype(dtype).name):
                    problem = f"it reads as {layout}, not {(plan.width, plan.height, count, np.dtype(dtype).name)}"
                else:
                    for indexes, window, expected in checksums:
                        if checksum(written.read(list(indexes), window=window)) != expected:
                            problem = f"bands {list(indexes)} at {window} do not read back as written"
                            break
        except rasterio.errors.RasterioError as error:
            problem = f"it does not read back: {error}"
        errors.check(path, "reading back")
    if problem is not None:
        raise OutputWriteError(
            f"the GeoTIFF written to {str(path)!r} is damaged ({problem}; is the disk full?); no output was published"
        )


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
        self.errors = GdalErrors().__enter__()
        self.checksums = Checksums()
        names = output_band_names(target.band_ids, target.image_ids if target.has_time else None)
        self.count = len(names)
        nodata = _shared_nodata(nodata_of(target), self.dtype)
        try:
            self.dataset = create_geotiff(path, target, plan, self.count, self.dtype, nodata)
            for index, (name, tags) in enumerate(zip(names, _band_tags(target)), start=1):
                self.dataset.set_band_description(index, name)
                if tags:
                    self.dataset.update_tags(index, **tags)
            self.dataset.update_tags(**_file_tags(target))
            self.errors.check(path, "creating")
        except BaseException:
            self._close()
            raise

    def write(self, block: Block, arrays: list[np.ndarray]) -> None:
        bands = len(self.target.band_ids)
        for position, time in enumerate(block.times):
            first = time * bands + 1
            stacked = np.stack([np.asarray(array[position], dtype=self.dtype) for array in arrays])
            indexes = list(range(first, first + bands))
            try:
                self.dataset.write(stacked, indexes=indexes, window=_window(block))
            except rasterio.errors.RasterioError as error:  # "Write failed. See previous exception": GDAL's says why
                self.errors.check(self.path, "writing")
                raise write_failed(self.path, error) from error
            self.checksums.add(indexes, _window(block), stacked)
        self.errors.check(self.path, "writing")

    def _close(self) -> None:
        if self.env is None:
            return
        try:
            dataset = getattr(self, "dataset", None)  # None: creating it failed
            if dataset is not None and not dataset.closed:
                dataset.close()
        finally:
            self.errors.__exit__(None, None, None)
            self.env.__exit__(None, None, None)
            self.env = None

    def finish(self) -> None:
        if self.env is None:
            return
        self._close()
        self.errors.check(self.path, "closing")  # close() does not raise when GDAL fails to flush
        verify_geotiff(self.path, self.plan, self.count, self.dtype, self.checksums)

    def abort(self) -> None:
        self._close()


def _file_tags(target: DownloadTarget) -> dict[str, str]:
    return {"asset_id": str(target.dataset.attrs.get("asset_id", "")), "software": "eexarray download"}


class ZippedGeoTiffWriter(BlockWriter):
    """ZIPPED_GEO_TIFF (``<name>.tif``) or ZIPPED_GEO_TIFF_PER_BAND (``<name>.<band>.tif``) in a zip.

    The GeoTIFFs are written in a scratch folder ``<partial>.files`` (holding ``SCRATCH_MARKER``, so that
    a leftover of a killed run is recognised as ours and removed, and nothing else ever is), verified,
    then stored in the zip.
    """

    def __init__(self, path: Path, target: DownloadTarget, plan: BlockPlan, *, base: str, per_band: bool) -> None:
        super().__init__(path, target, plan)
        self.per_band = per_band
        self.scratch = path.with_name(path.name + ".files")
        remove_scratch(self.scratch)
        self.scratch.mkdir()
        (self.scratch / SCRATCH_MARKER).write_bytes(b"")
        names = output_band_names(target.band_ids, target.image_ids if target.has_time else None)
        self.members = zip_member_names(base, names, per_band)
        self.nodata = nodata_of(target)
        self.tags = _band_tags(target)
        self.env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)
        self.env.__enter__()
        self.errors = GdalErrors().__enter__()
        self.multi: GeoTiffWriter | None = None
        self.open_files: dict[int, list[Any]] = {}  # time step -> its per-band files
        self.checksums: dict[int, Checksums] = {}  # member -> what was written to it
        try:
            if not per_band:
                self.multi = GeoTiffWriter(self.scratch / self.members[0], target, plan)
        except BaseException:
            self._close()
            raise

    def _create_files(self, time: int, files: list[Any]) -> None:
        """Create time step ``time``'s per-band files in ``files`` (so _close_files closes them whatever happens)."""
        bands = len(self.target.band_ids)
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
            files.append(dataset)
            dataset.set_band_description(1, self.target.band_ids[b])
            if self.tags[member]:
                dataset.update_tags(1, **self.tags[member])
            dataset.update_tags(**_file_tags(self.target))
            self.checksums[member] = Checksums()

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
        bands = len(self.target.band_ids)
        for position, time in enumerate(block.times):
            if time not in self.open_files:
                self._create_files(time, self.open_files.setdefault(time, []))
            for b, (dataset, array) in enumerate(zip(self.open_files[time], arrays)):
                values = array[position][np.newaxis]
                try:
                    dataset.write(values, indexes=[1], window=_window(block))
                except rasterio.errors.RasterioError as error:
                    self.errors.check(self.scratch, "writing GeoTIFFs in")
                    raise write_failed(self.scratch, error) from error
                self.checksums[time * bands + b].add([1], _window(block), values.astype(dataset.dtypes[0]))
            if whole:  # a block of many time steps covers each image at once: close its files now
                self._close_files(keep=range(time + 1, block.times.stop))
        self.errors.check(self.scratch, "writing GeoTIFFs in")

    def _close(self) -> None:
        if self.env is None:
            return
        try:
            if self.multi is not None:
                self.multi.finish()
        finally:
            try:
                self._close_files()
            finally:
                self.errors.__exit__(None, None, None)
                self.env.__exit__(None, None, None)
                self.env = None

    def finish(self) -> None:
        self._close()  # the multi-band file verifies itself in its finish()
        self.errors.check(self.scratch, "closing GeoTIFFs in")
        if self.multi is None:
            for member, checksums in self.checksums.items():
                dtype = self.target.dtypes[member % len(self.target.band_ids)]
                verify_geotiff(self.scratch / self.members[member], self.plan, 1, dtype, checksums)
        with zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name in self.members:
                archive.write(self.scratch / name, arcname=name)
        self._verify_zip()
        remove_scratch(self.scratch)

    def _verify_zip(self) -> None:
        """The zip holds every member, whole (Python raises on a failed write; this checks what reads back)."""
        with zipfile.ZipFile(self.path) as archive:
            sizes = {info.filename: info.file_size for info in archive.infolist()}
        expected = {member: (self.scratch / member).stat().st_size for member in self.members}
        if sizes != expected:
            raise OutputWriteError(f"the zip written to {str(self.path)!r} does not hold what was written to it")

    def abort(self) -> None:
        try:
            if self.multi is not None:
                self.multi.abort()
                self.multi = None
            self._close()
        finally:
            remove_scratch(self.scratch)


SCRATCH_MARKER = ".eexarray-download-scratch"


def remove_scratch(scratch: Path) -> None:
    """Delete a scratch folder of ours (it holds ``SCRATCH_MARKER``); refuse to touch anything else there."""
    if not (scratch.exists() or scratch.is_symlink()):
        return
    if not scratch.is_dir() or scratch.is_symlink() or not (scratch / SCRATCH_MARKER).is_file():
        raise FileExistsError(
            f"{str(scratch)!r} is in the way of the download's scratch folder and was not made by eexarray download; "
            "remove it or choose another output name"
        )
    shutil.rmtree(scratch)
