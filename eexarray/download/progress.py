"""A small text progress bar: blocks, requests, megabytes, rate and ETA, on stderr.

Hand-written rather than ``tqdm`` because it needs one line of text and no
dependency: on a terminal the line is redrawn in place (at most 5 times a
second); elsewhere (logs, CI) a line is printed every 10 % so logs stay short.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

REDRAW_SECONDS = 0.2


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:d}:{seconds:02d}"


class ProgressBar:
    """Progress of ``total`` units of work carrying ``total_bytes`` bytes; ``update`` after each unit."""

    def __init__(
        self,
        label: str,
        total: int,
        total_bytes: int,
        *,
        unit: str = "blocks",
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.label = label
        self.total = total
        self.total_bytes = total_bytes
        self.unit = unit
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.done_bytes = 0
        self.requests = 0
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self._last_printed = -1
        self._lock = threading.Lock()
        self._interactive = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, units: int = 1, nbytes: int = 0, requests: int = 0) -> None:
        with self._lock:
            self.done += units
            self.done_bytes += nbytes
            self.requests += requests
            self._draw(final=False)

    def close(self) -> None:
        with self._lock:
            self._draw(final=True)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        fraction = self.done / self.total if self.total else 1.0
        rate = self.done_bytes / elapsed / 1e6
        remaining = (elapsed / self.done * (self.total - self.done)) if self.done else None
        eta = format_duration(remaining) if remaining is not None else "?"
        filled = int(fraction * 20)
        bar = "#" * filled + "." * (20 - filled)
        return (
            f"{self.label}: {fraction:4.0%} [{bar}] {self.done}/{self.total} {self.unit}, "
            f"{self.requests} requests, {self.done_bytes / 1e6:.1f}/{self.total_bytes / 1e6:.1f} MB, "
            f"{rate:.1f} MB/s, elapsed {format_duration(elapsed)}, ETA {eta}"
        )

    def _draw(self, final: bool) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._interactive:
            if final or now - self._last_draw >= REDRAW_SECONDS:
                self.stream.write("\r" + self.line() + ("\n" if final else ""))
                self.stream.flush()
                self._last_draw = now
            return
        decile = int(10 * self.done / self.total) if self.total else 10
        if decile > self._last_decile or (final and self._last_printed != self.done):
            self._last_decile = decile
            self._last_printed = self.done
            self.stream.write(self.line() + "\n")
            self.stream.flush()
