"""Per-image properties as coordinates along ``time`` (the ``properties=`` option). Pure.

A property becomes a plain numpy coordinate (never dask: it is metadata already in memory)
typed by its values over the time steps:

* numbers: ``int64`` when every step has an integer, else ``float64`` with NaN where missing;
* booleans: ``bool`` when every step has one, else ``object`` with None where missing;
* strings: ``object`` (str) with None where missing;
* anything else (lists, dicts, mixed types): ``object`` holding JSON text, None where missing,
  so ``to_netcdf``/``to_zarr`` can write it.

xarray turns None in an ``object`` coordinate into NaN (its missing-value marker there too),
so users test ``pd.isna``/``.isnull()`` whatever the type; netCDF and zarr write it as missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Names already taken by the Dataset's own coordinates; a property of that name gets a suffix.
RESERVED_NAMES = ("time", "y", "x", "spatial_ref", "image_id")
SUFFIX = "_property"
INT64_LIMIT = 2**63


def property_names(per_image: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every property name of the images, in order of first appearance."""
    names: dict[str, None] = {}
    for properties in per_image:
        names.update(dict.fromkeys(properties))
    return list(names)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def kind_of(values: Sequence[Any]) -> str:
    """``int``, ``float``, ``bool``, ``str`` or ``json``: what the present values are (None: missing)."""
    present = [value for value in values if value is not None]
    if not present:
        return "json"
    if all(isinstance(value, bool) for value in present):
        return "bool"
    if all(_is_number(value) for value in present):
        if all(isinstance(value, int) and -INT64_LIMIT <= value < INT64_LIMIT for value in present):
            return "int"
        return "float"
    if all(isinstance(value, str) for value in present):
        return "str"
    return "json"


def coordinate_values(values: Sequence[Any]) -> np.ndarray:
    """One property over the time steps (None where a step lacks it) as a typed numpy array."""
    kind = kind_of(values)
    missing = any(value is None for value in values)
    if kind == "int" and not missing:
        return np.array(values, dtype="int64")
    if kind in ("int", "float"):
        return np.array([np.nan if value is None else float(value) for value in values], dtype="float64")
    if kind == "bool" and not missing:
        return np.array(values, dtype=bool)
    out = np.empty(len(values), dtype=object)
    for index, value in enumerate(values):
        if value is None or kind in ("bool", "str"):
            out[index] = value
        else:
            out[index] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return out


def merged(per_image: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The properties of a mosaic of ``per_image``: those every image has with one value.

    A property the images disagree on (two tiles' cloud cover) has no single value for the
    mosaic, so it is missing rather than one image's value passed off as the whole day's.
    """
    if not per_image:
        return {}
    first, *others = per_image
    return {
        name: value for name, value in first.items() if all(name in other and other[name] == value for other in others)
    }


def check_names(requested: Sequence[str], per_image: Sequence[Mapping[str, Any]], asset: str) -> None:
    """Refuse property names no image has (a typo would otherwise give an all-missing coordinate)."""
    available = property_names(per_image)
    unknown = [name for name in requested if name not in available]
    if unknown:
        shown = available if len(available) <= 30 else [*available[:30], f"... ({len(available)} in all)"]
        raise ValueError(f"No image of {asset!r} has the propert(ies) {unknown}; the images have: {shown}")


def coordinate_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name`` + ``_property`` when a band or the Dataset's own coordinate has that name."""
    return name + SUFFIX if name in taken or name in RESERVED_NAMES else name
