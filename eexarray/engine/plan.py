"""The read plan of a chunked Dataset: which reads serve which dask blocks. Pure.

A *read* is one call of the engine: every band of the Dataset, one spatial block,
and a run of consecutive time blocks. Time blocks are read together (packed into
one ``computePixels`` of ``ImageCollection.toBands``) only while that costs no
more requests than reading the first of them alone, so packing never adds a
request and a time series of a small window costs one request instead of one per
image.

The plan is made once, when the Dataset is chunked, and it lives in the dask
graph (one task per read): every scheduler - threaded, processes, distributed,
Beam - runs exactly the same requests, with no state shared between processes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate

from eexarray.engine.source import PixelSource
from eexarray.geometry import Window


@dataclass(frozen=True)
class BlockLayout:
    """How the Dataset's (time, y, x) extent is cut into dask blocks."""

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


def time_groups(source: PixelSource, layout: BlockLayout, bands: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Runs ``(first, stop)`` of time blocks read together, the same at every spatial position.

    Sized on the largest block window (the first: dask puts remainders last), so a run
    fits one request's worth of packing at every position.
    """
    count = len(layout.time_chunks)
    if count == 1:
        return ((0, 1),)
    window = layout.window(0, 0)
    capacity = source.images_per_packed_request(window, bands)
    groups = []
    first = 0
    while first < count:
        stop = first + 1
        if capacity:
            images = layout.time_chunks[first]
            # The run costs what its first block costs: ceil(images / capacity) requests.
            budget = -(-images // capacity) * capacity
            while stop < count and images + layout.time_chunks[stop] <= budget:
                images += layout.time_chunks[stop]
                stop += 1
        groups.append((first, stop))
        first = stop
    return tuple(groups)


@dataclass(frozen=True)
class ReadPlan:
    """Everything a read task needs: the source, the blocks, which time blocks go together.

    ``token`` names the plan (the graph's keys carry it), so a process can find the plan
    of the reads it is about to run (engine/run.py's look-ahead).
    """

    token: str
    source: PixelSource
    layout: BlockLayout
    bands: tuple[int, ...]
    groups: tuple[tuple[int, int], ...]
    _time_starts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _group_of_block: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_time_starts", (0, *accumulate(self.layout.time_chunks)))
        owners = tuple(group for group, (first, stop) in enumerate(self.groups) for _ in range(first, stop))
        object.__setattr__(self, "_group_of_block", owners)

    @classmethod
    def create(cls, token: str, source: PixelSource, layout: BlockLayout, bands: tuple[int, ...]) -> ReadPlan:
        return cls(token, source, layout, bands, time_groups(source, layout, bands))

    @property
    def read_name(self) -> str:
        """The name of the read tasks in the dask graph: ``(read_name, group, row block, col block)``."""
        return f"eexarray-read-{self.token}"

    @property
    def group_blocks(self) -> tuple[int, ...]:
        """Time blocks per read group (the time chunks of the graph's object array of reads)."""
        return tuple(stop - first for first, stop in self.groups)

    def group_of(self, time_block: int) -> int:
        """The read group holding ``time_block``."""
        return self._group_of_block[time_block]

    def block_spans(self, group: int) -> tuple[tuple[int, int], ...]:
        """Each time block of ``group`` as ``(start, stop)`` offsets into the group's read."""
        first, stop = self.groups[group]
        base = self._time_starts[first]
        starts = self._time_starts
        return tuple((starts[block] - base, starts[block + 1] - base) for block in range(first, stop))

    def has_read(self, key: tuple[int, int, int]) -> bool:
        """Is ``(group, row block, col block)`` a read of this plan?"""
        group, row_block, col_block = key
        layout = self.layout
        return (
            0 <= group < len(self.groups)
            and 0 <= row_block < len(layout.row_chunks)
            and (0 <= col_block < len(layout.col_chunks))
        )

    def read_of(self, group: int, row_block: int, col_block: int) -> tuple[range, Window]:
        """Absolute time steps and window of one read."""
        first, stop = self.groups[group]
        starts = self._time_starts
        return range(starts[first], starts[stop]), self.layout.window(row_block, col_block)

    def read_keys(self, blocks: tuple[tuple[int, ...], ...] | None = None) -> list[tuple[int, int, int]]:
        """Keys ``(group, row block, col block)`` of the reads serving ``blocks`` (all reads: None).

        ``blocks``: the block indices needed per dim, (time, rows, cols) or (rows, cols) for
        an image; a read is needed when one of its time blocks is.
        """
        rows = range(len(self.layout.row_chunks))
        cols = range(len(self.layout.col_chunks))
        groups: Iterable[int] = range(len(self.groups))
        if blocks is not None:
            *time_blocks, rows_needed, cols_needed = blocks
            rows, cols = sorted(set(rows_needed)), sorted(set(cols_needed))  # type: ignore[assignment]
            if time_blocks:
                wanted = set(time_blocks[0])
                groups = [g for g, (first, stop) in enumerate(self.groups) if wanted.intersection(range(first, stop))]
        return [(group, row, col) for group in groups for row in rows for col in cols]

    def request_count(self, group: int, row_block: int, col_block: int) -> int:
        times, window = self.read_of(group, row_block, col_block)
        return self.source.requests_for(times, window, self.bands)

    def __dask_tokenize__(self) -> str:
        return self.token
