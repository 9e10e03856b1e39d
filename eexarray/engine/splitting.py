"""Computed requests that split themselves when Earth Engine finds them too heavy.

``computePixels`` evaluates an expression on Earth Engine's machines, and a heavy one
(a median of hundreds of images, a packed time series of large windows) can fail with
HTTP 400 and one of these messages, which no retry of the same request can fix:

* ``User memory limit exceeded.`` - e.g. the JSON body
  ``{"error": {"code": 400, "message": "User memory limit exceeded.", "status": "INVALID_ARGUMENT"}}``
  quoted in gee-community/geemap#1465; geedim's users hit it on downloads of composites
  (leftfield-geospatial/geedim#11, #17), where the advice is to shrink the tiles by hand.
* ``Computation timed out.`` - e.g. ``HttpError 400 ... returned "Computation timed out."``
  in gee-community/geemap#1790; "Google returns HTTP status 400 with a text response
  `Computation timed out.`" (Open-EO/openeo-earthengine-driver#18).

Smaller requests need less memory and time, so the engine splits such a request - first
into fewer packed images, then into window halves - retries the parts and assembles them
exactly. The size that worked is remembered per *scope* (one opened Dataset) in this
process, so the following requests of that Dataset go straight to it. Any other 400
still fails at once with the server's message. A request that fails even as one pixel of
one image raises ``ComputationTooHeavyError`` (no endless splitting).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from eexarray.geometry import Window
from eexarray.transport import EarthEngineRequestError

# Lower-case fragments of the messages that mean "too heavy" (see the module docstring).
HEAVY_MESSAGES = ("user memory limit exceeded", "computation timed out")
# Scopes remembered per process (one per opened Dataset that had to split); oldest dropped first.
MEMO_SIZE = 1024


class ComputationTooHeavyError(EarthEngineRequestError):
    """Earth Engine refused a computation as too heavy even for one pixel of one image."""


def is_too_heavy(error: BaseException) -> bool:
    """Whether ``error`` is Earth Engine's 400 for a computation too heavy (split it and retry)."""
    if not isinstance(error, EarthEngineRequestError) or isinstance(error, ComputationTooHeavyError):
        return False
    message = error.server_message.lower()
    return error.status == 400 and any(fragment in message for fragment in HEAVY_MESSAGES)


@dataclass(frozen=True)
class WorkingSize:
    """The largest request known to work in a scope: output pixels, and images per packed request."""

    pixels: int | None = None
    images: int | None = None


class SplitMemo:
    """Working sizes per scope, shared by the threads of a process (the smallest size wins)."""

    def __init__(self, capacity: int = MEMO_SIZE) -> None:
        self._sizes: OrderedDict[str, WorkingSize] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def get(self, scope: str) -> WorkingSize:
        with self._lock:
            return self._sizes.get(scope, WorkingSize())

    def record(self, scope: str, pixels: int | None, images: int | None) -> None:
        """Remember a size that worked (None: that dimension was not split)."""
        with self._lock:
            known = self._sizes.pop(scope, WorkingSize())
            self._sizes[scope] = WorkingSize(_smaller(known.pixels, pixels), _smaller(known.images, images))
            while len(self._sizes) > self._capacity:
                self._sizes.popitem(last=False)

    def forget(self, scope: str) -> None:
        with self._lock:
            self._sizes.pop(scope, None)


def _smaller(known: int | None, new: int | None) -> int | None:
    return new if known is None else known if new is None else min(known, new)


MEMO = SplitMemo()


def halves(window: Window) -> tuple[Window, Window]:
    """``window`` cut in two across its longer side (it must hold at least two pixels)."""
    if window.height >= window.width:
        middle = window.row_start + window.height // 2
        return (
            Window(window.row_start, middle, window.col_start, window.col_stop),
            Window(middle, window.row_stop, window.col_start, window.col_stop),
        )
    middle = window.col_start + window.width // 2
    return (
        Window(window.row_start, window.row_stop, window.col_start, middle),
        Window(window.row_start, window.row_stop, middle, window.col_stop),
    )


def tiles_within(window: Window, pixels: int) -> list[Window]:
    """``window`` halved (as a failed request is) until every piece holds at most ``pixels`` pixels."""
    if window.size <= max(1, pixels):
        return [window]
    first, second = halves(window)
    return tiles_within(first, pixels) + tiles_within(second, pixels)


# fetch(window, first, stop): the arrays (keyed by final names) of items [first, stop) on window.
Fetch = Callable[[Window, int, int], dict[str, np.ndarray]]


@dataclass(frozen=True)
class SplitRequest:
    """One computed request that may split: its items (packed images; one for a single image),
    the names each item's bands come back under, and the dtype of every name."""

    fetch: Fetch
    names: Sequence[Sequence[str]]  # per item
    dtypes: dict[str, np.dtype]
    scope: str
    what: str  # for the error when nothing is small enough

    def run(self, window: Window) -> dict[str, np.ndarray]:
        """All items on ``window``, in requests no larger than the scope's working size."""
        return self._run(window, 0, len(self.names), top=(window.size, len(self.names)))

    def _run(self, window: Window, first: int, stop: int, *, top: tuple[int, int]) -> dict[str, np.ndarray]:
        size = MEMO.get(self.scope)
        step = stop - first if size.images is None else max(1, size.images)
        windows = [window] if size.pixels is None else tiles_within(window, size.pixels)
        parts = [(part, lo, min(lo + step, stop)) for lo in range(first, stop, step) for part in windows]
        if len(parts) == 1:
            return self._attempt(window, first, stop, top=top)
        return self._assemble(window, [(part, self._attempt(*part, top=top)) for part in parts])

    def _attempt(self, window: Window, first: int, stop: int, *, top: tuple[int, int]) -> dict[str, np.ndarray]:
        """One request; on a "too heavy" 400, its two halves (each split further as needed).
        ``top``: (pixels, images) of the request as first planned, to tell what was split."""
        try:
            result = self.fetch(window, first, stop)
        except EarthEngineRequestError as error:
            if not is_too_heavy(error):
                raise
            if stop - first > 1:  # fewer packed images first: the window stays one piece
                middle = first + (stop - first) // 2
                parts = [(window, first, middle), (window, middle, stop)]
            elif window.size > 1:
                one, two = halves(window)
                parts = [(one, first, stop), (two, first, stop)]
            else:
                raise ComputationTooHeavyError(
                    f"Earth Engine refused {self.what} as too heavy even for one pixel of one image "
                    f"({error.server_message!r}): splitting cannot help. Make the computation lighter "
                    "(fewer input images, a simpler expression, a coarser scale).",
                    status=error.status,
                    server_message=error.server_message,
                    request=error.request,
                ) from error
            # The second part starts at the size the first one found to work.
            return self._assemble(window, [(part, self._run(*part, top=top)) for part in parts])
        pixels, images = window.size, stop - first
        if (pixels, images) != top:
            MEMO.record(self.scope, pixels if pixels < top[0] else None, images if images < top[1] else None)
        return result

    def _assemble(
        self, window: Window, parts: list[tuple[tuple[Window, int, int], dict[str, np.ndarray]]]
    ) -> dict[str, np.ndarray]:
        result: dict[str, np.ndarray] = {}
        for (part_window, _, _), arrays in parts:
            for name, values in arrays.items():
                if part_window == window:
                    result[name] = values
                    continue
                if name not in result:
                    result[name] = np.empty(window.shape, self.dtypes[name])
                result[name][part_window.relative_to(window).slices()] = values
        return result
