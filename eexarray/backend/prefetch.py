"""Keep many requests in flight while dask runs only a few threads.

Dask's threaded scheduler runs as many tasks at once as the machine has cores
(2 here), and a task that waits on the network holds one of them. If each chunk
task fetched its own pixels, 2 requests would be in flight while Earth Engine
allows 40. So a compute plans ahead: when the graph is culled (see graph.py) the
full list of blocks and bands that this compute needs is known, and the first
task that runs starts a ``Prefetcher`` that keeps up to ``depth`` blocks in flight
in the fetch pool, in plan order. A task then only *takes* its block (waiting if
it is still on the wire). Each block's request carries every band the compute
needs from it, and is dropped from memory once each of those bands was taken, so
memory is bounded by ``depth`` blocks, not by the region.

Plans do not travel to other processes (``FetchPlan.__reduce__``): on a
dask.distributed worker each task reads its own block directly, since a worker
cannot know which blocks the scheduler will give it.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from eexarray.backend.source import PendingRead, PixelSource
from eexarray.geometry import Window

BlockIndex = tuple[int, int, int]  # (time block, row block, col block)

# A prefetcher nobody took from for this long belongs to an abandoned compute.
IDLE_SECONDS = 120.0


@dataclass(frozen=True)
class BlockLayout:
    """How the dataset's (time, y, x) extent is cut into dask blocks."""

    time_chunks: tuple[int, ...]
    row_chunks: tuple[int, ...]
    col_chunks: tuple[int, ...]

    @staticmethod
    def _starts(chunks: tuple[int, ...]) -> list[int]:
        starts = [0]
        for size in chunks[:-1]:
            starts.append(starts[-1] + size)
        return starts

    def times(self, block: int) -> range:
        start = sum(self.time_chunks[:block])
        return range(start, start + self.time_chunks[block])

    def window(self, row_block: int, col_block: int) -> Window:
        row_start = sum(self.row_chunks[:row_block])
        col_start = sum(self.col_chunks[:col_block])
        return Window(
            row_start, row_start + self.row_chunks[row_block], col_start, col_start + self.col_chunks[col_block]
        )


class FetchPlan:
    """The blocks one compute needs, each with the band positions needed from it (in order)."""

    def __init__(self, source: PixelSource, layout: BlockLayout, blocks: Mapping[BlockIndex, Iterable[int]]):
        self.token = uuid.uuid4().hex
        self.source = source
        self.layout = layout
        self.blocks: dict[BlockIndex, set[int]] = {block: set(bands) for block, bands in blocks.items()}

    def add(self, block: BlockIndex, band: int) -> None:
        """Record that this compute needs ``band`` of ``block`` (called while culling)."""
        self.blocks.setdefault(block, set()).add(band)

    def __reduce__(self) -> tuple[object, ...]:
        # Graphs shipped to other processes carry no plan: see the module docstring.
        return (FetchPlan, (self.source, self.layout, {}))

    def read_now(self, block: BlockIndex, bands: tuple[int, ...]) -> PendingRead:
        time_block, row_block, col_block = block
        return self.source.start_read(
            self.layout.times(time_block), self.layout.window(row_block, col_block), bands
        )

    def take(self, block: BlockIndex, band: int) -> np.ndarray:
        """Band ``band`` of ``block`` as (time, rows, cols), through this process's prefetcher."""
        if block not in self.blocks:
            return self.read_now(block, (band,)).result()[band]
        return _prefetcher(self).take(block, band)


class Prefetcher:
    def __init__(self, plan: FetchPlan) -> None:
        self.plan = plan
        self.order = sorted(plan.blocks)
        self.remaining = {block: set(bands) for block, bands in plan.blocks.items()}
        self.pending: dict[BlockIndex, PendingRead] = {}
        self.next_position = 0
        self.lock = threading.Lock()
        self.last_used = time.monotonic()
        source = plan.source
        first_block = self.order[0] if self.order else (0, 0, 0)
        requests_per_block = max(
            1,
            len(plan.layout.times(first_block[0]))
            * len(source.plan(plan.layout.window(first_block[1], first_block[2]), sorted(plan.blocks.get(first_block, {0})))),
        )
        self.depth = max(2, math.ceil(source.config.max_concurrency / requests_per_block))

    def _start(self, block: BlockIndex) -> None:
        self.pending[block] = self.plan.read_now(block, tuple(sorted(self.remaining[block])))

    def _top_up(self) -> None:
        while len(self.pending) < self.depth and self.next_position < len(self.order):
            block = self.order[self.next_position]
            self.next_position += 1
            if block in self.remaining and block not in self.pending:
                self._start(block)

    def take(self, block: BlockIndex, band: int) -> np.ndarray:
        with self.lock:
            self.last_used = time.monotonic()
            if band not in self.remaining.get(block, ()):
                read = None  # already delivered once (a retried task): fetch it again
            else:
                if block not in self.pending:
                    self._start(block)
                read = self.pending[block]
                self._top_up()
        if read is None:
            return self.plan.read_now(block, (band,)).result()[band]
        try:
            arrays = read.result()
        except BaseException:
            with self.lock:
                if self.pending.get(block) is read:
                    del self.pending[block]  # let a retried task fetch afresh
            raise
        with self.lock:
            bands = self.remaining.get(block)
            if bands is not None:
                bands.discard(band)
                if not bands:
                    del self.remaining[block]
                    self.pending.pop(block, None)
                    self._top_up()
            if not self.remaining:
                _forget(self.plan.token)
        return arrays[band]

    def cancel(self) -> None:
        with self.lock:
            for read in self.pending.values():
                read.cancel()
            self.pending.clear()


_prefetchers: dict[str, Prefetcher] = {}
_registry_lock = threading.Lock()


def _prefetcher(plan: FetchPlan) -> Prefetcher:
    with _registry_lock:
        prefetcher = _prefetchers.get(plan.token)
        if prefetcher is None:
            now = time.monotonic()
            for token, other in list(_prefetchers.items()):
                if now - other.last_used > IDLE_SECONDS:
                    other.cancel()
                    del _prefetchers[token]
            prefetcher = _prefetchers[plan.token] = Prefetcher(plan)
        return prefetcher


def _forget(token: str) -> None:
    with _registry_lock:
        _prefetchers.pop(token, None)
