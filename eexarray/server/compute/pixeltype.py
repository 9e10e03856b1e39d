"""Pixel types of computed bands, after Earth Engine's PixelType: precision plus a value range.

Integer bands carry the range their values can take; the numpy dtype is the smallest
integer type holding it, so ``uint16 + uint16`` (range 0..131070) is stored as uint32
rather than wrapping. Anything touched by a float is ``float`` (float32) or ``double``
(float64): the widest floating precision of the inputs wins, and an integer operand
of more than 16 bits promotes a ``float`` result to ``double`` (float32 would round it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PRECISIONS = ("int", "float", "double")
_INT_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64")
_INT64 = np.iinfo("int64")


@dataclass(frozen=True)
class PixelType:
    precision: str  # "int" | "float" | "double"
    min: int | None = None  # integer ranges only
    max: int | None = None

    @classmethod
    def of_dtype(cls, dtype: Any) -> PixelType:
        dtype = np.dtype(dtype)
        if dtype.kind in "iub":
            info = np.iinfo(dtype) if dtype.kind != "b" else np.iinfo("uint8")
            low, high = (0, 1) if dtype.kind == "b" else (int(info.min), int(info.max))
            return cls("int", low, high)
        return cls("float" if dtype.itemsize <= 4 else "double")

    @classmethod
    def int_range(cls, low: float, high: float) -> PixelType:
        low, high = min(low, high), max(low, high)
        return cls("int", int(max(low, _INT64.min)), int(min(high, _INT64.max)))

    @classmethod
    def of_constant(cls, value: int | float) -> PixelType:
        if isinstance(value, (bool, int, np.integer)):
            return cls.int_range(int(value), int(value))
        return cls("double")

    @property
    def is_int(self) -> bool:
        return self.precision == "int"

    @property
    def dtype(self) -> np.dtype:
        if self.precision == "float":
            return np.dtype("float32")
        if self.precision == "double":
            return np.dtype("float64")
        assert self.min is not None and self.max is not None
        for name in _INT_DTYPES:
            info = np.iinfo(name)
            if info.min <= self.min and self.max <= info.max:
                return np.dtype(name)
        return np.dtype("int64")

    def to_info(self) -> dict[str, Any]:
        """The ``data_type`` of getInfo: ``{"type": "PixelType", "precision", ["min", "max"]}``."""
        info: dict[str, Any] = {"type": "PixelType", "precision": self.precision}
        if self.is_int:
            info["min"], info["max"] = self.min, self.max
        return info


def float_of(*types: PixelType) -> PixelType:
    """The floating type a computation over ``types`` produces."""
    if any(t.precision == "double" for t in types):
        return PixelType("double")
    wide_int = any(t.is_int and t.dtype.itemsize > 2 for t in types)
    return PixelType("double" if wide_int else "float")


def union(*types: PixelType) -> PixelType:
    """A type holding every value of all ``types`` (mosaics, unmask, min/max composites)."""
    if all(t.is_int for t in types):
        return PixelType.int_range(min(_bound(t.min) for t in types), max(_bound(t.max) for t in types))
    return float_of(*types)


def arithmetic(operator: str, left: PixelType, right: PixelType) -> PixelType:
    """Result type of ``left <operator> right`` for + - * / (integer ranges by interval arithmetic)."""
    if not (left.is_int and right.is_int):
        return float_of(left, right)
    a0, a1, b0, b1 = left.min, left.max, right.min, right.max
    assert a0 is not None and a1 is not None and b0 is not None and b1 is not None
    if operator == "add":
        return PixelType.int_range(a0 + b0, a1 + b1)
    if operator == "subtract":
        return PixelType.int_range(a0 - b1, a1 - b0)
    if operator == "multiply":
        products = (a0 * b0, a0 * b1, a1 * b0, a1 * b1)
        return PixelType.int_range(min(products), max(products))
    # Integer division truncates toward zero and gives 0 for a zero divisor: |q| <= |a|.
    if a0 >= 0 and b0 >= 0:
        return PixelType.int_range(0, a1)
    magnitude = max(abs(a0), abs(a1))
    return PixelType.int_range(-magnitude, magnitude)


def _bound(value: int | None) -> int:
    assert value is not None, "integer pixel types carry a range"
    return value


BOOLEAN = PixelType("int", 0, 1)
