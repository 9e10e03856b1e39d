"""What an interrupted Zarr download leaves behind, so the next run fetches only what is missing.

Inside the partial store, two small files:

* ``eexarray-download.json``: the download's fingerprint (asset, images, grid,
  bands, dtypes) and its block shape (tile, time steps per block), written once the
  store's metadata exist;
* ``eexarray-blocks.log``: one line ``time row_block col_block`` appended after
  each block's chunks are written. A block is done only once its line is complete,
  so a block cut short by a kill is fetched again.

Both are removed when the download completes.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eexarray.download.atomic import remove
from eexarray.download.target import DownloadTarget

MANIFEST = "eexarray-download.json"
LOG = "eexarray-blocks.log"
_LINE = re.compile(r"^(\d+) (\d+) (\d+)$")
BlockIndex = tuple[int, int, int]


def fingerprint(target: DownloadTarget, format: str) -> dict[str, Any]:
    """What must match for a partial store to be continued: same pixels, same layout."""
    return {
        "format": format,
        "asset_id": str(target.dataset.attrs.get("asset_id", "")),
        "images": list(target.source.images),
        "grid": target.grid.to_rest(),
        "bands": list(target.band_ids),
        "dtypes": [dtype.name for dtype in target.dtypes],
        "expressions": list(getattr(target.source, "expressions", None) or []),  # computed images
    }


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
    temporary.write_text(json.dumps(content))
    os.replace(temporary, store / MANIFEST)


def read_done(store: Path) -> set[BlockIndex]:
    """Blocks recorded as written; a torn last line (a kill mid-append) does not count."""
    try:
        text = (store / LOG).read_text()
    except OSError:
        return set()
    done = set()
    for line in text.split("\n")[:-1]:  # the piece after the last newline is incomplete
        match = _LINE.match(line)
        if match:
            done.add((int(match[1]), int(match[2]), int(match[3])))
    return done


class BlockLog:
    """Append-only record of written blocks."""

    def __init__(self, store: Path) -> None:
        self.fd = os.open(store / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(self, block: BlockIndex) -> None:
        os.write(self.fd, f"{block[0]} {block[1]} {block[2]}\n".encode())

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

    A partial store of a *different* download is refused (its fetched blocks would be
    lost) unless ``overwrite``.
    """
    if not store.exists():
        return None
    manifest = read_manifest(store)
    expected = json.loads(json.dumps(fingerprint(target, "ZARR")))  # as the manifest stores it
    if manifest is not None and manifest.fingerprint == expected:
        return manifest
    if manifest is not None and not overwrite:
        raise FileExistsError(
            f"{str(store)!r} holds an interrupted download of other data (asset, images, grid, bands or dtypes "
            "differ); pass overwrite=True (--overwrite) to discard it, or repeat the original download to resume it"
        )
    # No manifest: interrupted before its first block was written; nothing to keep.
    remove(store)
    return None
