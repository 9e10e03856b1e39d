"""Lists, dictionaries, element properties and projections."""

from __future__ import annotations

import math
from typing import Any

import pyproj

from eexarray.geometry import to_pyproj
from eexarray.server.compute import values as v
from eexarray.server.compute.algorithms_filter import MISSING, field_value
from eexarray.server.compute.registry import Call, algorithm, opt
from eexarray.server.compute.spatial import band_projection

LIST = "List<Object>"
IMAGE = "Image<unknown bands>"
_EARTH_METRES_PER_DEGREE = 2 * math.pi * 6378137.0 / 360


# -- lists ------------------------------------------------------------------------------
@algorithm("List.get", "Object", "The element at index (negative counts from the end).",
           ("list", LIST), ("index", "Integer"))  # fmt: skip
def _list_get(call: Call) -> Any:
    items, index = call.sequence("list"), call.integer("index")
    if not -len(items) <= index < len(items):
        raise call.error(f"List index {index} is out of bounds for a list of {len(items)} elements.")
    return items[index]


@algorithm("List.slice", LIST, "Elements from start to end (exclusive) by step; negatives count from the end.",
           ("list", LIST), ("start", "Integer"), opt("end", "Integer"), opt("step", "Integer"))  # fmt: skip
def _list_slice(call: Call) -> list[Any]:
    step = call.optional_integer("step")
    if step == 0:
        raise call.error("step must not be 0.")
    return call.sequence("list")[call.integer("start") : call.optional_integer("end") : step]


def _register_length(name: str) -> None:
    @algorithm(f"List.{name}", "Integer", "The number of elements.", ("list", LIST))
    def implementation(call: Call) -> int:
        return len(call.sequence("list"))


for _name in ("size", "length"):
    _register_length(_name)


@algorithm("List.map", LIST, "The function applied to every element.",
           ("list", LIST), ("baseAlgorithm", "Algorithm"), opt("dropNulls", "Boolean", "", False))  # fmt: skip
def _list_map(call: Call) -> list[Any]:
    function = call.function("baseAlgorithm", 1)
    results = [call.apply(function, [item]) for item in call.sequence("list")]
    return [r for r in results if r is not None] if call.boolean("dropNulls") else results


@algorithm(
    "List.sequence",
    LIST,
    "Numbers from start to end (inclusive) by step, or `count` of them.",
    ("start", "Number"),
    opt("end", "Number"),
    opt("step", "Number", "", 1),
    opt("count", "Integer"),
)
def _list_sequence(call: Call) -> list[int | float]:  # fmt: skip
    start, step = call.number("start"), call.number("step")
    count = call.optional_integer("count")
    if step == 0:
        raise call.error("step must not be 0.")
    if count is None:
        if call.get("end") is None:
            raise call.error("Give end or count.")
        count = int(math.floor((call.number("end") - start) / step)) + 1
    if count > 1_000_000:
        raise call.error(f"A sequence of {count} numbers is too long (at most 1000000).")
    return [start + i * step for i in range(max(count, 0))]


@algorithm("List.cat", LIST, "The list followed by the other list.", ("list", LIST), ("other", LIST))
def _list_cat(call: Call) -> list[Any]:
    return call.sequence("list") + call.sequence("other")


@algorithm("List.add", LIST, "The list with one more element at the end.", ("list", LIST), ("element", "Object"))
def _list_add(call: Call) -> list[Any]:
    return [*call.sequence("list"), call.get("element")]


# -- dictionaries ------------------------------------------------------------------------------
@algorithm("Dictionary", "Dictionary<Object>", "A dictionary (from a dictionary or null).", opt("input", "Object"))
def _dictionary(call: Call) -> dict[str, Any]:
    return {} if call.get("input") is None else dict(call.dictionary("input"))


@algorithm("Dictionary.get", "Object", "The value of a key (or defaultValue when given and the key is absent).",
           ("dictionary", "Dictionary<Object>"), ("key", "String"), opt("defaultValue", "Object"))  # fmt: skip
def _dictionary_get(call: Call) -> Any:
    dictionary, key = call.dictionary("dictionary"), call.string("key")
    if key in dictionary:
        return dictionary[key]
    if call.get("defaultValue") is not None:
        return call.get("defaultValue")
    raise call.error(f"Dictionary does not contain key: '{key}'. Keys: {sorted(dictionary)}")


@algorithm("Dictionary.keys", "List<String>", "The keys, sorted.", ("dictionary", "Dictionary<Object>"))
def _dictionary_keys(call: Call) -> list[str]:
    return sorted(call.dictionary("dictionary"))


@algorithm("Dictionary.size", "Integer", "The number of entries.", ("dictionary", "Dictionary<Object>"))
def _dictionary_size(call: Call) -> int:
    return len(call.dictionary("dictionary"))


# -- element properties ----------------------------------------------------------------------
def _element(call: Call, name: str) -> Any:
    value = call.get(name)
    if isinstance(value, (v.Image, v.Collection, v.Feature)):
        return value
    raise call.error(f"Invalid type for argument '{name}'. Expected type: Element. "
                     f"Actual type: {v.type_name(value)}.")  # fmt: skip


@algorithm("Element.get", "<any>", "A property of an element (null when absent).",
           ("object", "Element"), ("property", "String"))  # fmt: skip
def _get(call: Call) -> Any:
    value = field_value(_element(call, "object"), call.string("property"))
    return None if value is MISSING else value


def _register_typed_get(name: str, kind: type | tuple[type, ...], expected: str) -> None:
    @algorithm(f"Element.{name}", expected, f"A {expected} property of an element.",
               ("object", "Element"), ("property", "String"))  # fmt: skip
    def implementation(call: Call) -> Any:
        value = field_value(_element(call, "object"), call.string("property"))
        if value is MISSING or isinstance(value, bool) or not isinstance(value, kind):
            raise call.error(f"Property '{call.string('property')}' is not a {expected}: {v.type_name(value)}.")
        return value


_register_typed_get("getNumber", (int, float), "Number")
_register_typed_get("getString", str, "String")


@algorithm("Element.set", "Element", "The element with one property set.",
           ("object", "Element"), ("key", "String"), opt("value", "Object"))  # fmt: skip
def _set(call: Call) -> Any:
    element = _element(call, "object")
    return _with_properties(element, {**element.properties, call.string("key"): call.get("value")})


@algorithm("Element.setMulti", "Element", "The element with several properties set.",
           ("object", "Element"), ("properties", "Dictionary<Object>"))  # fmt: skip
def _set_multi(call: Call) -> Any:
    element = _element(call, "object")
    return _with_properties(element, {**element.properties, **call.dictionary("properties")})


def _with_properties(element: Any, properties: dict[str, Any]) -> Any:
    if isinstance(element, v.Image):
        return element.with_properties(properties)
    if isinstance(element, v.Collection):
        return v.Collection(element.images, properties, element.asset_id, element.version)
    return v.Feature(element.geometry, properties)


@algorithm("Element.toDictionary", "Dictionary<Object>", "Properties as a dictionary (default: all non-system).",
           ("element", "Element"), opt("properties", "List<String>"))  # fmt: skip
def _to_dictionary(call: Call) -> dict[str, Any]:
    element = _element(call, "element")
    names = call.optional_string_list("properties")
    if names is None:
        return v.user_properties(element.properties)
    return {name: element.properties[name] for name in names if element.properties.get(name) is not None}


@algorithm("Element.propertyNames", "List<String>", "The names of the element's properties.", ("element", "Element"))
def _property_names(call: Call) -> list[str]:
    return list(_element(call, "element").properties)


def _register_copy_properties(name: str) -> None:
    @algorithm(name, "Element", "The destination with properties copied from the source.",
               opt("destination", "Element"), opt("source", "Element"), opt("properties", "List<String>"),
               opt("exclude", "List<String>"))  # fmt: skip
    def implementation(call: Call) -> Any:
        destination, source = _element(call, "destination"), _element(call, "source")
        names = call.optional_string_list("properties")
        exclude = set(call.optional_string_list("exclude") or [])
        chosen = v.user_properties(source.properties) if names is None else {
            key: source.properties[key] for key in names if key in source.properties}  # fmt: skip
        copied = {key: value for key, value in chosen.items() if key not in exclude}
        return _with_properties(destination, {**destination.properties, **copied})


for _name in ("Element.copyProperties", "Image.copyProperties"):
    _register_copy_properties(_name)


# -- projections -------------------------------------------------------------------------------
@algorithm("Image.projection", "Projection", "The default projection of an image whose bands share one.",
           ("image", IMAGE))  # fmt: skip
def _image_projection(call: Call) -> v.Projection:
    image = call.image("image")
    projections = {_band_projection(band) for band in image.bands}
    if len(projections) > 1:
        raise call.error("The bands of the specified image contain different projections. "
                         "Use Image.select to pick a single band.")  # fmt: skip
    return projections.pop() if projections else v.Projection("EPSG:4326", (1.0, 0.0, 0.0, 0.0, 1.0, 0.0))


def _band_projection(band: v.Band) -> v.Projection:
    return band_projection(band)


@algorithm("Projection", "Projection", "A projection from a CRS code (and an optional affine transform).",
           ("crs", "Object"), opt("transform", "List<Object>"), opt("transformWkt", "String"))  # fmt: skip
def _projection(call: Call) -> v.Projection:
    crs = call.string("crs")
    try:
        to_pyproj(crs)
    except Exception:  # noqa: BLE001 - any unreadable CRS is the caller's mistake
        raise call.error(f"Unknown CRS {crs!r}.") from None
    transform = call.get("transform") or [1, 0, 0, 0, 1, 0]
    numbers = isinstance(transform, list) and all(isinstance(x, (int, float)) for x in transform)
    if not (numbers and len(transform) == 6):
        raise call.error(
            f"transform must be 6 numbers [xScale, xShear, xOffset, yShear, yScale, yOffset]: {transform!r}"
        )
    return v.Projection(crs, tuple(float(x) for x in transform))  # type: ignore[arg-type]


@algorithm("Projection.crs", "String", "The CRS code of a projection.", ("projection", "Projection"))
def _projection_crs(call: Call) -> str:
    return call.of("projection", v.Projection, "Projection").crs


@algorithm("Projection.nominalScale", "Float", "The pixel size in metres.", ("proj", "Projection"))
def _nominal_scale(call: Call) -> float:
    projection = call.of("proj", v.Projection, "Projection")
    a, b, _, d, e, _ = projection.transform
    scale = math.sqrt(abs(a * e - b * d))
    crs = pyproj.CRS.from_user_input(to_pyproj(projection.crs))
    return scale * _EARTH_METRES_PER_DEGREE if crs.is_geographic else scale * _unit_factor(crs)


def _unit_factor(crs: pyproj.CRS) -> float:
    axes = crs.axis_info
    return float(axes[0].unit_conversion_factor) if axes else 1.0
