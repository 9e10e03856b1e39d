"""Keep many requests in flight while dask runs only a few threads; pack time series.

Dask's threaded scheduler runs as many tasks at once as the machine has cores
(2 here), and a task that waits on the network holds one of them. If each chunk
task fetched its own pixels, 2 requests would be in flight while Earth Engine
allows 40. So a compute plans ahead. When dask culls the graph (graph.py), every
band layer records in the compute's ``FetchPlan`` which of its blocks are needed.
The first task that runs starts a ``Prefetcher`` that keeps up to
``max_concurrency`` requests in flight in the fetch pool; tasks then only *take*
their block, waiting if it is still on the wire.

What exactly a task needs from its block (the block, or the small window a
``ds.isel`` cut out of it) is only known when the task runs, because dask fuses
the slicing into our task (``getter`` semantics). So the prefetcher learns from
what it sees: the window a task asked for at one spatial position is predicted
for the other time blocks at that position, and when every task so far wanted
whole blocks, whole blocks are predicted everywhere. Blocks it cannot predict
are fetched when their task asks. Consecutive time blocks with the same
prediction are read together, which the source packs into one ``computePixels``
request when the window is small (a time series at a point costs one or two
requests, not one per image).

Each read carries every band the compute needs from its blocks, and is dropped
from memory once each of those bands was taken, so memory is bounded by the
requests in flight, not by the region.

Plans do not travel to other processes (``FetchPlan.__reduce__``): on a
dask.distributed worker each task reads what it needs directly, since a worker
cannot know which blocks the scheduler will give it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from eexarray.backend.source import PendingRead, PixelSource
from eexarray.geometry import Window

BlockIndex = tuple[int, int, int]  # (time block, row block, col block)
Position = tuple[int, int]  # (row block, col block)
# What a task needs from its block: time steps and window, relative to the block.
Need = tuple[tuple[int, ...], Window]
_Item = TypeVar("_Item")  # what a queue holds: block time indices or positions

# A prefetcher nobody took from for this long belongs to an abandoned compute.
IDLE_SECONDS = 120.0


@dataclass(frozen=True)
class BlockLayout:
    """How the dataset's (time, y, x) extent is cut into dask blocks."""

    time_chunks: tuple[int, ...]
    row_chunks: tuple[int, ...]
    col_chunks: tuple[int, ...]

    def times(self, block: int) -> range:
        start = sum(self.time_chunks[:block])
        return range(start, start + self.time_chunks[block])

    def window(self, row_block: int, col_block: int) -> Window:
        row_start = sum(self.row_chunks[:row_block])
        col_start = sum(self.col_chunks[:col_block])
        return Window(
            row_start, row_start + self.row_chunks[row_block], col_start, col_start + self.col_chunks[col_block]
        )

    def full_need(self, block: BlockIndex) -> Need:
        return (
            tuple(range(self.time_chunks[block[0]])),
            Window(0, self.row_chunks[block[1]], 0, self.col_chunks[block[2]]),
        )


class FetchPlan:
    """The blocks one compute needs, each with the band positions needed from it."""

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

    def start(
        self, block: BlockIndex, need: Need, bands: tuple[int, ...], more_times: tuple[int, ...] = ()
    ) -> PendingRead:
        """Read ``need`` of ``block`` (plus absolute ``more_times`` at the same window) for ``bands``."""
        times = self.layout.times(block[0])
        absolute = tuple(times[t] for t in need[0]) + more_times
        block_window = self.layout.window(block[1], block[2])
        window = need[1].shift(block_window.row_start, block_window.col_start)
        return self.source.start_read(absolute, window, bands)

    def take(self, block: BlockIndex, band: int, need: Need, bands: tuple[int, ...] = ()) -> np.ndarray:
        """``band`` of ``need`` of ``block`` as (time, rows, cols).

        In the process that planned the compute, through its prefetcher; elsewhere (a
        dask.distributed worker, where plans do not travel) through the per-process
        coalescer, which fetches ``bands`` (the block's needed bands) in one request.
        """
        if band in self.blocks.get(block, ()):
            return _prefetcher(self).take(block, band, need)
        return _COALESCER.take(self, block, band, need, bands if band in bands else (band,))


@dataclass
class _Entry:
    """One block's share of a read: its time steps in the read, and the bands not yet taken."""

    read: PendingRead
    offset: int
    count: int
    remaining: set[int]
    group: list[tuple[BlockIndex, Need]] = field(default_factory=list)


class Prefetcher:
    def __init__(self, plan: FetchPlan) -> None:
        self.plan = plan
        self.source = plan.source
        self.layout = plan.layout
        self.cap = plan.source.config.max_concurrency
        self.entries: dict[tuple[BlockIndex, Need], _Entry] = {}
        self.started: set[tuple[BlockIndex, Need]] = set()
        self.live_entries: dict[int, int] = {}  # id(read) -> entries not yet consumed
        self.in_flight = 0  # requests of reads not yet fully consumed
        # Per position, the first need seen there, and whether it asked for all its block's time steps.
        self.observed: dict[Position, tuple[Need, bool]] = {}
        self.only_full_blocks = True
        # Per spatial position, its planned time blocks in order; positions wait until predictable.
        self.queues: dict[Position, deque[int]] = {}
        for block in sorted(plan.blocks):
            self.queues.setdefault((block[1], block[2]), deque()).append(block[0])
        self.unvisited: deque[Position] = deque(sorted(self.queues))
        self.ready: deque[Position] = deque()
        # Dask's order is its own (often descending): look ahead in the direction tasks move.
        self.rank = {position: index for index, position in enumerate(self.unvisited)}
        self.last_taken: tuple[int, int] | None = None
        self.descending = False
        self.direction_known = False
        self.lock = threading.Lock()
        self.last_used = time.monotonic()

    # -- prediction ---------------------------------------------------------------------
    def _observe(self, block: BlockIndex, need: Need) -> None:
        position = (block[1], block[2])
        if position in self.observed:
            return
        full = self.layout.full_need(block)
        self.observed[position] = (need, need[0] == full[0])
        if need != full:
            self.only_full_blocks = False
        self.ready.append(position)

    def _predict(self, block: BlockIndex) -> Need | None:
        full = self.layout.full_need(block)
        seen = self.observed.get((block[1], block[2]))
        if seen is None:
            return full if self.observed and self.only_full_blocks else None
        (times, window), all_times = seen
        if all_times:
            times = full[0]  # "every time step of the block" carries over to blocks of other lengths
        elif any(t >= len(full[0]) for t in times):
            return None
        return (times, window)

    # -- reads --------------------------------------------------------------------------
    def _start_group(self, block: BlockIndex, need: Need) -> None:
        bands = tuple(sorted(self.plan.blocks[block]))
        group = [(block, need)]
        block_window = self.layout.window(block[1], block[2])
        window = need[1].shift(block_window.row_start, block_window.col_start)
        times = [self.layout.times(block[0])[t] for t in need[0]]
        baseline = self.source.requests_for(range(len(times)), window, bands)
        queue = self.queues.get((block[1], block[2]), deque())
        # Read following time blocks at the same window along, while that costs no extra request.
        while queue:
            following = (queue[-1] if self.descending else queue[0], block[1], block[2])
            if tuple(sorted(self.plan.blocks[following])) != bands or self._predict(following) != need:
                break
            if (following, need) in self.started:
                self._pop(queue)
                continue
            extra = [self.layout.times(following[0])[t] for t in need[0]]
            if self.source.requests_for(range(len(times) + len(extra)), window, bands) > max(1, baseline):
                break
            self._pop(queue)
            group.append((following, need))
            times.extend(extra)
        read = self.plan.start(block, need, bands, tuple(times[len(need[0]) :]))
        self.in_flight += read.request_count
        self.live_entries[id(read)] = len(group)
        offset = 0
        for member, member_need in group:
            count = len(member_need[0])
            self.entries[(member, member_need)] = _Entry(read, offset, count, set(bands), group)
            self.started.add((member, member_need))
            offset += count

    def _pop(self, queue: deque[_Item]) -> _Item:
        return queue.pop() if self.descending else queue.popleft()

    def _next_position(self) -> Position | None:
        """A spatial position with planned blocks whose needs can be predicted."""
        while self.ready:
            if self.queues.get(self.ready[0]):
                return self.ready[0]
            self.ready.popleft()
        if self.observed and self.only_full_blocks:
            while self.unvisited:
                position = self._pop(self.unvisited)
                if self.queues.get(position):
                    self.ready.append(position)
                    return position
        return None

    def _top_up(self) -> None:
        # Until two blocks showed the direction dask walks in, look ahead only a little.
        limit = self.cap if self.direction_known else min(self.cap, 4)
        while self.in_flight < limit:
            position = self._next_position()
            if position is None:
                return
            block = (self._pop(self.queues[position]), *position)
            need = self._predict(block)
            if need is None or (block, need) in self.started:
                continue
            self._start_group(block, need)

    def _release(self, entry: _Entry) -> None:
        key = id(entry.read)
        self.live_entries[key] -= 1
        if self.live_entries[key] == 0:
            del self.live_entries[key]
            self.in_flight -= entry.read.request_count

    # -- the task side ------------------------------------------------------------------
    def take(self, block: BlockIndex, band: int, need: Need) -> np.ndarray:
        with self.lock:
            self.last_used = time.monotonic()
            here = (self.rank.get((block[1], block[2]), 0), block[0])
            if self.last_taken is None:
                # First guess: a compute that starts in the upper half of the plan walks down.
                self.descending = here[0] * 2 >= len(self.rank) and len(self.rank) > 1
            elif here != self.last_taken:
                self.descending = here < self.last_taken
                self.direction_known = True
            self.last_taken = here
            self._observe(block, need)
            key = (block, need)
            entry = self.entries.get(key)
            if entry is None and key not in self.started:
                queue = self.queues.get((block[1], block[2]))
                if queue and block[0] in queue:
                    queue.remove(block[0])
                self._start_group(block, need)
                entry = self.entries[key]
            if entry is not None and band not in entry.remaining:
                entry = None  # taken once already (a retried task): read it again below
            self._top_up()
        if entry is None:
            return self.plan.start(block, need, (band,)).result()[band]
        try:
            arrays = entry.read.result()
        except BaseException:
            with self.lock:
                for member in entry.group:  # let retried tasks read afresh
                    if self.entries.pop(member, None) is not None:
                        self.started.discard(member)
                        self._release(entry)
            raise
        with self.lock:
            entry.remaining.discard(band)
            if not entry.remaining and self.entries.get(key) is entry:
                del self.entries[key]
                self._release(entry)
                self._top_up()
            if not self.entries and not any(self.queues.values()):
                _forget(self.plan.token)
        return arrays[band][entry.offset : entry.offset + entry.count]

    def cancel(self) -> None:
        with self.lock:
            for entry in self.entries.values():
                entry.read.cancel()
            self.entries.clear()


class Coalescer:
    """Per process: one read for the bands of a block that several band tasks want.

    Used where no plan is available. The first band task of a block starts a read
    of all the block's needed bands; the others take their arrays from it. Reads
    whose other bands never come (their tasks ran elsewhere) are dropped, oldest
    first, beyond ``capacity``.
    """

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self.reads: dict[tuple[object, ...], tuple[PendingRead, set[int]]] = {}
        self.lock = threading.Lock()

    def take(self, plan: FetchPlan, block: BlockIndex, band: int, need: Need, bands: tuple[int, ...]) -> np.ndarray:
        if len(bands) < 2:
            return plan.start(block, need, (band,)).result()[band]
        key = (plan.source, plan.layout, block, need, bands)
        with self.lock:
            entry = self.reads.get(key)
            if entry is None or band not in entry[1]:
                entry = (plan.start(block, need, bands), set(bands))
                self.reads[key] = entry
                while len(self.reads) > self.capacity:
                    oldest = next(iter(self.reads))
                    self.reads.pop(oldest)[0].cancel()
        read, remaining = entry
        arrays = read.result()
        with self.lock:
            remaining.discard(band)
            if not remaining and self.reads.get(key) is entry:
                del self.reads[key]
        return arrays[band]


_COALESCER = Coalescer()
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
