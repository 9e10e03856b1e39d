"""``eexarray.download``: any region of an asset (or computed image) to a file, streamed block by block."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from eexarray.backend.options import check_keywords, option_values
from eexarray.download.atomic import locked, partial_path, publish, remove_own
from eexarray.download.names import default_base_name
from eexarray.download.options import DownloadOptions, parse_download_options
from eexarray.download.plan import BlockPlan, plan_blocks
from eexarray.download.progress import ProgressBar
from eexarray.download.resume import resumable_manifest
from eexarray.download.stream import stream_blocks
from eexarray.download.target import DownloadTarget, open_target
from eexarray.download.writer import BlockWriter, write_failed

if TYPE_CHECKING:
    import numpy as np
    from google.auth.credentials import Credentials
    from pyproj import CRS

    from eexarray.backend.options import GeometryLike
    from eexarray.geometry import PixelGrid


def _check_input(value: Any) -> Any:
    if isinstance(value, (str, dict)):
        return value
    if type(value).__module__.split(".")[0] == "ee":  # an ee.Image / ee.ImageCollection: open_dataset encodes it
        return value
    raise TypeError(
        "asset_or_expression must be an asset id (str), an expression graph (dict) or an ee.Image / "
        f"ee.ImageCollection, got {type(value).__name__}: {value!r}"
    )


def _make_writer(format: str, path: Path, target: DownloadTarget, plan: BlockPlan, base: str) -> BlockWriter:
    # Writers import their format's library only when used (zarr and netCDF4 load slowly).
    if format == "GEO_TIFF":
        from eexarray.download.geotiff import GeoTiffWriter

        return GeoTiffWriter(path, target, plan)
    if format in ("ZIPPED_GEO_TIFF", "ZIPPED_GEO_TIFF_PER_BAND"):
        from eexarray.download.geotiff import ZippedGeoTiffWriter

        return ZippedGeoTiffWriter(path, target, plan, base=base, per_band=format.endswith("PER_BAND"))
    if format == "NPY":
        from eexarray.download.npy import NpyWriter

        return NpyWriter(path, target, plan)
    if format == "ZARR":
        from eexarray.download.zarr_store import ZarrWriter

        return ZarrWriter(path, target, plan)
    if format == "NETCDF":
        from eexarray.download.netcdf import NetcdfWriter

        return NetcdfWriter(path, target, plan)
    raise AssertionError(format)  # options.py admits only the formats above


# The open options are defined once, in eexarray.backend.options.OPEN_OPTIONS (those whose
# ``commands`` include "download"); written out here for type checkers, IDEs and the API
# reference, and checked against that definition by tests/core/test_options_definition.py.
@check_keywords("download")
def download(
    asset_or_expression: Any,
    output: str | Path,
    *,
    format: str | None = None,
    name: str | None = None,
    file_per_band: bool | None = None,
    overwrite: bool = False,
    progress: bool = True,
    memory_limit: int | str | None = None,
    bands: str | Sequence[str] | None = None,
    crs: str | CRS | None = None,
    scale: float | tuple[float, float] | None = None,
    resolution: float | tuple[float, float] | None = None,
    region: Sequence[float] | dict[str, Any] | GeometryLike | None = None,
    grid: PixelGrid | dict[str, Any] | None = None,
    max_pixels_per_side: int | None = None,
    resampling: Literal["nearest", "bilinear", "bicubic"] = "nearest",
    start: str | dt.date | np.datetime64 | None = None,
    end: str | dt.date | np.datetime64 | None = None,
    filter: str | None = None,
    max_images: int | None = 5000,
    endpoint: str | None = None,
    high_volume: bool = False,
    project: str | None = None,
    credentials: Credentials | None = None,
    max_concurrency: int | None = None,
    request_timeout: float | None = None,
) -> Path:
    """Download an image or collection (any size) to ``output``; returns its absolute path.

    The downloaded pixels are those of the Dataset ``open_dataset`` opens with the same
    options, in native values. Every argument is checked, and an existing ``output``
    refused unless ``overwrite``, before any request. One download per output at a time
    (``OutputLockedError``); the output appears only once written and read back as
    written (else ``OutputWriteError``). See docs/downloads.md.

    Args:
        asset_or_expression: an asset id (as for ``open_dataset``), an expression graph,
            or an ``ee.Image``/``ee.ImageCollection``.
        output: the file (or folder, for ``ZARR``) to write.
        format: ``GEO_TIFF``, ``ZIPPED_GEO_TIFF``, ``ZIPPED_GEO_TIFF_PER_BAND``, ``NPY``, ``ZARR``
            or ``NETCDF``. Default: from ``output``'s extension (``.tif``/``.tiff``, ``.zip``,
            ``.npy``, ``.zarr``, ``.nc``; ``GEO_TIFF`` without one); an extension of another
            format is refused.
        name: base name of the files inside a ``ZIPPED_*`` archive, as in ``ee.data.getDownloadId``.
        file_per_band: as ``ee.data.getDownloadId``'s ``filePerBand``: chooses the zipped format
            when ``format`` is not given.
        overwrite: replace an existing ``output`` (a file, or a Zarr store written by eexarray
            download; never any other folder).
        progress: show a progress bar.
        memory_limit: bytes, or e.g. ``"256MB"`` (default 1 GiB): bounds the memory the
            download holds at once (see the model in plan.py).
        bands: band ids to open, in this order
        crs: output CRS: `"EPSG:32610"`, WKT, or a `pyproj.CRS`
        scale: metres per pixel, or `(x, y)`, as in Earth Engine (in a geographic CRS, degrees = metres / 111319.49)
        resolution: CRS units per pixel (degrees in EPSG:4326), or `(x, y)`; exclusive with `scale`
        region: GeoJSON geometry dict, shapely geometry, or `(west, south, east, north)`, in EPSG:4326
        grid: a `PixelGrid` or a REST PixelGrid dict; exclusive with `crs`/`scale`/`resolution`/`region`
        max_pixels_per_side: largest output grid side in pixels; also caps tiles per band at 10^6 x (this / 2^20)^2
        resampling: `bilinear`/`bicubic`: interpolated by the service off the native grid (`Image.resample`)
        start: collections: keep images whose `startTime` is at or after this date (ISO 8601, e.g. `2021-06-01`)
        end: collections: keep images whose `startTime` is before this date (exclusive)
        filter: collections: an AIP-160 filter, e.g. `properties.CLOUDY_PIXEL_PERCENTAGE < 20`
        max_images: unfiltered collections: refuse to list more images than this (`None`: no limit)
        endpoint: REST endpoint URL
        high_volume: use `https://earthengine-highvolume.googleapis.com`
        project: quota project (`X-Goog-User-Project`)
        credentials: google-auth credentials
        max_concurrency: requests in flight: per process, and across a dask.distributed cluster
        request_timeout: seconds one attempt of one request may take, connecting and the whole response included
    """
    open_options = option_values(locals(), "download")
    options = parse_download_options(
        output=output,
        format=format,
        file_per_band=file_per_band,
        name=name,
        overwrite=overwrite,
        progress=progress,
        memory_limit=memory_limit,
    )
    source = _check_input(asset_or_expression)
    with locked(options.output):  # one download per output at a time, from the first request to the rename
        return _download_locked(source, options, open_options)


def _download_locked(source: Any, options: DownloadOptions, open_options: dict[str, Any]) -> Path:
    target = open_target(source, open_options)
    base = options.name or default_base_name(source if isinstance(source, str) else None)
    partial = partial_path(options.output)
    folder = options.format == "ZARR"
    manifest = None
    if folder:
        manifest = resumable_manifest(partial, target, options.overwrite)
    else:
        remove_own(partial, folder=False)  # left by a killed run: these formats restart
    plan = plan_blocks(
        target.grid.height,
        target.grid.width,
        target.time_count,
        target.dtypes,
        options.memory_limit,
        tile=manifest.tile if manifest else None,
        time_step=manifest.time_step if manifest else None,
    )
    bar = ProgressBar(f"download {options.output.name}", plan.block_count, plan.total_bytes, enabled=options.progress)
    try:
        writer = _make_writer(options.format, partial, target, plan, base)
    except BaseException as error:
        if not folder:
            remove_own(partial, folder=False)
        if isinstance(error, OSError) and not isinstance(error, FileExistsError):  # a full disk...
            raise write_failed(partial, error, folder) from error
        raise
    try:
        stream_blocks(target, plan, writer, memory_limit=options.memory_limit, progress=bar)
        try:
            writer.finish()  # verifies what was written (OutputWriteError if it does not read back)
        except OSError as error:
            raise write_failed(partial, error, writer.resumable) from error
    except BaseException:
        try:
            writer.abort()
        finally:
            if not folder:
                remove_own(partial, folder=False)
        raise
    publish(partial, options.output, options.overwrite)
    return options.output
