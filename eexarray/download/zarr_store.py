"""ZARR writer: one chunk per block, resumable after a kill (see resume.py).

The store is created as a folder holding our marker file (atomic.MARKER: only stores
marked as ours are ever resumed, replaced or deleted; the complete store is marked by
a root attribute instead), then its metadata and coordinates are
written by xarray (``to_zarr(compute=False)``: the data variables are placeholders
that are never computed) and synced to disk; then each block's arrays are written
with zarr, one whole chunk per variable, the chunk files are synced to disk, and only
then is the block recorded in the block log, with each band's checksum. A resumed run
reads every logged block back and fetches again those that do not match (a chunk lost
or cut after it was logged). ``finish`` removes the resume files and writes the
consolidated metadata last; the orchestrator then renames the store to its final name,
so a store under the final name is always complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from eexarray._optional import require
from eexarray.download import resume
from eexarray.download.atomic import MARKER, MARKER_ATTR, MARKER_VALUE, fsync_path, fsync_tree, write_marker
from eexarray.download.plan import Block, BlockPlan
from eexarray.download.target import DownloadTarget
from eexarray.download.template import template_dataset
from eexarray.download.writer import BlockWriter

FORMAT = "ZARR"
PURPOSE = "download(format='ZARR') / eexarray download --format ZARR"
logger = logging.getLogger("eexarray.download")


def chunk_file(store: Path, array: Any, coords: tuple[int, ...]) -> Path:
    """The file holding chunk ``coords`` of ``array`` in the local store ``store``."""
    metadata = getattr(array, "metadata", None)
    if metadata is not None and hasattr(metadata, "encode_chunk_key"):  # zarr 3 (either format)
        return store / array.path / metadata.encode_chunk_key(coords)
    return store / array._chunk_key(coords)  # zarr 2: the key holds the array's path


@contextlib.contextmanager
def _quiet_about_our_files() -> Iterator[None]:
    """zarr warns about files it does not know, such as our marker and resume files in a partial store."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Object at .* is not recognized as a component of a Zarr hierarchy")
        yield


class ZarrWriter(BlockWriter):
    resumable = True

    def __init__(self, path: Path, target: DownloadTarget, plan: BlockPlan) -> None:
        self.zarr: Any = require("zarr", "zarr", PURPOSE)  # before xarray's to_zarr needs it too
        super().__init__(path, target, plan)
        logged: dict[resume.BlockIndex, tuple[int, ...]] = {}
        if path.exists():  # our partial store, whose manifest matches (api.py checked both)
            logged = resume.read_log(path)
        else:
            os.mkdir(path)
            write_marker(path)
            template = template_dataset(target, plan)
            template.attrs[MARKER_ATTR] = MARKER_VALUE  # what lets a later overwrite replace this store
            with _quiet_about_our_files():
                template.to_zarr(path, mode="a", compute=False, consolidated=False)
            fsync_tree(path)  # the metadata are on disk before any block is logged
            tile = (plan.tile_rows, plan.tile_cols)
            resume.write_manifest(path, resume.Manifest(resume.fingerprint(target, FORMAT), tile, plan.time_step))
        with _quiet_about_our_files():
            self.group = self.zarr.open_group(path, mode="r+")
        self.arrays: list[Any] = [self.group[band] for band in target.band_ids]
        self.log = resume.BlockLog(path)
        self.done = self._verified(logged)

    def _read_checksums(self, block: Block) -> tuple[int, ...] | None:
        rows, cols = block.window.slices()
        try:
            if self.target.has_time:
                times = slice(block.times.start, block.times.stop)
                return tuple(resume.checksum(stored[times, rows, cols]) for stored in self.arrays)
            return tuple(resume.checksum(stored[rows, cols]) for stored in self.arrays)
        except Exception:  # noqa: BLE001 - a chunk that no longer decodes (cut, overwritten): fetch again
            return None

    def _verified(self, logged: dict[resume.BlockIndex, tuple[int, ...]]) -> set[resume.BlockIndex]:
        """The logged blocks whose stored pixels still match their checksums; the log keeps only those."""
        if not logged:
            return set()
        kept = {index: sums for index, sums in logged.items() if self._read_checksums(self.plan.block(index)) == sums}
        if len(kept) < len(logged):
            logger.warning(
                "%s: %d of %d blocks recorded as written no longer match what was written (chunks lost or damaged); "
                "fetching them again",
                self.path,
                len(logged) - len(kept),
                len(logged),
            )
            self.log.rewrite(kept)
        return set(kept)

    def done_blocks(self) -> set[tuple[int, int, int]]:
        return set(self.done)

    def _chunk_coords(self, block: Block) -> list[tuple[int, ...]]:
        row_block, col_block = block.index[1], block.index[2]
        if self.target.has_time:
            return [(time, row_block, col_block) for time in block.times]
        return [(row_block, col_block)]

    def _sync_chunks(self, block: Block) -> None:
        """Sync the block's chunk files, and the folders holding them, to disk."""
        folders = set()
        for stored in self.arrays:
            for coords in self._chunk_coords(block):
                chunk = chunk_file(self.path, stored, coords)
                if chunk.exists():  # zarr does not write a chunk that is all fill value
                    fsync_path(chunk)
                folder = chunk.parent
                while folder != self.path and folder != folder.parent and folder not in folders:
                    folders.add(folder)
                    folder = folder.parent
        for folder in sorted(folders, key=lambda item: len(item.parts), reverse=True):
            if folder.exists():
                fsync_path(folder)

    def write(self, block: Block, arrays: list[np.ndarray]) -> None:
        rows, cols = block.window.slices()
        times = slice(block.times.start, block.times.stop)
        checksums = []
        for stored, array in zip(self.arrays, arrays):
            if self.target.has_time:
                stored[times, rows, cols] = array
                checksums.append(resume.checksum(np.asarray(array, dtype=stored.dtype)))
            else:
                stored[rows, cols] = array[0]
                checksums.append(resume.checksum(np.asarray(array[0], dtype=stored.dtype)))
        self._sync_chunks(block)  # before the log says the block is written
        self.log.record(block.index, checksums)

    def finish(self) -> None:
        self.log.close()
        resume.forget(self.path)
        (self.path / MARKER).unlink(
            missing_ok=True
        )  # the root attribute marks the complete store; zarr warns about unknown files
        with warnings.catch_warnings():
            # Consolidated metadata is a zarr-python extension in format 3; xarray reads it.
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            self.zarr.consolidate_metadata(self.path)

    def abort(self) -> None:
        self.log.close()  # the partial store stays, for the next run to resume
