"""Run one planned read where dask put its task: on a dask.distributed worker, or in this process.

* On a **dask.distributed worker** the task submits its requests to the worker's
  fetch pool and then ``secede()``s while they are on the wire, so a worker with one
  thread still keeps many reads in flight; it ``rejoin()``s to hand the pixels back.
  Requests in flight across the whole cluster share one ``distributed.Semaphore``
  of ``max_concurrency`` leases (transport/cluster.py).
* With dask's **local schedulers** (threaded, synchronous) only as many tasks run as
  there are threads, so the engine looks ahead: a dask callback records, when a
  compute starts, which reads it will run; the first read task starts the next ones
  (up to ``max_concurrency`` requests, in the direction dask is walking them), and
  later tasks pick their pixels up. When the compute ends - finished or failed -
  reads nobody took are cancelled and dropped at once.

Either way a read is exactly the plan's (engine/plan.py): same requests, same
packing, on every scheduler.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eexarray.engine.plan import ReadPlan
from eexarray.engine.source import PendingRead
from eexarray.transport.cluster import use_cluster_cap

ReadKey = tuple[int, int, int]  # (time group, row block, col block)
GroupData = dict[int, np.ndarray]  # band position -> (time, rows, cols)


def read_block(plan: ReadPlan, block_id: tuple[int, ...] | None = None) -> np.ndarray:
    """The task of one read (a ``map_blocks`` function): an object array holding its bands.

    ``block_id`` is (group, row block, col block), or (row block, col block) for an image.
    A group of k time blocks returns a (k, 1, 1) array whose element i holds block i's
    pixels (views into the one read), so the graph can split it per time block without
    touching pixels.
    """
    assert block_id is not None  # map_blocks passes it
    key: ReadKey = (block_id[0], block_id[1], block_id[2]) if len(block_id) == 3 else (0, block_id[0], block_id[1])
    _remember(plan)
    data = _read_on_worker(plan, key) if _distributed_worker() else _local_take(plan, key)
    if len(block_id) == 2:
        holder = np.empty((1, 1), dtype=object)
        holder[0, 0] = BlockPixels(data, plan, key, None)
        return holder
    spans = plan.block_spans(key[0])
    holder = np.empty((len(spans), 1, 1), dtype=object)
    for index, span in enumerate(spans):
        if len(spans) == 1:
            holder[index, 0, 0] = BlockPixels(data, plan, key, None)
        else:
            start_, stop = span
            holder[index, 0, 0] = BlockPixels({b: pixels[start_:stop] for b, pixels in data.items()}, plan, key, span)
    return holder


class BandNotReadError(RuntimeError):
    """A take got a read narrowed to other bands and cannot read its own band here."""


class BlockPixels(dict[int, np.ndarray]):
    """A read's pixels by band position (for one time block when ``span`` is set), and how to
    get a band the read does not hold.

    A read narrowed to some bands (backend/narrowing.py) keeps the keys of the full read, so a
    graph merged from collections optimised apart (``to_delayed()`` of two variables, say)
    can hand a band's take a read narrowed to another band. The take then reads its own band
    (correct, one more request for that block) instead of failing. A holder travels between
    workers without its plan (which grows with the images: kilobytes, more than a small
    block's pixels); the receiving process finds the plan among those its reads ran.
    """

    def __init__(
        self, pixels: GroupData, plan: ReadPlan | None, key: ReadKey, span: tuple[int, int] | None, token: str = ""
    ) -> None:
        super().__init__(pixels)
        self.plan = plan
        self.token = plan.token if plan is not None else token
        self.key = key
        self.span = span
        self._lock = threading.Lock()  # the takes of a series share one holder: one read of a band

    def __reduce__(self) -> tuple[Any, ...]:  # pixels only: no plan, no lock (neither should travel)
        return (BlockPixels, (dict(self), None, self.key, self.span, self.token))

    def band(self, band: int) -> np.ndarray:
        found = self.get(band)
        if found is not None:
            return found
        with self._lock:  # a read narrowed to other bands: read this band's time steps here, once
            found = self.get(band)
            if found is None:
                plan = self.plan or _seen_plans.get(self.token)
                if plan is None:
                    raise BandNotReadError(
                        f"a read narrowed to bands {sorted(self)} reached the task of band {band} on a worker that "
                        "ran no read of this Dataset: compute these variables together (one dask.compute, not "
                        "collections optimised apart such as to_delayed()), or open with bands=[...]"
                    )
                times, window = plan.read_of(*self.key)
                if self.span is not None:
                    times = times[self.span[0] : self.span[1]]
                found = self[band] = plan.source.start_read(times, window, (band,)).result()[band]
        return found


# The plans whose reads ran in this process, by token (for BlockPixels.band); bounded.
_seen_plans: dict[str, ReadPlan] = {}
_seen_plans_lock = threading.Lock()
_SEEN_PLANS_MAX = 64


def _remember(plan: ReadPlan) -> None:
    if plan.token in _seen_plans:
        return
    with _seen_plans_lock:
        if len(_seen_plans) >= _SEEN_PLANS_MAX:
            _seen_plans.pop(next(iter(_seen_plans)))
        _seen_plans[plan.token] = plan


def start(plan: ReadPlan, key: ReadKey) -> PendingRead:
    times, window = plan.read_of(*key)
    return plan.source.start_read(times, window, plan.bands)


# -- dask.distributed ----------------------------------------------------------------------
def _distributed_worker() -> bool:
    if "distributed" not in sys.modules:  # a worker process always has it imported
        return False
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


def _read_on_worker(plan: ReadPlan, key: ReadKey) -> GroupData:
    from distributed import rejoin, secede

    use_cluster_cap(plan.source.config)
    pending = start(plan, key)
    secede()  # the wait is network time: let the worker run other tasks meanwhile
    try:
        return pending.result()
    finally:
        rejoin()


# -- local schedulers: look-ahead ----------------------------------------------------------
class LocalReads:
    """The reads one local compute runs from one plan, started ahead of their tasks."""

    def __init__(self, plan: ReadPlan, keys: Iterable[ReadKey]) -> None:
        self.plan = plan
        # Keys come from task names holding the plan's token (_reads_of); a name dask made by
        # fusing our tasks with the user's may carry indices of another block structure (an
        # axis dropped, say), so reads that do not exist are not started ahead.
        self.order = sorted(key for key in keys if plan.has_read(key))
        self.position = {key: index for index, key in enumerate(self.order)}
        self.cap = plan.source.config.max_concurrency
        self.pending: dict[ReadKey, PendingRead] = {}  # started, not yet taken
        self.started: set[ReadKey] = set()
        self.last: int | None = None
        self.step = 1  # +1: dask walks the reads ascending; -1: descending
        self.lock = threading.Lock()

    def take(self, key: ReadKey) -> GroupData:
        with self.lock:
            index = self.position.get(key)
            if index is not None and self.last is not None and index != self.last:
                self.step = 1 if index > self.last else -1
            self.last = index if index is not None else self.last
            read = self.pending.pop(key, None)
            if read is None:
                read = start(self.plan, key)
                self.started.add(key)
            if index is not None:
                self._top_up(index)
        return read.result()

    def _top_up(self, index: int) -> None:
        """Start the next reads in dask's direction while fewer than ``cap`` requests wait."""
        waiting = sum(read.request_count for read in self.pending.values())
        for candidate in self._ahead(index):
            if waiting >= self.cap:
                return
            key = self.order[candidate]
            if key in self.started:
                continue
            self.pending[key] = read = start(self.plan, key)
            self.started.add(key)
            waiting += read.request_count

    def _ahead(self, index: int) -> Iterable[int]:
        if self.step > 0:
            yield from range(index + 1, len(self.order))
            yield from range(index - 1, -1, -1)
        else:
            yield from range(index - 1, -1, -1)
            yield from range(index + 1, len(self.order))

    def cancel(self) -> None:
        with self.lock:
            for read in self.pending.values():
                read.cancel()
            self.pending.clear()


@dataclass(eq=False)
class _Compute:
    """One running local compute: per plan token, the keys of its reads (then their LocalReads)."""

    graph_id: int
    reads: dict[str, set[ReadKey] | LocalReads] = field(default_factory=dict)


_computes: list[_Compute] = []
_computes_lock = threading.Lock()
# token -> the read group of each time block (bounded: entries are tiny, plans come and go).
_known_plans: dict[str, tuple[int, ...]] = {}
_KNOWN_PLANS_MAX = 4096


def register_plan(plan: ReadPlan) -> None:
    """Let the compute callback recognise this plan's tasks (names end in its token)."""
    _ensure_callback()
    with _computes_lock:
        if plan.token not in _known_plans:
            if len(_known_plans) >= _KNOWN_PLANS_MAX:
                _known_plans.pop(next(iter(_known_plans)))
            _known_plans[plan.token] = tuple(plan.group_of(block) for block in range(len(plan.layout.time_chunks)))


def _local_take(plan: ReadPlan, key: ReadKey) -> GroupData:
    with _computes_lock:
        reads = None
        for compute in _computes:
            entry = compute.reads.get(plan.token)
            if entry is None:
                continue
            if not isinstance(entry, LocalReads):
                entry = compute.reads[plan.token] = LocalReads(plan, entry)
            # Two computes of one Dataset at once may narrow it to other bands (same token).
            if key in entry.position and set(plan.bands) <= set(entry.plan.bands):
                reads = entry
                break
    if reads is None:  # a compute we did not see start (another process, or no callback)
        _ensure_callback()  # so the next compute is seen
        return start(plan, key).result()
    return reads.take(key)


# Words of dask layer names whose blocks are not their input's (see _reads_of).
_RECUTTING = frozenset({"getitem", "concatenate", "rechunk"})


def _reads_of(dsk: Any) -> dict[str, set[ReadKey]]:
    """The read blocks of each known plan among the keys of a graph about to run.

    Read tasks are indexed by (group, row, col); every other task naming a plan (its bands,
    or chains dask fused with them) by (time block, row, col) of the Dataset's chunks.
    """
    found: dict[str, set[ReadKey]] = {}
    plans = _known_plans
    for key in dsk:
        if not (isinstance(key, tuple) and len(key) in (3, 4) and isinstance(key[0], str)):
            continue
        # Our names end in the plan's token, but dask may append a suffix (e.g. to_zarr(compute=False)).
        # Dask's fusion renames a chain of tasks after all of them and keeps the *last* task's
        # indices: through blockwise steps (the band take, a per-block reduction) they are the
        # Dataset's blocks, but through a step that re-cuts the blocks (a selection's
        # getitem/concatenate, a rechunk) they are that step's - starting the read they seem
        # to name would fetch a block nobody needs, so those names are skipped.
        words = key[0].split("-")
        token = next((part for part in words if part in plans), None)
        if token is None or _RECUTTING.intersection(words):
            continue
        reads = found.setdefault(token, set())
        if len(key) == 3:
            reads.add((0, key[1], key[2]))
        elif key[0].startswith(f"eexarray-read-{token}"):
            reads.add((key[1], key[2], key[3]))
        elif key[1] < len(plans[token]):
            reads.add((plans[token][key[1]], key[2], key[3]))
    return found


def _on_start(dsk: Any, state: Any) -> None:
    # The graph may hold tasks the compute does not need (dask's query planning keeps every
    # block of an array a selection cuts): the scheduler's state lists the keys it will run.
    needed = state.get("dependencies") if isinstance(state, dict) else None
    reads = _reads_of(dsk if not needed else [key for key in dsk if key in needed])
    if reads:
        with _computes_lock:
            _computes.append(_Compute(id(dsk), dict(reads)))


def _on_finish(dsk: Any, state: Any, errored: bool) -> None:
    """The compute ended: drop the reads nobody took (a failed compute holds no pixels)."""
    with _computes_lock:
        mine = [c for c in _computes if c.graph_id == id(dsk)]
        for compute in mine:
            _computes.remove(compute)
    for compute in mine:
        for entry in compute.reads.values():
            if isinstance(entry, LocalReads):
                entry.cancel()


_callback: Any = None


def _ensure_callback() -> None:
    """Keep the public dask callback that tells local computes' start and end registered.

    Dask's local scheduler swaps ``Callback.active`` for an empty set while a compute runs
    and restores it afterwards; two computes in parallel threads can restore the empty one,
    dropping our callback. So this checks membership, not just that we registered once.
    """
    global _callback
    from dask.callbacks import Callback

    with _computes_lock:
        if _callback is None:
            _callback = Callback(start_state=_on_start, finish=_on_finish)
        if _callback not in Callback.active:
            _callback.register()
