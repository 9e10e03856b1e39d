"""Check and normalise the download-specific arguments, before any request. Pure but for path checks.

``format`` and ``file_per_band`` follow ``ee.data.getDownloadId``: ``filePerBand``
only chooses the default format there (true: ``ZIPPED_GEO_TIFF_PER_BAND``, false:
``ZIPPED_GEO_TIFF``) and is ignored otherwise. We refuse the contradictory
combinations instead of ignoring them, since a silently ignored flag hides a mistake.

Without ``format``, the output's extension chooses it (``.tif``/``.tiff`` GeoTIFF,
``.zip`` zipped GeoTIFF, ``.npy``, ``.zarr``, ``.nc``/``.nc4`` netCDF; no extension:
GeoTIFF); an extension of another format than ``format`` is refused, as is an
unknown extension without ``format`` (a GeoTIFF named ``out.png`` helps nobody).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dask.utils import parse_bytes

from eexarray._optional import available, missing_extra_message
from eexarray.download.atomic import check_replaceable, partial_path

FORMATS = ("GEO_TIFF", "ZIPPED_GEO_TIFF", "ZIPPED_GEO_TIFF_PER_BAND", "NPY", "ZARR", "NETCDF")
ZIPPED_FORMATS = ("ZIPPED_GEO_TIFF", "ZIPPED_GEO_TIFF_PER_BAND")
DEFAULT_FORMAT = "GEO_TIFF"
# Formats whose library is optional: (module, pip package).
LIBRARIES = {"ZARR": ("zarr", "zarr"), "NETCDF": ("netCDF4", "netcdf")}  # format: (module, extra)
# Memory a download may hold at once (blocks in flight plus the one being written; see plan.py).
DEFAULT_MEMORY_LIMIT = 2**30
# Extension (lower case) -> the formats it may hold; the first is chosen when format is not given.
EXTENSION_FORMATS: dict[str, tuple[str, ...]] = {
    ".tif": ("GEO_TIFF",),
    ".tiff": ("GEO_TIFF",),
    ".zip": ZIPPED_FORMATS,
    ".npy": ("NPY",),
    ".zarr": ("ZARR",),
    ".nc": ("NETCDF",),
    ".nc4": ("NETCDF",),
}
# A name becomes part of file names inside a zip: no separators, nothing hidden.
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class DownloadOptions:
    output: Path
    format: str
    name: str | None
    overwrite: bool
    progress: bool
    memory_limit: int


def _extensions_of(format: str) -> list[str]:
    return [extension for extension, formats in EXTENSION_FORMATS.items() if format in formats]


def format_of_extension(output: Path, file_per_band: bool | None) -> str:
    """The format the output's extension names (GEO_TIFF without one); refuses an unknown extension."""
    extension = output.suffix.lower()
    if not extension:
        return DEFAULT_FORMAT
    formats = EXTENSION_FORMATS.get(extension)
    if formats is None:
        raise ValueError(
            f"cannot tell the format of output {str(output)!r} from its extension {output.suffix!r}: use one of "
            f"{sorted(EXTENSION_FORMATS)} or pass format= (--format) one of {list(FORMATS)}"
        )
    if extension == ".zip" and file_per_band:
        return "ZIPPED_GEO_TIFF_PER_BAND"
    return formats[0]


def check_extension(output: Path, format: str) -> None:
    """Refuse an output whose extension names another format than ``format`` (``-o out.nc --format GEO_TIFF``)."""
    formats = EXTENSION_FORMATS.get(output.suffix.lower())
    if formats is not None and format not in formats:
        raise ValueError(
            f"output {str(output)!r} has the extension {output.suffix!r} of {' or '.join(formats)}, but "
            f"format={format!r}; name the output with {' or '.join(_extensions_of(format)) or 'another extension'} "
            f"or drop format (--format) to write {formats[0]}"
        )


def resolve_format(format: Any, file_per_band: Any, output: Path | None = None) -> str:
    """The format: ``format`` if given (checked against the output's extension), else from the extension."""
    if file_per_band is not None and not isinstance(file_per_band, bool):
        raise TypeError(f"file_per_band must be True, False or None, got {file_per_band!r}")
    if format is None:
        if file_per_band is not None:
            resolved = "ZIPPED_GEO_TIFF_PER_BAND" if file_per_band else "ZIPPED_GEO_TIFF"
            if output is not None:
                check_extension(output, resolved)
            return resolved
        return DEFAULT_FORMAT if output is None else _with_library(format_of_extension(output, None))
    if not isinstance(format, str) or format.strip().upper() not in FORMATS:
        raise ValueError(f"format={format!r} is not supported; use one of {list(FORMATS)}")
    resolved = _with_library(format.strip().upper())
    if file_per_band is not None:
        expected = "ZIPPED_GEO_TIFF_PER_BAND" if file_per_band else "ZIPPED_GEO_TIFF"
        if resolved != expected:
            raise ValueError(
                f"file_per_band={file_per_band!r} contradicts format={resolved!r}: file_per_band only chooses "
                f"between ZIPPED_GEO_TIFF_PER_BAND (True) and ZIPPED_GEO_TIFF (False); pass one of them, or drop "
                "file_per_band"
            )
    if output is not None:
        check_extension(output, resolved)
    return resolved


def _with_library(format: str) -> str:
    """``format``, once its optional library is known to be installed."""
    module, extra = LIBRARIES.get(format, (None, None))
    if module is not None and extra is not None and not available(module):
        raise ImportError(missing_extra_message(extra, f"download(format={format!r})"))
    return format


def parse_memory_limit(value: Any) -> int:
    if value is None:
        return DEFAULT_MEMORY_LIMIT
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"memory_limit must be a number of bytes or a string such as '512MiB', got {value!r}")
    try:
        limit = parse_bytes(value)
    except (ValueError, TypeError):
        raise ValueError(f"memory_limit={value!r} is not a size: use bytes (an int) or e.g. '256MB', '2GiB'") from None
    if limit <= 0:
        raise ValueError(f"memory_limit={value!r} must be positive")
    return int(limit)


def output_path(output: Any) -> Path:
    """The absolute output path (not checked against the file system)."""
    if not isinstance(output, (str, os.PathLike)) or not str(output).strip():
        raise TypeError(f"output must be a file or folder path (str or os.PathLike), got {output!r}")
    path = Path(output).expanduser().absolute()
    if path.name in ("", ".", ".."):
        raise ValueError(f"output {str(output)!r} does not name a file or folder")
    return path


def check_output(output: Any, overwrite: bool, format: str) -> Path:
    """The output path; refuses a missing parent folder and an existing output (unless ``overwrite``).

    With ``overwrite``, only a file replaces a file and only a Zarr store of ours replaces
    a Zarr store (atomic.check_replaceable): a folder is never replaced by a file, and a
    folder that is not our store is never deleted. A leftover ``.partial`` is checked the same way.
    """
    path = output_path(output)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder {str(path.parent)!r} of output {str(path)!r} does not exist")
    folder = format == "ZARR"
    check_replaceable(path, folder)  # also without overwrite: say what is wrong with replacing it
    check_replaceable(partial_path(path), folder, what="leftover")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True (--overwrite) to replace it")
    return path


def parse_download_options(
    *,
    output: Any,
    format: Any,
    file_per_band: Any,
    name: Any,
    overwrite: Any,
    progress: Any,
    memory_limit: Any,
) -> DownloadOptions:
    for flag, value in (("overwrite", overwrite), ("progress", progress)):
        if not isinstance(value, bool):
            raise TypeError(f"{flag} must be True or False, got {value!r}")
    resolved = resolve_format(format, file_per_band, output_path(output))
    if name is not None:
        if resolved not in ZIPPED_FORMATS:
            raise ValueError(
                f"name={name!r} names the files inside a zip; it applies to {list(ZIPPED_FORMATS)} only, "
                f"not to format={resolved!r} (the output path names that file)"
            )
        if not isinstance(name, str) or not _NAME.match(name) or name.startswith("."):
            raise ValueError(
                f"name={name!r} is not a valid base file name: use letters, digits, '_', '-' and '.' "
                "(not starting with '.')"
            )
    return DownloadOptions(
        output=check_output(output, overwrite, resolved),
        format=resolved,
        name=name,
        overwrite=overwrite,
        progress=progress,
        memory_limit=parse_memory_limit(memory_limit),
    )
