"""What an interrupted Zarr download leaves behind, so the next run fetches only what is missing.

Inside the partial store (besides atomic.MARKER), two small files:

* ``eexarray-download.json``: the download's fingerprint (layout version, asset,
  images and their ``updateTime``, grid, bands, dtypes, fill values, times, computed
  expressions) and its block shape (tile, time steps per block), written (and synced)
  once the store's metadata exist;
* ``eexarray-blocks.log``: one line ``time row_block col_block crc crc ...`` appended
  after each block's chunks are written *and synced to disk*, with the CRC-32 of each
  band's pixels of that block. A block is done only once its line is complete, so a
  block cut short by a kill is fetched again.

A resumed run first checks every logged block: it reads the block back from the store
and compares each band's CRC-32 with the logged one. A chunk lost, cut short or
otherwise damaged after it was logged (zarr would read a missing chunk as fill values)
fails the check, and its block is fetched again. The check reads what was written
once (decompressing it), which costs far less than fetching it.

A store whose fingerprint differs (other data, or an asset reprocessed since: a new
``updateTime``) is refused with the differences named, unless ``overwrite``.

Both files are removed when the download completes.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eexarray.download.atomic import fsync_path, fsync_write, remove_own
from eexarray.download.target import DownloadTarget

MANIFEST = "eexarray-download.json"
LOG = "eexarray-blocks.log"
# Bumped whenever what a store holds, or how its log reads, changes: older stores are not resumed.
LAYOUT_VERSION = 2
_LINE = re.compile(r"^(\d+) (\d+) (\d+)((?: [0-9a-f]{8})+)$")
BlockIndex = tuple[int, int, int]


def checksum(array: np.ndarray) -> int:
    """CRC-32 of an array's values (C order, little-endian: the same whoever decoded them)."""
    values = np.ascontiguousarray(array, dtype=np.asarray(array).dtype.newbyteorder("<"))
    return zlib.crc32(values.view(np.uint8).data)


def fingerprint(target: DownloadTarget, format: str) -> dict[str, Any]:
    """What must match for a partial store to be continued: same pixels, same layout."""
    dataset = target.dataset
    times = [str(value) for value in dataset["time"].values] if target.has_time else []
    return {
        "layout": LAYOUT_VERSION,
        "format": format,
        "asset_id": str(dataset.attrs.get("asset_id", "")),
        "images": list(target.source.images),
        "image_ids": list(target.image_ids),
        "update_times": list(target.versions),  # a reprocessed asset has a new one
        "times": times,
        "grid": target.grid.to_rest(),
        "bands": list(target.band_ids),
        "dtypes": [dtype.name for dtype in target.dtypes],
        "fill_values": [repr(dataset[band].attrs.get("nodata", 0)) for band in target.band_ids],
        "expressions": list(getattr(target.source, "expressions", None) or []),  # computed images
    }


_DESCRIPTIONS = {
    "layout": "the store layout of an older eexarray",
    "images": "the images",
    "image_ids": "the images",
    "update_times": "the images' updateTime (the asset was updated or reprocessed since)",
    "times": "the image times",
    "grid": "the grid (crs, scale, region)",
    "bands": "the bands",
    "dtypes": "the band dtypes",
    "fill_values": "the bands' no-data values",
    "expressions": "the computed expression",
}


def _shorten(value: Any, limit: int = 160) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def differences(stored: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Human-readable differences between a stored fingerprint and this download's."""
    found = []
    for key in sorted(set(stored) | set(expected)):
        if stored.get(key) != expected.get(key):
            what = _DESCRIPTIONS.get(key, key)
            found.append(f"{what}: stored {_shorten(stored.get(key))}, now {_shorten(expected.get(key))}")
    return found


@dataclass(frozen=True)
class Manifest:
    fingerprint: dict[str, Any]
    tile: tuple[int, int]
    time_step: int


def read_manifest(store: Path) -> Manifest | None:
    try:
        data = json.loads((store / MANIFEST).read_text())
        return Manifest(data["fingerprint"], (int(data["tile"][0]), int(data["tile"][1])), int(data["time_step"]))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def write_manifest(store: Path, manifest: Manifest) -> None:
    temporary = store / (MANIFEST + ".tmp")
    content = {"fingerprint": manifest.fingerprint, "tile": list(manifest.tile), "time_step": manifest.time_step}
    fsync_write(temporary, json.dumps(content).encode())
    os.replace(temporary, store / MANIFEST)
    fsync_path(store)


def read_log(store: Path) -> dict[BlockIndex, tuple[int, ...]]:
    """Blocks recorded as written, with their bands' checksums; a torn last line (a kill mid-append) does not count."""
    try:
        text = (store / LOG).read_text()
    except OSError:
        return {}
    done = {}
    for line in text.split("\n")[:-1]:  # the piece after the last newline is incomplete
        match = _LINE.match(line)
        if match:
            index = (int(match[1]), int(match[2]), int(match[3]))
            done[index] = tuple(int(value, 16) for value in match[4].split())
    return done


def read_done(store: Path) -> set[BlockIndex]:
    """Blocks recorded as written (not yet verified against the store: see ``ZarrWriter``)."""
    return set(read_log(store))


class BlockLog:
    """Append-only record of written blocks (each recorded only after its chunks are synced)."""

    def __init__(self, store: Path) -> None:
        self.fd = os.open(store / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(self, block: BlockIndex, checksums: Sequence[int]) -> None:
        sums = " ".join(f"{value:08x}" for value in checksums)
        os.write(self.fd, f"{block[0]} {block[1]} {block[2]} {sums}\n".encode())

    def rewrite(self, kept: dict[BlockIndex, tuple[int, ...]]) -> None:
        """Replace the log by ``kept`` (blocks that failed verification are dropped)."""
        os.ftruncate(self.fd, 0)
        for block, sums in kept.items():
            self.record(block, sums)
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def forget(store: Path) -> None:
    """Remove the resume files (the download is complete)."""
    for name in (LOG, MANIFEST):
        try:
            (store / name).unlink()
        except FileNotFoundError:
            pass


def resumable_manifest(store: Path, target: DownloadTarget, overwrite: bool) -> Manifest | None:
    """The manifest of a partial store this download can continue, else None (after clearing it).

    A partial store of a *different* download (other data, or an asset updated since) is
    refused, naming what differs, unless ``overwrite``: its fetched blocks would be lost.
    """
    if not store.exists():
        return None
    manifest = read_manifest(store)
    expected = json.loads(json.dumps(fingerprint(target, "ZARR")))  # as the manifest stores it
    if manifest is not None and manifest.fingerprint == expected:
        return manifest
    if manifest is not None and not overwrite:
        changes = "; ".join(differences(manifest.fingerprint, expected))
        raise FileExistsError(
            f"{str(store)!r} holds an interrupted download of other data, so it cannot be resumed ({changes}); "
            "pass overwrite=True (--overwrite) to discard it and start again, or repeat the original download"
        )
    # No manifest: interrupted before its first block was written; nothing to keep.
    remove_own(store, folder=True)
    return None
