"""The interface every output format implements, and what the writers share.

A writer is created on a *temporary* path (see atomic.py), receives each block
once, in plan order, and ``finish`` leaves a complete file (or folder) at that
path. ``abort`` closes it without finishing. Writers never hold more than the
block they are given (plus their library's bounded caches).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from eexarray.download.plan import Block, BlockPlan
from eexarray.download.target import DownloadTarget


class OutputWriteError(OSError):
    """Writing the output failed, or what was written does not read back as written (e.g. a full disk)."""


def write_failed(path: Path, error: BaseException, resumable: bool = False) -> OutputWriteError:
    """The error to raise when a write to ``path`` failed with ``error`` (kept as the cause)."""
    if isinstance(error, OutputWriteError):
        return error
    cause = error.__cause__ or error.__context__  # rasterio: "Write failed. See previous exception"
    detail = f"{error} ({cause})" if cause is not None and str(cause) != str(error) else str(error)
    kept = "; the partial store is kept: run the same download again to resume it" if resumable else ""
    return OutputWriteError(
        f"writing {str(path)!r} failed: {detail} (is the disk full, or a file size limit reached?); "
        f"no output was published{kept}"
    )


class BlockWriter(ABC):
    resumable = False  # a failed download leaves its partial output to be resumed

    def __init__(self, path: Path, target: DownloadTarget, plan: BlockPlan) -> None:
        self.path = path
        self.target = target
        self.plan = plan

    def done_blocks(self) -> set[tuple[int, int, int]]:
        """Blocks already written by an earlier, interrupted run (only resumable formats have any)."""
        return set()

    @abstractmethod
    def write(self, block: Block, arrays: list[np.ndarray]) -> None:
        """Write ``arrays`` (one (times, rows, cols) array per band, in ``target.band_ids`` order) at ``block``."""

    @abstractmethod
    def finish(self) -> None:
        """Flush, close and verify: the output at ``path`` is complete, or ``OutputWriteError`` is raised."""

    @abstractmethod
    def abort(self) -> None:
        """Close after a failure; the output at ``path`` is left incomplete."""


def common_dtype(dtypes: list[np.dtype]) -> np.dtype:
    """One dtype for bands that must share one (a multi-band GeoTIFF), holding every value exactly.

    ``numpy.result_type`` promotes safely: uint16 + int16 -> int32, any int up to 32 bits
    + float32 -> float64. Only int64 with a float band would lose exactness (float64 holds
    integers up to 2**53); Earth Engine rarely has int64 bands.
    """
    return np.result_type(*dtypes)


def nodata_of(target: DownloadTarget) -> list[float | int]:
    """Each band's no-data value as the opened Dataset records it (``nodata`` attr, 0 by default)."""
    return [target.dataset[band].attrs.get("nodata", 0) for band in target.band_ids]
