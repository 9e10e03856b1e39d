"""Atomic outputs: write under a temporary name beside the output, rename when complete.

The temporary name is the output's name plus ``.partial`` (``out.tif.partial``,
``out.zarr.partial``), in the same folder so the final rename never crosses file
systems. Nothing under the final name is ever incomplete: it appears only by that
rename. A ``.partial`` file left by a killed run is replaced by the next run; a
``.partial`` Zarr store is resumed (see resume.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SUFFIX = ".partial"


def partial_path(output: Path) -> Path:
    return output.with_name(output.name + SUFFIX)


def remove(path: Path) -> None:
    """Delete a file or folder tree, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def publish(partial: Path, output: Path, overwrite: bool) -> None:
    """Move the complete ``partial`` to ``output`` (replacing it only with ``overwrite``)."""
    if not (output.exists() or output.is_symlink()):
        os.rename(partial, output)
        return
    if not overwrite:
        raise FileExistsError(f"{str(output)!r} appeared during the download; the result is in {str(partial)!r}")
    if partial.is_dir() or output.is_dir():
        # A folder cannot replace another atomically: move the old one aside first.
        aside = output.with_name(f"{output.name}.replaced-{os.getpid()}")
        os.rename(output, aside)
        os.rename(partial, output)
        remove(aside)
    else:
        os.replace(partial, output)
