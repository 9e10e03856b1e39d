"""Progress bars for long listings: a bar appears only once a listing outgrows one page.

Listing a collection is the one wait of ``open_dataset`` and ``eexarray info`` that
grows with the collection (1,000 images a page). Small collections print nothing;
a listing past ``threshold`` items shows a ``tqdm`` bar on stderr counting images.

Whether bars show: the ``progress`` argument when given, else the ``EEXARRAY_PROGRESS``
environment variable (``1`` on, ``0`` off), else only when stderr is a terminal.
Bars need ``tqdm`` (the ``progress`` extra): without it, ``progress=True`` raises an
ImportError naming the extra, while bars turned on by the environment variable or the
terminal are left out (nothing else changes).
Computes and downloads have their own bars: see docs/faq.md (dask's ``ProgressBar``,
distributed's ``progress``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from eexarray._optional import available, require

T = TypeVar("T")
PROGRESS_ENV = "EEXARRAY_PROGRESS"
DEFAULT_THRESHOLD = 1000  # one listing page: smaller listings finish in one request
PURPOSE = "Listing progress bars (progress=True, eexarray info --progress)"


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to show bars: ``progress`` if given, else ``EEXARRAY_PROGRESS``, else stderr is a TTY."""
    if progress is not None:
        if not isinstance(progress, bool):
            raise TypeError(f"progress must be True, False or None, got {progress!r}")
        return progress
    setting = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if setting in ("1", "true", "yes", "on"):
        return True
    if setting in ("0", "false", "no", "off"):
        return False
    if setting:
        raise ValueError(f"{PROGRESS_ENV}={setting!r} is not understood; use 1 (bars on) or 0 (bars off)")
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _new_bar(description: str, initial: int, unit: str, file: Any) -> Any:
    tqdm = require("tqdm.auto", "progress", PURPOSE).tqdm
    # leave=True: the final count stays on screen, the listing's one visible trace.
    return tqdm(desc=description, initial=initial, unit=f" {unit}", file=file, leave=True, dynamic_ncols=True)


def track_listing(
    items: Iterable[T],
    *,
    description: str,
    progress: bool | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    unit: str = "images",
    file: Any = None,
) -> Iterator[T]:
    """Yield ``items`` unchanged; past ``threshold`` of them, count them on a progress bar.

    The total is unknown (listings are paged without a count), so the bar shows
    how many arrived and the rate. The bar closes when the iteration ends or fails.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
        raise ValueError(f"threshold must be a non-negative integer, got {threshold!r}")
    enabled = progress_enabled(progress)
    if enabled and not available("tqdm"):
        if progress:  # asked for in this call: say what to install, before any listing starts
            require("tqdm", "progress", PURPOSE)
        enabled = False  # turned on by EEXARRAY_PROGRESS or a terminal: no bar, same results
    bar = None
    count = 0
    try:
        for item in items:
            count += 1
            if bar is None and enabled and count > threshold:
                bar = _new_bar(description, count - 1, unit, file)
            if bar is not None:
                bar.update(1)
            yield item
    finally:
        if bar is not None:
            bar.close()
