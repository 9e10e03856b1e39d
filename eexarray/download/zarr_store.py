"""ZARR writer: one chunk per block, resumable after a kill (see resume.py).

The store's metadata and coordinates are written first by xarray
(``to_zarr(compute=False)``: the data variables are placeholders that are never
computed); then each block's arrays are written with zarr, one whole chunk per
variable, and recorded in the block log. ``finish`` removes the resume files and
writes the consolidated metadata last; the orchestrator then renames the store
to its final name, so a store under the final name is always complete.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from eexarray._optional import require
from eexarray.download import resume
from eexarray.download.plan import Block, BlockPlan
from eexarray.download.target import DownloadTarget
from eexarray.download.template import template_dataset
from eexarray.download.writer import BlockWriter

FORMAT = "ZARR"
PURPOSE = "download(format='ZARR') / eexarray download --format ZARR"


class ZarrWriter(BlockWriter):
    def __init__(self, path: Path, target: DownloadTarget, plan: BlockPlan) -> None:
        self.zarr: Any = require("zarr", "zarr", PURPOSE)  # before xarray's to_zarr needs it too
        super().__init__(path, target, plan)
        if path.exists():
            self.done = resume.read_done(path)
        else:
            template_dataset(target, plan).to_zarr(path, mode="w-", compute=False, consolidated=False)
            tile = (plan.tile_rows, plan.tile_cols)
            manifest = resume.Manifest(resume.fingerprint(target, FORMAT), tile, plan.time_step)
            resume.write_manifest(path, manifest)
            self.done = set()
        self.group = self.zarr.open_group(path, mode="r+")
        self.arrays: list[Any] = [self.group[band] for band in target.band_ids]
        self.log = resume.BlockLog(path)

    def done_blocks(self) -> set[tuple[int, int, int]]:
        return set(self.done)

    def write(self, block: Block, arrays: list[np.ndarray]) -> None:
        rows, cols = block.window.slices()
        times = slice(block.times.start, block.times.stop)
        for stored, array in zip(self.arrays, arrays):
            if self.target.has_time:
                stored[times, rows, cols] = array
            else:
                stored[rows, cols] = array[0]
        self.log.record(block.index)

    def finish(self) -> None:
        self.log.close()
        resume.forget(self.path)
        with warnings.catch_warnings():
            # Consolidated metadata is a zarr-python extension in format 3; xarray reads it.
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            self.zarr.consolidate_metadata(self.path)

    def abort(self) -> None:
        self.log.close()  # the partial store stays, for the next run to resume
