"""``eexarray.download``: any region of an asset (or computed image) to a file, streamed block by block."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eexarray.download.atomic import partial_path, publish, remove
from eexarray.download.names import default_base_name
from eexarray.download.options import parse_download_options
from eexarray.download.plan import BlockPlan, plan_blocks
from eexarray.download.progress import ProgressBar
from eexarray.download.resume import resumable_manifest
from eexarray.download.stream import stream_blocks
from eexarray.download.target import DownloadTarget, open_target
from eexarray.download.writer import BlockWriter


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


def download(
    asset_or_expression: Any,
    output: str | Path,
    *,
    format: str | None = None,
    crs: Any = None,
    scale: Any = None,
    region: Any = None,
    grid: Any = None,
    bands: Any = None,
    start: Any = None,
    end: Any = None,
    filter: str | None = None,
    name: str | None = None,
    file_per_band: bool | None = None,
    endpoint: str | None = None,
    high_volume: bool = False,
    project: str | None = None,
    credentials: Any = None,
    max_concurrency: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    memory_limit: int | str | None = None,
) -> Path:
    """Download an image or collection (any size) to ``output``; returns its absolute path.

    ``asset_or_expression``: an asset id (as for ``open_dataset``), an expression graph,
    or an ``ee.Image``/``ee.ImageCollection``. ``crs``, ``scale``, ``region``, ``grid``,
    ``bands``, ``start``, ``end``, ``filter`` and the connection arguments mean what they
    mean for ``open_dataset`` (the downloaded pixels are that Dataset's, native values).
    ``format``: ``GEO_TIFF`` (default), ``ZIPPED_GEO_TIFF``, ``ZIPPED_GEO_TIFF_PER_BAND``,
    ``NPY``, ``ZARR`` or ``NETCDF``. ``name`` and ``file_per_band`` behave as in
    ``ee.data.getDownloadId``. ``memory_limit`` (bytes, or e.g. ``"256MB"``; default
    1 GiB) bounds the memory the download holds at once (see the model in plan.py). See docs/downloads.md.

    Every argument is checked, and an existing ``output`` refused unless ``overwrite``,
    before any request.
    """
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
    open_options: dict[str, Any] = {
        key: value
        for key, value in dict(
            crs=crs,
            scale=scale,
            region=region,
            grid=grid,
            bands=bands,
            start=start,
            end=end,
            filter=filter,
            endpoint=endpoint,
            project=project,
            credentials=credentials,
            max_concurrency=max_concurrency,
        ).items()
        if value is not None
    }
    if high_volume:
        open_options["high_volume"] = high_volume
    target = open_target(source, open_options)
    base = options.name or default_base_name(source if isinstance(source, str) else None)
    partial = partial_path(options.output)
    manifest = None
    if options.format == "ZARR":
        manifest = resumable_manifest(partial, target, options.overwrite)
    else:
        remove(partial)  # left by a killed run: these formats restart
    grid = target.grid
    plan = plan_blocks(
        grid.height,
        grid.width,
        target.time_count,
        target.dtypes,
        options.memory_limit,
        tile=manifest.tile if manifest else None,
        time_step=manifest.time_step if manifest else None,
    )
    bar = ProgressBar(f"download {options.output.name}", plan.block_count, plan.total_bytes, enabled=options.progress)
    writer = _make_writer(options.format, partial, target, plan, base)
    try:
        stream_blocks(target, plan, writer, memory_limit=options.memory_limit, progress=bar)
        writer.finish()
    except BaseException:
        try:
            writer.abort()
        finally:
            if options.format != "ZARR":
                remove(partial)
        raise
    publish(partial, options.output, options.overwrite)
    return options.output
