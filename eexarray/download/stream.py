"""Fetch blocks in a bounded sliding window and hand each to the writer as it arrives.

Up to ``depth`` blocks are requested at once (``blocks_in_flight``: enough to keep
``max_concurrency`` requests busy, few enough to fit ``memory_limit``). Blocks are
taken in plan order: the oldest block is awaited, written and dropped before the
next one is requested, so at most ``depth`` blocks of pixels exist at any time,
whatever the size of the output. Requests run in the process's fetch pool, with
the transport's retries and concurrency cap.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from eexarray.download.plan import Block, BlockPlan, blocks_in_flight
from eexarray.download.progress import ProgressBar
from eexarray.download.target import DownloadTarget
from eexarray.download.writer import BlockWriter, write_failed


@dataclass(frozen=True)
class StreamReport:
    blocks: int  # blocks fetched and written by this run
    skipped: int  # blocks an earlier run had already written (resume)
    requests: int
    bytes: int  # decoded pixel bytes
    depth: int  # blocks kept in flight


def stream_blocks(
    target: DownloadTarget, plan: BlockPlan, writer: BlockWriter, *, memory_limit: int, progress: ProgressBar | None
) -> StreamReport:
    done = writer.done_blocks()
    todo = [block for block in plan.blocks() if block.index not in done]
    first = plan.block((0, 0, 0))
    requests_per_block = target.requests_per_block(first.times, first.window)
    depth = blocks_in_flight(plan, memory_limit, target.source.config.max_concurrency, requests_per_block)
    if progress is not None:
        progress.total = len(todo)
        progress.total_bytes = sum(plan.block_bytes(block) for block in todo)
    pending: deque[tuple[Block, Any]] = deque()
    upcoming = iter(todo)
    written = requests = nbytes = 0
    try:
        while True:
            while len(pending) < depth:
                block = next(upcoming, None)
                if block is None:
                    break
                pending.append((block, target.start_read(block.times, block.window)))
            if not pending:
                break
            block, read = pending.popleft()
            fetched = read.result()
            arrays = [fetched[position] for position in target.band_positions]
            del fetched
            try:
                writer.write(block, arrays)
            except OSError as error:  # a full disk, a file size limit...: say what was being written
                raise write_failed(writer.path, error, writer.resumable) from error
            block_requests = getattr(read, "request_count", requests_per_block)
            del arrays, read
            written += 1
            requests += block_requests
            nbytes += plan.block_bytes(block)
            if progress is not None:
                progress.update(1, plan.block_bytes(block), block_requests)
    except BaseException:
        for _, read in pending:
            read.cancel()
        raise
    finally:
        if progress is not None:
            progress.close()
    return StreamReport(written, len(done), requests, nbytes, depth)
