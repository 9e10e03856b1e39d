"""Pixel-wise math: + - * / and friends, comparisons, logic and casts.

Binary operators match bands like Earth Engine: a 1-band image is used against every
band of the other, otherwise bands pair up in order; output names come from the
longer input (image1's when equal). A pixel masked in either input is masked. Types
follow ``pixeltype``: integer ranges by interval arithmetic, floats otherwise.
Integer division truncates toward zero, and any division by zero gives 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from eexarray.server.compute import values as v
from eexarray.server.compute.algorithms_image import IMAGE, applied, paired
from eexarray.server.compute.bands import map_sources, masked
from eexarray.server.compute.pixeltype import BOOLEAN, PixelType, arithmetic, float_of, union
from eexarray.server.compute.registry import Call, algorithm

Operation = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    zero = b == 0
    safe = np.where(zero, 1, b)
    if a.dtype.kind in "iu":
        quotient = np.abs(a) // np.abs(safe)
        quotient = np.where((a < 0) != (safe < 0), -quotient, quotient)
    else:
        quotient = a / safe
    return np.where(zero, 0, quotient)


_ARITHMETIC: dict[str, Operation] = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": _divide,
}
_VERBS = {"add": "Adds", "subtract": "Subtracts", "multiply": "Multiplies", "divide": "Divides"}


def _binary(operation: Operation, dtype: np.dtype, compute_dtype: np.dtype | None = None) -> Callable:
    work = compute_dtype or dtype

    def apply(first: np.ma.MaskedArray, second: np.ma.MaskedArray) -> np.ma.MaskedArray:
        a = np.ma.getdata(first).astype(work, copy=False)
        b = np.ma.getdata(second).astype(work, copy=False)
        with np.errstate(all="ignore"):
            result = operation(a, b)
        mask = np.ma.getmaskarray(first) | np.ma.getmaskarray(second)
        return masked(np.asarray(result).astype(dtype, copy=False), mask)

    return apply


def _combine(call: Call, type_of: Callable[[PixelType, PixelType], PixelType], operation: Operation,
             compare: bool = False) -> v.Image:  # fmt: skip
    first, second = call.image("image1"), call.image("image2")
    pairs = paired(call, first, second, "image2")
    names = [b.id for b in (first.bands if len(first.bands) >= len(second.bands) else second.bands)]
    bands = []
    for band_name, (a, b) in zip(names, pairs):
        pixel_type = type_of(a.pixel_type, b.pixel_type)
        # Comparisons run in a type holding both inputs; arithmetic in the output type (wide enough).
        work = union(a.pixel_type, b.pixel_type).dtype if compare else None
        source = map_sources(_binary(operation, pixel_type.dtype, work), a.source, b.source)
        bands.append(v.Band(band_name, pixel_type, source, a.grid if a.grid is not None else b.grid))
    return v.Image(tuple(bands))


def _register_arithmetic(name: str) -> None:
    @algorithm(f"Image.{name}", IMAGE,
               f"{_VERBS[name]} image1 and image2 band by band (1 band against all, or pairwise).",
               ("image1", IMAGE, "The left operand."), ("image2", IMAGE, "The right operand."))  # fmt: skip
    def implementation(call: Call) -> v.Image:
        return _combine(call, lambda a, b: arithmetic(name, a, b), _ARITHMETIC[name])


for _name in _ARITHMETIC:
    _register_arithmetic(_name)


def _minimum_type(a: PixelType, b: PixelType) -> PixelType:
    return union(a, b)


_TWO_SIDED: dict[str, tuple[str, Operation, Callable[[PixelType, PixelType], PixelType], bool]] = {
    "min": ("The smaller of image1 and image2.", np.minimum, _minimum_type, True),
    "max": ("The larger of image1 and image2.", np.maximum, _minimum_type, True),
    "pow": ("image1 raised to the power image2 (as double).", np.power, lambda a, b: PixelType("double"), False),
    "gt": ("1 where image1 > image2, else 0.", np.greater, lambda a, b: BOOLEAN, True),
    "gte": ("1 where image1 >= image2, else 0.", np.greater_equal, lambda a, b: BOOLEAN, True),
    "lt": ("1 where image1 < image2, else 0.", np.less, lambda a, b: BOOLEAN, True),
    "lte": ("1 where image1 <= image2, else 0.", np.less_equal, lambda a, b: BOOLEAN, True),
    "eq": ("1 where image1 == image2, else 0.", np.equal, lambda a, b: BOOLEAN, True),
    "neq": ("1 where image1 != image2, else 0.", np.not_equal, lambda a, b: BOOLEAN, True),
    "and": ("1 where both are non-zero, else 0.", lambda a, b: (a != 0) & (b != 0), lambda a, b: BOOLEAN, True),
    "or": ("1 where either is non-zero, else 0.", lambda a, b: (a != 0) | (b != 0), lambda a, b: BOOLEAN, True),
}


def _register_two_sided(name: str) -> None:
    description, operation, type_of, compare = _TWO_SIDED[name]

    @algorithm(f"Image.{name}", IMAGE, description, ("image1", IMAGE), ("image2", IMAGE))
    def implementation(call: Call) -> v.Image:
        return _combine(call, type_of, operation, compare=compare)


for _name in _TWO_SIDED:
    _register_two_sided(_name)


def _unary(call: Call, type_of: Callable[[PixelType], PixelType], operation: Callable[[np.ndarray], np.ndarray],
           argument: str = "value") -> v.Image:  # fmt: skip
    image = call.image(argument)
    bands = []
    for band in image.bands:
        pixel_type = type_of(band.pixel_type)

        def apply(values: np.ma.MaskedArray, dtype: np.dtype = pixel_type.dtype) -> np.ma.MaskedArray:
            with np.errstate(all="ignore"):
                result = operation(np.ma.getdata(values))
            return masked(np.asarray(result).astype(dtype, copy=False), np.ma.getmaskarray(values))

        bands.append(v.Band(band.id, pixel_type, map_sources(apply, band.source), band.grid))
    return image.with_bands(bands)


@algorithm("Image.not", IMAGE, "1 where the value is 0, else 0.", ("value", IMAGE))
def _not(call: Call) -> v.Image:
    return _unary(call, lambda t: BOOLEAN, lambda x: x == 0)


@algorithm("Image.abs", IMAGE, "The absolute value.", ("value", IMAGE))
def _abs(call: Call) -> v.Image:
    def type_of(t: PixelType) -> PixelType:
        if not t.is_int:
            return t
        assert t.min is not None and t.max is not None
        low = t.min if t.min >= 0 else (-t.max if t.max <= 0 else 0)
        return PixelType.int_range(low, max(abs(t.min), abs(t.max)))

    return _unary(call, type_of, np.abs)


def _cast_to(dtype: str) -> Callable[[PixelType], PixelType]:
    return lambda t: PixelType.of_dtype(dtype)


def _caster(dtype: str) -> Callable[[np.ndarray], np.ndarray]:
    target = np.dtype(dtype)
    if target.kind == "f":
        return lambda x: x.astype(target)
    info = np.iinfo(target)
    # Earth Engine casts clamp to the type's range (floats truncated toward zero first).
    return lambda x: np.clip(np.trunc(x) if x.dtype.kind == "f" else x, info.min, info.max).astype(target)


_CASTS = {
    "toFloat": "float32", "float": "float32", "toDouble": "float64", "double": "float64",
    "toInt": "int32", "int": "int32", "toInt8": "int8", "int8": "int8", "toInt16": "int16", "int16": "int16",
    "toInt32": "int32", "int32": "int32", "toInt64": "int64", "int64": "int64", "toUint8": "uint8",
    "uint8": "uint8", "toUint16": "uint16", "uint16": "uint16", "toUint32": "uint32", "uint32": "uint32",
}  # fmt: skip


def _register_cast(name: str, dtype: str) -> None:
    @algorithm(f"Image.{name}", IMAGE, f"Casts every band to {dtype} (clamping integers to the type's range).",
               ("value", IMAGE))  # fmt: skip
    def implementation(call: Call) -> v.Image:
        return _unary(call, _cast_to(dtype), _caster(dtype))


for _name, _dtype in _CASTS.items():
    _register_cast(_name, _dtype)


# -- bitwise operators, where, unitScale ------------------------------------------------------------
_BITWISE: dict[str, tuple[str, Operation]] = {
    "bitwiseAnd": ("Bitwise AND of integer bands (cloud-mask bits).", np.bitwise_and),
    "bitwiseOr": ("Bitwise OR of integer bands.", np.bitwise_or),
    "bitwiseXor": ("Bitwise XOR of integer bands.", np.bitwise_xor),
}


def _bitwise_type(call: Call, name: str) -> Callable[[PixelType, PixelType], PixelType]:
    def type_of(a: PixelType, b: PixelType) -> PixelType:
        if not (a.is_int and b.is_int):
            raise call.error(f"{name} needs integer bands; got {a.precision} and {b.precision}. Cast first (toInt).")
        return union(a, b)

    return type_of


def _register_bitwise(name: str) -> None:
    description, operation = _BITWISE[name]

    @algorithm(f"Image.{name}", IMAGE, description, ("image1", IMAGE), ("image2", IMAGE))
    def implementation(call: Call) -> v.Image:
        return _combine(call, _bitwise_type(call, f"Image.{name}"), operation)


for _name in _BITWISE:
    _register_bitwise(_name)


def _where(dtype: np.dtype) -> Callable[..., np.ma.MaskedArray]:
    def choose(
        value_in: np.ma.MaskedArray, test: np.ma.MaskedArray, replacement: np.ma.MaskedArray
    ) -> np.ma.MaskedArray:
        # Earth Engine: where test or value is masked the input is kept; the input's mask stays.
        take = (np.ma.getdata(test) != 0) & ~np.ma.getmaskarray(test) & ~np.ma.getmaskarray(replacement)
        values = np.where(take, np.ma.getdata(replacement).astype(dtype), np.ma.getdata(value_in).astype(dtype))
        return masked(values, np.ma.getmaskarray(value_in))

    return choose


@algorithm("Image.where", IMAGE,
           "The input, with the value image's pixels where test is non-zero (and neither test nor value masked).",
           ("input", IMAGE), ("test", IMAGE), ("value", IMAGE))  # fmt: skip
def _where_algorithm(call: Call) -> v.Image:
    image, test, value = call.image("input"), call.image("test"), call.image("value")
    tests = applied(call, image, test, "test")
    values = applied(call, image, value, "value")
    bands = []
    for (band, test_band), (_, value_band) in zip(tests, values):
        pixel_type = union(band.pixel_type, value_band.pixel_type)
        source = map_sources(_where(pixel_type.dtype), band.source, test_band.source, value_band.source)
        bands.append(v.Band(band.id, pixel_type, source, band.grid))
    return image.with_bands(bands)


@algorithm("Image.unitScale", IMAGE, "(input - low) / (high - low) as float (double for 32-bit and wider input).",
           ("input", IMAGE), ("low", "Float"), ("high", "Float"))  # fmt: skip
def _unit_scale(call: Call) -> v.Image:
    low, high = call.finite("low"), call.finite("high")
    if high == low:
        raise call.error(f"high must differ from low, both are {low}.")

    def type_of(t: PixelType) -> PixelType:
        return float_of(t, PixelType("float"))

    return _unary(call, type_of, lambda x: (x.astype("float64") - low) / (high - low), argument="input")


def _remainder(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Remainder with the sign of the dividend (Java's %); 0 where dividing by 0, as Image.divide."""
    zero = b == 0
    return np.where(zero, 0, np.fmod(a, np.where(zero, 1, b)))


@algorithm("Image.mod", IMAGE, "The remainder of image1 / image2 (sign of image1); the union of the input types.",
           ("image1", IMAGE), ("image2", IMAGE))  # fmt: skip
def _mod(call: Call) -> v.Image:
    return _combine(call, union, _remainder)


def _float_result(t: PixelType) -> PixelType:
    return float_of(t, PixelType("float"))


_FLOAT_FUNCTIONS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "sqrt": ("The square root (NaN for negatives).", np.sqrt),
    "exp": ("e raised to the power of the input.", np.exp),
    "log": ("The natural logarithm.", np.log),
    "log10": ("The base-10 logarithm.", np.log10),
}
_ROUNDING: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "floor": ("The largest integer not above the input (integers unchanged).", np.floor),
    "ceil": ("The smallest integer not below the input (integers unchanged).", np.ceil),
    "round": ("The nearest integer, halves away from zero (integers unchanged).",
              lambda x: np.where(x < 0, -np.floor(-x + 0.5), np.floor(x + 0.5))),
}  # fmt: skip


def _register_float_function(name: str) -> None:
    description, function = _FLOAT_FUNCTIONS[name]

    @algorithm(f"Image.{name}", IMAGE, description + " Float for 16-bit inputs, double for wider.", ("value", IMAGE))
    def implementation(call: Call) -> v.Image:
        return _unary(call, _float_result, lambda x: function(x.astype("float64")))


def _register_rounding(name: str) -> None:
    description, function = _ROUNDING[name]

    @algorithm(f"Image.{name}", IMAGE, description, ("value", IMAGE))
    def implementation(call: Call) -> v.Image:
        return _unary(call, lambda t: t, lambda x: x if x.dtype.kind in "iu" else function(x))


for _name in _FLOAT_FUNCTIONS:
    _register_float_function(_name)
for _name in _ROUNDING:
    _register_rounding(_name)
