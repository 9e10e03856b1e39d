"""Reducers and composites: reduce.median/mean/min/max/sum/count, ImageCollection.reduce and
mosaic, and Collection.reduceColumns over properties.

Composites match bands by name across the images (output bands in order of first
appearance) and ignore masked pixels: a pixel is masked only where every image is.
Types: min/max/mosaic keep the union of the input types; mean and median of integers
are double (float inputs keep their precision); sum of integers is an integer range
(n x the input range); count is an integer. Composites have no native grid, so
computePixels needs an explicit grid for them (as for Earth Engine composites).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from eexarray.server.compute import values as v
from eexarray.server.compute.algorithms_filter import MISSING, field_value
from eexarray.server.compute.bands import map_sources, masked, stack_source
from eexarray.server.compute.pixeltype import PixelType, union
from eexarray.server.compute.registry import Call, algorithm, opt

IMAGE = "Image<unknown bands>"
COMPOSITES = ("median", "mean", "min", "max", "sum", "count")


def _stack(arrays: list[np.ma.MaskedArray]) -> np.ma.MaskedArray:
    return np.ma.MaskedArray(
        np.stack([np.ma.getdata(a) for a in arrays]), np.stack([np.ma.getmaskarray(a) for a in arrays])
    )


def _median(arrays: list[np.ma.MaskedArray]) -> np.ma.MaskedArray:
    return np.ma.median(_stack(arrays).astype("float64"), axis=0)


def _mean(arrays: list[np.ma.MaskedArray]) -> np.ma.MaskedArray:
    return np.ma.mean(_stack(arrays), axis=0, dtype="float64")


def _min(arrays: list[np.ma.MaskedArray]) -> np.ma.MaskedArray:
    return np.ma.min(_stack(arrays), axis=0)


def _max(arrays: list[np.ma.MaskedArray]) -> np.ma.MaskedArray:
    return np.ma.max(_stack(arrays), axis=0)


def _sum(arrays: list[np.ma.MaskedArray]) -> np.ma.MaskedArray:
    stack = _stack(arrays)
    total = np.where(stack.mask, 0, stack.data.astype("float64")).sum(axis=0)
    return masked(total, stack.mask.all(axis=0))


def _count(arrays: list[np.ma.MaskedArray]) -> np.ma.MaskedArray:
    counts = (~_stack(arrays).mask).sum(axis=0)
    return masked(counts, np.zeros(counts.shape, bool))


_FUNCTIONS: dict[str, Callable[[list[np.ma.MaskedArray]], np.ma.MaskedArray]] = {
    "median": _median, "mean": _mean, "min": _min, "max": _max, "sum": _sum, "count": _count,
}  # fmt: skip


def _composite_type(kind: str, types: list[PixelType], count: int) -> PixelType:
    if kind in ("min", "max"):
        return union(*types)
    if kind == "count":
        return PixelType.int_range(0, count)
    if kind == "sum":
        merged = union(*types)
        if merged.is_int:
            assert merged.min is not None and merged.max is not None
            return PixelType.int_range(min(0, merged.min * count), max(0, merged.max * count))
        return PixelType("double")
    if all(t.precision == "float" for t in types):
        return PixelType("float")
    return PixelType("double")


def composite(collection: v.Collection, kind: str, suffix: str = "") -> v.Image:
    """The per-band ``kind`` composite of a collection (bands matched by name)."""
    order: list[str] = []
    members: dict[str, list[v.Band]] = {}
    for image in collection.images:
        for band in image.bands:
            if band.id not in members:
                order.append(band.id)
            members.setdefault(band.id, []).append(band)
    bands = []
    for name in order:
        inputs = members[name]
        pixel_type = _composite_type(kind, [band.pixel_type for band in inputs], len(inputs))
        source = stack_source(_FUNCTIONS[kind], [band.source for band in inputs], pixel_type.dtype)
        bands.append(v.Band(f"{name}{suffix}", pixel_type, source, None))
    return v.Image(tuple(bands))


def _register_composite(kind: str) -> None:
    @algorithm(f"reduce.{kind}", IMAGE, f"The per-pixel {kind} of each band over the collection (masks ignored).",
               ("collection", "ImageCollection"))  # fmt: skip
    def implementation(call: Call) -> v.Image:
        return composite(call.collection("collection"), kind)


for _kind in COMPOSITES:
    _register_composite(_kind)


def _mosaic(arrays: list[np.ma.MaskedArray]) -> np.ma.MaskedArray:
    values = np.ma.getdata(arrays[0]).copy()
    mask = np.ma.getmaskarray(arrays[0]).copy()
    for array in arrays[1:]:
        valid = ~np.ma.getmaskarray(array)
        values[valid] = np.ma.getdata(array)[valid]
        mask &= ~valid
    return masked(values, mask)


@algorithm("ImageCollection.mosaic", IMAGE, "Later images drawn over earlier ones where they are not masked.",
           ("collection", "ImageCollection"))  # fmt: skip
def _mosaic_algorithm(call: Call) -> v.Image:
    collection = call.collection("collection")
    order: list[str] = []
    members: dict[str, list[v.Band]] = {}
    for image in collection.images:
        for band in image.bands:
            order += [band.id] if band.id not in members else []
            members.setdefault(band.id, []).append(band)
    bands = []
    for name in order:
        pixel_type = union(*[band.pixel_type for band in members[name]])
        dtype = pixel_type.dtype

        def cast(band: np.ma.MaskedArray, dtype: np.dtype = dtype) -> np.ma.MaskedArray:
            return masked(np.ma.getdata(band).astype(dtype), np.ma.getmaskarray(band))

        inputs = [map_sources(cast, band.source) for band in members[name]]
        bands.append(v.Band(name, pixel_type, stack_source(_mosaic, inputs, dtype), None))
    return v.Image(tuple(bands))


# -- reducers -------------------------------------------------------------------------------
def _register_reducer(kind: str) -> None:
    arguments = {
        "median": (opt("maxBuckets", "Integer"), opt("minBucketWidth", "Float"), opt("maxRaw", "Integer")),
        "min": (opt("numInputs", "Integer", "", 1),),
        "max": (opt("numInputs", "Integer", "", 1),),
    }

    @algorithm(f"Reducer.{kind}", "Reducer", f"A reducer computing the {kind} (exactly, without buckets).",
               *arguments.get(kind, ()))  # fmt: skip
    def implementation(call: Call) -> v.Reducer:
        if call.get("numInputs") not in (None, 1):
            raise call.error("Only numInputs=1 is supported.")
        return v.Reducer(kind)


for _kind in (*COMPOSITES, "first"):
    _register_reducer(_kind)


@algorithm("Reducer.toList", "Reducer", "Collects its inputs into a list (of tuples when tupleSize is set).",
           opt("tupleSize", "Integer"), opt("numOptional", "Integer", "", 0))  # fmt: skip
def _to_list(call: Call) -> v.Reducer:
    size = call.optional_integer("tupleSize")
    if size is not None and size < 1:
        raise call.error(f"tupleSize must be at least 1, got {size}.")
    if call.get("numOptional") not in (None, 0):
        raise call.error("Only numOptional=0 is supported.")
    return v.Reducer("toList", tuple_size=size)


@algorithm("Reducer.repeat", "Reducer", "`count` copies of a reducer, each with its own input; outputs are lists.",
           ("reducer", "Reducer"), ("count", "Integer"))  # fmt: skip
def _repeat(call: Call) -> v.Reducer:
    reducer = call.of("reducer", v.Reducer, "Reducer")
    count = call.integer("count")
    if reducer.copies is not None or count < 1:
        raise call.error(f"count must be at least 1 and the reducer not already repeated, got count={count}.")
    return v.Reducer(reducer.kind, reducer.tuple_size, count)


@algorithm(
    "ImageCollection.reduce",
    IMAGE,
    "Composites with a reducer; bands named '<band>_<reducer output>'.",
    ("collection", "ImageCollection"),
    ("reducer", "Reducer"),
    opt("parallelScale", "Float", "", 1),
)
def _reduce(call: Call) -> v.Image:  # fmt: skip
    reducer = call.of("reducer", v.Reducer, "Reducer")
    if reducer.kind not in COMPOSITES or reducer.copies is not None:
        raise call.error(f"Reducer.{reducer.kind} (repeated: {reducer.copies}) cannot composite images here; "
                         f"use one of {['Reducer.' + k for k in COMPOSITES]}.")  # fmt: skip
    return composite(call.collection("collection"), reducer.kind, f"_{reducer.output}")


def reduce_values(kind: str, tuple_size: int | None, columns: list[list[Any]]) -> Any:
    """One reducer (not repeated) over its input columns (equal lengths; missing values MISSING)."""
    rows = [row for row in zip(*columns) if all(value is not MISSING for value in row)]
    if kind == "toList":
        return [list(row) for row in rows] if tuple_size else [row[0] for row in rows]
    numbers = [row[0] for row in rows]
    if kind == "count":
        return len(numbers)
    if kind == "first":
        return numbers[0] if numbers else None
    if not numbers:
        return None
    if kind == "sum":
        return sum(numbers)
    if kind == "mean":
        return float(np.mean(numbers))
    if kind == "median":
        return float(np.median(numbers))
    return min(numbers) if kind == "min" else max(numbers)


@algorithm("Collection.reduceColumns", "Dictionary<Object>",
           "Applies a reducer to properties of the elements; a dictionary keyed by the reducer's output name.",
           ("collection", "FeatureCollection"), ("reducer", "Reducer"), ("selectors", "List<String>"),
           opt("weightSelectors", "List<String>"))  # fmt: skip
def _reduce_columns(call: Call) -> dict[str, Any]:
    reducer = call.of("reducer", v.Reducer, "Reducer")
    selectors = call.string_list("selectors")
    if call.get("weightSelectors") is not None:
        raise call.error("weightSelectors are not supported.")
    if len(selectors) != reducer.inputs:
        raise call.error(f"Need {reducer.inputs} selectors for this reducer, got {len(selectors)}: {selectors}.")
    images = call.collection("collection").images
    columns = [[field_value(image, name) for image in images] for name in selectors]
    try:
        if reducer.copies is None:
            return {reducer.output: reduce_values(reducer.kind, reducer.tuple_size, columns)}
        width = reducer.inputs // reducer.copies
        return {reducer.output: [reduce_values(reducer.kind, reducer.tuple_size, columns[i * width:(i + 1) * width])
                                 for i in range(reducer.copies)]}  # fmt: skip
    except TypeError:
        raise call.error(f"Reducer.{reducer.kind} cannot reduce the values of {selectors}.") from None
