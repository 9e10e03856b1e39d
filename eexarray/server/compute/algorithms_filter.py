"""Filters and what they are built from: dates, date ranges, geometries, features.

A binary filter compares an element property (``leftField``/``rightField``) with a
value (``rightValue``/``leftValue``), as ``ee.Filter`` serializes them. Field names:
any property, ``system:time_start`` etc., and ``.all`` / ``.geo`` for the footprint
(the first band's native grid outline in EPSG:4326). Comparisons with a missing
property fail the filter, as in Earth Engine. Geometries are GeoJSON in EPSG:4326;
intersection is planar in longitude/latitude (``eexarray.server.geojson``).
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import zoneinfo
from collections.abc import Callable
from typing import Any

import pyproj

from eexarray.geometry import to_pyproj
from eexarray.server.compute import values as v
from eexarray.server.compute.assets import millis
from eexarray.server.compute.joda import DEFAULT_PATTERN, format_date
from eexarray.server.compute.registry import Call, algorithm, opt
from eexarray.server.geojson import GeometryError, grid_footprint, intersects, parse_geometry

_SIDES = (opt("leftField", "String"), opt("rightValue", "Object"), opt("rightField", "String"),
          opt("leftValue", "Object"))  # fmt: skip
MISSING = object()
GEOMETRY_FIELDS = (".all", ".geo")


# -- dates ----------------------------------------------------------------------------
def to_millis(value: Any, what: str, call: Call) -> int:
    """Milliseconds since the epoch of a Date, a number of milliseconds or ISO 8601 text."""
    if isinstance(value, v.Date):
        return value.millis
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise call.error(f"{what} must be a finite number of milliseconds, got {value!r}.")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise call.error(f"{what}: cannot parse date {value!r}; use ISO 8601 such as 2020-01-31") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return millis(parsed)
    raise call.error(f"{what} must be a Date, a number of milliseconds or a date string, got {v.type_name(value)}.")


@algorithm("Date", "Date", "A date from milliseconds since the epoch or an ISO 8601 string (UTC).",
           ("value", "Object"), opt("timeZone", "String"))  # fmt: skip
def _date(call: Call) -> v.Date:
    if call.get("timeZone") not in (None, "UTC", "Etc/UTC", "GMT"):
        raise call.error(f"Only UTC dates are supported by this server, got timeZone {call.get('timeZone')!r}.")
    return v.Date(to_millis(call.get("value"), "value", call))


@algorithm("Date.format", "String", "The date as text, by a Joda-Time pattern (default yyyy-MM-dd'T'HH:mm:ss).",
           ("date", "Date"), opt("format", "String"), opt("timeZone", "String"))  # fmt: skip
def _date_format(call: Call) -> str:
    date = call.of("date", v.Date, "Date")
    zone_name = call.optional_string("timeZone") or "UTC"
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise call.error(
            f"Unknown timeZone {zone_name!r}; use an IANA name such as 'UTC' or 'America/Los_Angeles'."
        ) from None
    try:
        return format_date(date.datetime.astimezone(zone), call.optional_string("format") or DEFAULT_PATTERN)
    except ValueError as error:
        raise call.error(str(error)) from None


@algorithm("Date.millis", "Long", "Milliseconds since the epoch.", ("date", "Date"))
def _date_millis(call: Call) -> int:
    return call.of("date", v.Date, "Date").millis


@algorithm("DateRange", "DateRange", "The dates from start (inclusive) to end (exclusive; default start + 1 ms).",
           ("start", "Object"), opt("end", "Object"), opt("timeZone", "String"))  # fmt: skip
def _date_range(call: Call) -> v.DateRange:
    start = to_millis(call.get("start"), "start", call)
    end = start + 1 if call.get("end") is None else to_millis(call.get("end"), "end", call)
    return v.DateRange(start, end)


@algorithm("Image.date", "Date", "The image's system:time_start as a Date.", ("image", "Image<unknown bands>"))
def _image_date(call: Call) -> v.Date | None:
    start = call.image("image").properties.get("system:time_start")
    return None if start is None else v.Date(int(start))


# -- geometries -------------------------------------------------------------------------
def _geometry_crs(call: Call) -> tuple[str, tuple[float, ...]] | None:
    """The geometry's projection (CRS, affine) when it is not plain EPSG:4326 degrees."""
    crs = call.get("crs")
    if crs is None or crs == "EPSG:4326":
        return None
    if isinstance(crs, v.Projection):
        if crs.crs == "EPSG:4326" and tuple(crs.transform) == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0):
            return None
        return crs.crs, tuple(crs.transform)
    if isinstance(crs, str):
        return crs, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    raise call.error(f"crs must be a Projection or a CRS code, got {v.type_name(crs)}.")


def _map_points(value: Any, function: Callable[[float, float], tuple[float, float]]) -> Any:
    if isinstance(value, list) and len(value) >= 2 and all(isinstance(x, (int, float)) for x in value[:2]):
        return list(function(float(value[0]), float(value[1])))
    if isinstance(value, list):
        return [_map_points(item, function) for item in value]
    return value


def _in_projection(call: Call, geojson: dict[str, Any], projection: tuple[str, tuple[float, ...]]) -> v.Geometry:
    """A geometry whose coordinates are in ``projection`` (affine applied, then the CRS): kept in both."""
    crs, (a, b, c, d, e, f) = projection
    try:
        transformer = pyproj.Transformer.from_crs(to_pyproj(crs), "EPSG:4326", always_xy=True)
    except (pyproj.exceptions.CRSError, ValueError) as error:
        raise call.error(f"Unknown CRS {crs!r}: {error}") from None
    native = {
        **geojson,
        "coordinates": _map_points(geojson["coordinates"], lambda x, y: (a * x + b * y + c, d * x + e * y + f)),
    }
    degrees = {**geojson, "coordinates": _map_points(native["coordinates"], lambda x, y: transformer.transform(x, y))}
    return v.Geometry(degrees, (crs, native))


def _geometry(call: Call, kind: str) -> v.Geometry:
    projection = _geometry_crs(call)
    coordinates = call.get("coordinates")
    if kind == "Rectangle":
        flat = coordinates
        if isinstance(flat, list) and len(flat) == 2 and all(isinstance(p, list) for p in flat):
            flat = [*flat[0], *flat[1]]
        if not (isinstance(flat, list) and len(flat) == 4 and all(isinstance(x, (int, float)) for x in flat)):
            raise call.error(f"coordinates must be [xmin, ymin, xmax, ymax], got {coordinates!r}")
        x0, y0, x1, y1 = flat
        kind, coordinates = "Polygon", [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]
    if kind == "Polygon" and isinstance(coordinates, list):
        coordinates = [_closed(ring) for ring in coordinates]
    if kind == "MultiPolygon" and isinstance(coordinates, list):
        coordinates = [[_closed(ring) for ring in polygon] if isinstance(polygon, list) else polygon
                       for polygon in coordinates]  # fmt: skip
    geojson = {"type": kind, "coordinates": coordinates}
    if projection is not None:
        _check_numbers(call, coordinates)
        geometry = _in_projection(call, geojson, projection)
        geojson = geometry.geojson
    try:
        parse_geometry(geojson)
    except GeometryError as error:
        raise call.error(f"Invalid {kind} coordinates: {error}") from None
    return geometry if projection is not None else v.Geometry(geojson)


def _check_numbers(call: Call, value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _check_numbers(call, item)
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise call.error(f"Coordinates must be finite numbers, got {value!r}.")


@algorithm("GeometryConstructors.BBox", "Geometry", "A planar lon/lat rectangle from its edges.",
           ("west", "Float"), ("south", "Float"), ("east", "Float"), ("north", "Float"))  # fmt: skip
def _bbox(call: Call) -> v.Geometry:
    west, south, east, north = (call.finite(name) for name in ("west", "south", "east", "north"))
    if east - west >= 360:
        west, east = -180.0, 180.0
    elif east < west:
        raise call.error(f"east ({east}) < west ({west}): rectangles across the antimeridian are not supported here.")
    if not -90 <= south <= north <= 90:
        raise call.error(f"Need -90 <= south <= north <= 90, got south={south}, north={north}.")
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return v.Geometry({"type": "Polygon", "coordinates": [ring]})


def _closed(ring: Any) -> Any:
    if isinstance(ring, list) and len(ring) >= 3 and ring[0] != ring[-1]:
        return [*ring, ring[0]]
    return ring


_GEOMETRY_OPTIONS = {
    "Point": ("crs",), "MultiPoint": ("crs",), "Rectangle": ("crs", "geodesic", "evenOdd"),
    "LineString": ("crs", "geodesic", "maxError"), "MultiLineString": ("crs", "geodesic", "maxError"),
    "Polygon": ("crs", "geodesic", "maxError", "evenOdd"), "MultiPolygon": ("crs", "geodesic", "maxError", "evenOdd"),
}  # fmt: skip
_OPTION_ARGS = {"crs": opt("crs", "Projection"), "geodesic": opt("geodesic", "Boolean"),
                "maxError": opt("maxError", "ErrorMargin"), "evenOdd": opt("evenOdd", "Boolean", "", True)}  # fmt: skip


def _register_geometry(kind: str) -> None:
    @algorithm(
        f"GeometryConstructors.{kind}",
        "Geometry",
        f"A {kind} in EPSG:4326 (planar).",
        ("coordinates", "List<Object>"),
        *[_OPTION_ARGS[name] for name in _GEOMETRY_OPTIONS[kind]],
    )
    def implementation(call: Call) -> v.Geometry:  # fmt: skip
        return _geometry(call, kind)


for _kind in _GEOMETRY_OPTIONS:
    _register_geometry(_kind)


@algorithm(
    "Feature",
    "Feature",
    "A feature: a geometry and properties.",
    opt("geometry", "Geometry"),
    opt("metadata", "Dictionary<Object>", "", {}),
    opt("geometryKey", "String"),
)
def _feature(call: Call) -> v.Feature:  # fmt: skip
    geometry = call.get("geometry")
    if geometry is not None and not isinstance(geometry, v.Geometry):
        raise call.error(f"geometry must be a Geometry, got {v.type_name(geometry)}.")
    return v.Feature(geometry, dict(call.dictionary("metadata")) if call.get("metadata") is not None else {})


@algorithm("Geometry.bounds", "Geometry", "The bounding rectangle of a geometry.",
           ("geometry", "Geometry"), opt("maxError", "ErrorMargin"), opt("proj", "Projection"))  # fmt: skip
def _bounds(call: Call) -> v.Geometry:
    shapes = parse_geometry(call.of("geometry", v.Geometry, "Geometry").geojson)
    points = [*shapes.points, *(p for line in shapes.lines for p in line),
              *(p for polygon in shapes.polygons for ring in polygon for p in ring)]  # fmt: skip
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
    return v.Geometry({"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]})


# -- element fields -----------------------------------------------------------------------
def field_value(element: Any, name: str) -> Any:
    """A property of an image (or feature); the footprint for ``.all``/``.geo``; MISSING when absent."""
    if name in GEOMETRY_FIELDS:
        if isinstance(element, v.Feature):
            return element.geometry if element.geometry is not None else MISSING
        if isinstance(element, v.Image):
            grids = [band.grid for band in element.bands if band.grid is not None]
            return v.Geometry(grid_footprint(grids[0])) if grids else MISSING
        return MISSING
    properties = getattr(element, "properties", None)
    if properties is None or name not in properties or properties[name] is None:
        return MISSING
    return properties[name]


def _sides(call: Call) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    def side(field: str, value: str, which: str) -> Callable[[Any], Any]:
        field_name, constant = call.get(field), call.get(value)
        if field_name is not None and constant is not None:
            raise call.error(f"Give {field} or {value} for the {which} operand, not both.")
        if field_name is not None:
            if not isinstance(field_name, str):
                raise call.error(f"{field} must be a property name, got {v.type_name(field_name)}.")
            return lambda element: field_value(element, field_name)
        return lambda element: constant

    left, right = side("leftField", "leftValue", "left"), side("rightField", "rightValue", "right")
    if call.get("leftField") is None and call.get("rightField") is None:
        raise call.error("A filter needs leftField or rightField: which property of the elements to test.")
    return left, right


def _comparable(value: Any) -> Any:
    if isinstance(value, v.Date):
        return value.millis
    return value


def _register_comparison(
    names: tuple[str, ...], test: Callable[[Any, Any], bool], description: str, *extra: Any
) -> None:
    for name in names:

        @algorithm(f"Filter.{name}", "Filter", description, *_SIDES, *extra)
        def implementation(call: Call, name: str = name) -> v.Filter:
            left, right = _sides(call)

            def passes(element: Any) -> bool:
                a, b = _comparable(left(element)), _comparable(right(element))
                if a is MISSING or b is MISSING:
                    return False
                try:
                    return bool(test(a, b))
                except (TypeError, ValueError):  # e.g. a string against a number: no match, as in Earth Engine
                    return False

            return v.Filter(passes, f"Filter.{name}")


_register_comparison(("equals", "eq"), operator.eq, "Passes if left equals right.")
_register_comparison(("notEquals", "neq"), operator.ne, "Passes if left does not equal right.")
_register_comparison(("lessThan", "lt"), operator.lt, "Passes if left < right.")
_register_comparison(("lessThanOrEquals", "lte"), operator.le, "Passes if left <= right.")
_register_comparison(("greaterThan", "gt"), operator.gt, "Passes if left > right.")
_register_comparison(("greaterThanOrEquals", "gte"), operator.ge, "Passes if left >= right.")
_register_comparison(("stringContains",), lambda a, b: isinstance(a, str) and str(b) in a, "left contains right.")
_register_comparison(("stringStartsWith",), lambda a, b: isinstance(a, str) and a.startswith(str(b)),
                     "left starts with right.")  # fmt: skip
_register_comparison(("stringEndsWith",), lambda a, b: isinstance(a, str) and a.endswith(str(b)),
                     "left ends with right.")  # fmt: skip
_register_comparison(("listContains",), lambda a, b: isinstance(a, list) and b in a, "The left list contains right.")
_register_comparison(("inList",), lambda a, b: isinstance(b, list) and a in b, "left is in the right list.")


def _contains_date(range_value: Any, date: Any) -> bool:
    if not isinstance(range_value, v.DateRange):
        raise TypeError
    return range_value.start <= int(date) < range_value.end


_register_comparison(("dateRangeContains",), _contains_date, "The left date range contains the right date.")


def _geometry_of(value: Any) -> v.Geometry:
    if isinstance(value, v.Feature) and value.geometry is not None:
        return value.geometry
    if isinstance(value, v.Geometry):
        return value
    raise TypeError


def _intersects(a: Any, b: Any) -> bool:
    return intersects(parse_geometry(_geometry_of(a).geojson), parse_geometry(_geometry_of(b).geojson))


_register_comparison(
    ("intersects",),
    _intersects,
    "The left geometry intersects the right geometry.",
    opt("maxError", "ErrorMargin", "Ignored: intersection is exact (planar in lon/lat)."),
)


@algorithm("Filter.rangeContains", "Filter", "Passes if minValue <= field <= maxValue.",
           ("field", "String"), ("minValue", "Object"), ("maxValue", "Object"))  # fmt: skip
def _range_contains(call: Call) -> v.Filter:
    name, low, high = call.string("field"), call.get("minValue"), call.get("maxValue")

    def passes(element: Any) -> bool:
        value = field_value(element, name)
        try:
            return value is not MISSING and low <= value <= high
        except TypeError:
            return False

    return v.Filter(passes, "Filter.rangeContains")


@algorithm("Filter.and", "Filter", "Passes if all filters pass.", ("filters", "List<Filter>"))
def _and(call: Call) -> v.Filter:
    filters = _filters(call)
    return v.Filter(lambda element: all(f.test(element) for f in filters), "Filter.and")


@algorithm("Filter.or", "Filter", "Passes if any filter passes.", ("filters", "List<Filter>"))
def _or(call: Call) -> v.Filter:
    filters = _filters(call)
    return v.Filter(lambda element: any(f.test(element) for f in filters), "Filter.or")


@algorithm("Filter.not", "Filter", "Passes if the filter fails.", ("filter", "Filter"))
def _not(call: Call) -> v.Filter:
    inner = call.of("filter", v.Filter, "Filter")
    return v.Filter(lambda element: not inner.test(element), "Filter.not")


@algorithm("Filter.always", "Filter", "Passes always.")
def _always(call: Call) -> v.Filter:
    return v.Filter(lambda element: True, "Filter.always")


@algorithm("Filter.notNull", "Filter", "Passes if all the properties are present and not null.",
           ("properties", "List<String>"))  # fmt: skip
def _not_null(call: Call) -> v.Filter:
    names = call.string_list("properties")
    return v.Filter(lambda element: all(field_value(element, n) is not MISSING for n in names), "Filter.notNull")


def _filters(call: Call) -> list[v.Filter]:
    filters = call.sequence("filters")
    for item in filters:
        if not isinstance(item, v.Filter):
            raise call.error(f"filters must be a list of Filters, got an item of type {v.type_name(item)}.")
    return filters
