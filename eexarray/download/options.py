"""Check and normalise the download-specific arguments, before any request. Pure but for path checks.

``format`` and ``file_per_band`` follow ``ee.data.getDownloadId``: ``filePerBand``
only chooses the default format there (true: ``ZIPPED_GEO_TIFF_PER_BAND``, false:
``ZIPPED_GEO_TIFF``) and is ignored otherwise. We refuse the contradictory
combinations instead of ignoring them, since a silently ignored flag hides a mistake.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dask.utils import parse_bytes

from eexarray._optional import available, missing_extra_message

FORMATS = ("GEO_TIFF", "ZIPPED_GEO_TIFF", "ZIPPED_GEO_TIFF_PER_BAND", "NPY", "ZARR", "NETCDF")
ZIPPED_FORMATS = ("ZIPPED_GEO_TIFF", "ZIPPED_GEO_TIFF_PER_BAND")
DEFAULT_FORMAT = "GEO_TIFF"
# Formats whose library is optional: (module, pip package).
LIBRARIES = {"ZARR": ("zarr", "zarr"), "NETCDF": ("netCDF4", "netcdf")}  # format: (module, extra)
# Memory a download may hold at once (blocks in flight plus the one being written; see plan.py).
DEFAULT_MEMORY_LIMIT = 2**30
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


def resolve_format(format: Any, file_per_band: Any) -> str:
    if file_per_band is not None and not isinstance(file_per_band, bool):
        raise TypeError(f"file_per_band must be True, False or None, got {file_per_band!r}")
    if format is None:
        if file_per_band is None:
            return DEFAULT_FORMAT
        return "ZIPPED_GEO_TIFF_PER_BAND" if file_per_band else "ZIPPED_GEO_TIFF"
    if not isinstance(format, str) or format.strip().upper() not in FORMATS:
        raise ValueError(f"format={format!r} is not supported; use one of {list(FORMATS)}")
    resolved = format.strip().upper()
    module, extra = LIBRARIES.get(resolved, (None, None))
    if module is not None and extra is not None and not available(module):
        raise ImportError(missing_extra_message(extra, f"download(format={resolved!r})"))
    if file_per_band is not None:
        expected = "ZIPPED_GEO_TIFF_PER_BAND" if file_per_band else "ZIPPED_GEO_TIFF"
        if resolved != expected:
            raise ValueError(
                f"file_per_band={file_per_band!r} contradicts format={resolved!r}: file_per_band only chooses "
                f"between ZIPPED_GEO_TIFF_PER_BAND (True) and ZIPPED_GEO_TIFF (False); pass one of them, or drop "
                "file_per_band"
            )
    return resolved


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


def check_output(output: Any, overwrite: bool) -> Path:
    """The output path; refuses an existing output (unless ``overwrite``) and a missing parent folder."""
    if not isinstance(output, (str, os.PathLike)) or not str(output).strip():
        raise TypeError(f"output must be a file or folder path (str or os.PathLike), got {output!r}")
    path = Path(output).expanduser().absolute()
    if path.name in ("", ".", ".."):
        raise ValueError(f"output {str(output)!r} does not name a file or folder")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True (--overwrite) to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder {str(path.parent)!r} of output {str(path)!r} does not exist")
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
    resolved = resolve_format(format, file_per_band)
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
        output=check_output(output, overwrite),
        format=resolved,
        name=name,
        overwrite=overwrite,
        progress=progress,
        memory_limit=parse_memory_limit(memory_limit),
    )
