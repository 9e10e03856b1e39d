"""Integer pixel windows and how to tile them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Window:
    """A half-open rectangle of pixels: rows ``[row_start, row_stop)``, cols ``[col_start, col_stop)``."""

    row_start: int
    row_stop: int
    col_start: int
    col_stop: int

    def __post_init__(self) -> None:
        if self.row_stop < self.row_start or self.col_stop < self.col_start:
            raise ValueError(f"Inverted window {self}")

    @classmethod
    def from_shape(cls, height: int, width: int) -> Window:
        return cls(0, height, 0, width)

    @property
    def height(self) -> int:
        return self.row_stop - self.row_start

    @property
    def width(self) -> int:
        return self.col_stop - self.col_start

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def size(self) -> int:
        return self.height * self.width

    def shift(self, rows: int, cols: int) -> Window:
        return Window(self.row_start + rows, self.row_stop + rows, self.col_start + cols, self.col_stop + cols)

    def relative_to(self, outer: Window) -> Window:
        """This window in the pixel coordinates of ``outer``'s top-left corner."""
        return self.shift(-outer.row_start, -outer.col_start)

    def intersection(self, other: Window) -> Window | None:
        rows = (max(self.row_start, other.row_start), min(self.row_stop, other.row_stop))
        cols = (max(self.col_start, other.col_start), min(self.col_stop, other.col_stop))
        if rows[0] >= rows[1] or cols[0] >= cols[1]:
            return None
        return Window(rows[0], rows[1], cols[0], cols[1])

    def contains(self, other: Window) -> bool:
        return (
            self.row_start <= other.row_start
            and other.row_stop <= self.row_stop
            and self.col_start <= other.col_start
            and other.col_stop <= self.col_stop
        )

    def slices(self) -> tuple[slice, slice]:
        return (slice(self.row_start, self.row_stop), slice(self.col_start, self.col_stop))


def split_range(start: int, stop: int, step: int) -> list[tuple[int, int]]:
    """Cut ``[start, stop)`` into consecutive pieces of at most ``step`` items."""
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    return [(lo, min(lo + step, stop)) for lo in range(start, stop, step)]


def tile_window(window: Window, tile_height: int, tile_width: int) -> Iterator[Window]:
    """Row-major tiles of at most ``tile_height`` x ``tile_width`` covering ``window`` exactly once."""
    for row_start, row_stop in split_range(window.row_start, window.row_stop, tile_height):
        for col_start, col_stop in split_range(window.col_start, window.col_stop, tile_width):
            yield Window(row_start, row_stop, col_start, col_stop)
