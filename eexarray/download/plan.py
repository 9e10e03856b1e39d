"""How a download is cut into blocks, and how many may be in flight. Pure.

A block is one tile of the output grid x one or more time steps, with every
band. Tiles are:

* at most the request tile (``auto_tile_shape``: as large as one request allows);
* small enough that the download's memory model (below) keeps two blocks in
  flight within ``memory_limit``;
* aligned: a side is a multiple of 256 px (128 below 1024 px, 16 below 256 px),
  so every block covers whole GeoTIFF tiles and GDAL never has to re-read and
  re-compress a partly written tile.

A block holds one time step, except when one tile covers the whole region (a
small region of a long collection): then a block holds as many time steps as
one request carries (1024 bands, 48 MiB), so the source can pack them into one
``computePixels`` (see engine/source.py) instead of one request per image.

Memory model: a block of B pixel bytes costs about 2B while in flight (the response
body and the decoded arrays overlap) and about 2B more while it is written (the
writer's interleaved, promoted or stacked copy). So ``memory_limit`` admits
``(memory_limit - WRITE_COST*B) // (FLIGHT_COST*B)`` blocks in flight, and tiles are
at most ``memory_limit / 6`` bytes so that at least two are.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from eexarray.geometry import Window
from eexarray.planning import DEFAULT_LIMITS, RequestLimits, auto_tile_shape

MIN_SIDE = 16
TIFF_TILE = 256
FLIGHT_COST = 2  # bytes held per pixel byte of a block in flight
WRITE_COST = 2  # bytes held per pixel byte of the block being written


@dataclass(frozen=True)
class Block:
    """Time steps ``times`` of one tile: ``index`` = (time block, row block, col block)."""

    index: tuple[int, int, int]
    times: range
    window: Window


def alignment(side: int) -> int:
    return 256 if side >= 1024 else 128 if side >= 256 else MIN_SIDE


def align(side: int, full: int) -> int:
    """``side`` rounded down to its alignment unit (or the whole axis when it covers it)."""
    if side >= full:
        return full
    unit = alignment(side)
    return max(MIN_SIDE, side // unit * unit)


def tiff_tile(block_side: int, full: int) -> int:
    """A GeoTIFF tile side (multiple of 16) that divides the block side, so blocks cover whole tiles."""
    if block_side >= full:
        return TIFF_TILE
    return math.gcd(block_side, TIFF_TILE)


@dataclass(frozen=True)
class BlockPlan:
    height: int
    width: int
    time_count: int
    tile_rows: int
    tile_cols: int
    pixel_bytes: int  # bytes of one pixel of every band (no mask byte: it is not kept)
    time_step: int = 1  # time steps per block

    @property
    def time_starts(self) -> range:
        return range(0, self.time_count, self.time_step)

    @property
    def row_starts(self) -> range:
        return range(0, self.height, self.tile_rows)

    @property
    def col_starts(self) -> range:
        return range(0, self.width, self.tile_cols)

    @property
    def block_count(self) -> int:
        return len(self.time_starts) * len(self.row_starts) * len(self.col_starts)

    @property
    def max_block_bytes(self) -> int:
        pixels = min(self.tile_rows, self.height) * min(self.tile_cols, self.width)
        return min(self.time_step, self.time_count) * pixels * self.pixel_bytes

    @property
    def total_bytes(self) -> int:
        return self.time_count * self.height * self.width * self.pixel_bytes

    @property
    def tiff_tile_shape(self) -> tuple[int, int]:
        return tiff_tile(self.tile_rows, self.height), tiff_tile(self.tile_cols, self.width)

    def block(self, index: tuple[int, int, int]) -> Block:
        time_block, row_block, col_block = index
        row, col, time = row_block * self.tile_rows, col_block * self.tile_cols, time_block * self.time_step
        window = Window(row, min(row + self.tile_rows, self.height), col, min(col + self.tile_cols, self.width))
        return Block(index, range(time, min(time + self.time_step, self.time_count)), window)

    def blocks(self) -> Iterator[Block]:
        """Every block: time block by time block, tiles in row-major order."""
        for time_block in range(len(self.time_starts)):
            for row_block in range(len(self.row_starts)):
                for col_block in range(len(self.col_starts)):
                    yield self.block((time_block, row_block, col_block))

    def block_bytes(self, block: Block) -> int:
        return len(block.times) * block.window.size * self.pixel_bytes


def plan_blocks(
    height: int,
    width: int,
    time_count: int,
    dtypes: Sequence[np.dtype | str],
    memory_limit: int,
    *,
    tile: tuple[int, int] | None = None,
    time_step: int | None = None,
    limits: RequestLimits = DEFAULT_LIMITS,
) -> BlockPlan:
    """Blocks for a ``time_count`` x ``height`` x ``width`` download of bands ``dtypes``.

    ``tile`` and ``time_step`` force the block shape (a resumed Zarr store keeps its own).
    """
    pixel_bytes = sum(np.dtype(dtype).itemsize for dtype in dtypes)
    if tile is None:
        rows, cols = auto_tile_shape(height, width, dtypes, limits)
        budget_pixels = max(1, memory_limit // (2 * FLIGHT_COST + WRITE_COST) // pixel_bytes)
        if rows * cols > budget_pixels:
            rows = min(height, max(MIN_SIDE, math.isqrt(budget_pixels)))
            cols = min(width, max(MIN_SIDE, budget_pixels // rows))
        tile = (align(rows, height), align(cols, width))
    if time_step is None:
        time_step = _time_step(height, width, time_count, dtypes, memory_limit, tile, limits)
    plan = BlockPlan(height, width, time_count, tile[0], tile[1], pixel_bytes, time_step)
    needed = (FLIGHT_COST + WRITE_COST) * plan.max_block_bytes
    if needed > memory_limit:
        raise ValueError(
            f"memory_limit={memory_limit} bytes cannot hold one block of {plan.tile_rows}x{plan.tile_cols} px "
            f"of {len(dtypes)} bands ({plan.max_block_bytes} bytes, {needed} bytes while fetched and written); "
            f"raise memory_limit to at least {needed}"
        )
    return plan


def _time_step(
    height: int,
    width: int,
    time_count: int,
    dtypes: Sequence[np.dtype | str],
    memory_limit: int,
    tile: tuple[int, int],
    limits: RequestLimits,
) -> int:
    """Time steps per block: several only when one tile is the whole region (see the module doc)."""
    if time_count <= 1 or tile[0] < height or tile[1] < width:
        return 1
    pixels = height * width
    image_bytes = pixels * sum(np.dtype(dtype).itemsize for dtype in dtypes)
    by_bands = limits.max_bands // len(dtypes)
    by_request = (limits.max_bytes - pixels * limits.mask_bytes_per_pixel) // image_bytes
    by_memory = memory_limit // ((2 * FLIGHT_COST + WRITE_COST) * image_bytes)
    return max(1, min(time_count, by_bands, by_request, by_memory))


def blocks_in_flight(plan: BlockPlan, memory_limit: int, max_concurrency: int, requests_per_block: int) -> int:
    """Blocks to keep requested at once: enough for ``max_concurrency`` requests, within ``memory_limit``."""
    by_requests = math.ceil(max_concurrency / max(1, requests_per_block))
    block = max(1, plan.max_block_bytes)
    by_memory = (memory_limit - WRITE_COST * block) // (FLIGHT_COST * block)
    return max(1, min(by_requests, by_memory, plan.block_count))
