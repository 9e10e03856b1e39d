"""Just enough GeoJSON for the server: image footprints and ``intersects`` tests.

Footprints are the outline of a band's native grid, densified and reprojected to
EPSG:4326 (what the REST ``geometry`` field holds). Intersection is planar in
longitude/latitude, exact for the polygons, lines and points GeoJSON can express;
that is all listImages' ``region`` needs, without a geometry library dependency.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj

from eexarray.geometry import PixelGrid, to_pyproj
from eexarray.geometry.grid import transform_bounds

Point = tuple[float, float]
WORLD = (-180.0, -90.0, 180.0, 90.0)
_EDGE_POINTS = 16  # per grid edge: curved edges in EPSG:4326 stay close to the truth


class GeometryError(ValueError):
    """GeoJSON that is not a geometry this server understands."""


@dataclass(frozen=True)
class Shapes:
    """A geometry flattened to points, polylines and polygons (lists of rings)."""

    points: tuple[Point, ...] = ()
    lines: tuple[tuple[Point, ...], ...] = ()
    polygons: tuple[tuple[tuple[Point, ...], ...], ...] = ()


# -- footprints -----------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def grid_footprint(grid: PixelGrid) -> dict[str, Any]:
    """The GeoJSON Polygon (EPSG:4326, counter-clockwise) outlining ``grid``."""
    steps = np.linspace(0.0, 1.0, _EDGE_POINTS, endpoint=False)
    width, height = grid.width, grid.height
    cols = np.concatenate([steps * width, np.full(_EDGE_POINTS, width), (1 - steps) * width, np.zeros(_EDGE_POINTS)])
    rows = np.concatenate([np.zeros(_EDGE_POINTS), steps * height, np.full(_EDGE_POINTS, height), (1 - steps) * height])
    transform = grid.transform
    xs = transform.a * cols + transform.b * rows + transform.c
    ys = transform.d * cols + transform.e * rows + transform.f
    ring: list[Point] | None = None
    try:
        transformer = pyproj.Transformer.from_crs(to_pyproj(grid.crs), to_pyproj("EPSG:4326"), always_xy=True)
        lons, lats = transformer.transform(xs, ys)
        if np.all(np.isfinite(lons)) and np.all(np.isfinite(lats)):
            ring = list(zip(np.clip(lons, -180, 180).tolist(), np.clip(lats, -90, 90).tolist()))
    except pyproj.exceptions.ProjError:
        ring = None
    if ring is None or _signed_area(ring) == 0:
        try:
            ring = _box_ring(transform_bounds(grid.bounds, grid.crs, "EPSG:4326"))
        except ValueError:
            ring = _box_ring(WORLD)
    if _signed_area(ring) < 0:
        ring.reverse()
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [[list(point) for point in ring]]}


def _box_ring(bounds: tuple[float, float, float, float]) -> list[Point]:
    west, south, east, north = (
        max(-180.0, bounds[0]),
        max(-90.0, bounds[1]),
        min(180.0, bounds[2]),
        min(90.0, bounds[3]),
    )
    return [(west, south), (east, south), (east, north), (west, north)]


def _signed_area(ring: list[Point]) -> float:
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]))


# -- parsing --------------------------------------------------------------------------
def parse_geometry_text(text: str) -> Shapes:
    """Shapes of GeoJSON text (single quotes allowed, as the official client writes it) or WKT."""
    stripped = text.strip()
    if stripped[:1].isalpha():
        try:
            return parse_geometry(_geojson_from_wkt(stripped))
        except (ValueError, AttributeError) as error:
            raise GeometryError(f"Region is not valid WKT: {error}") from None
    return parse_geometry(stripped)


_WKT_TYPES = {
    "POINT": "Point",
    "MULTIPOINT": "MultiPoint",
    "LINESTRING": "LineString",
    "MULTILINESTRING": "MultiLineString",
    "POLYGON": "Polygon",
    "MULTIPOLYGON": "MultiPolygon",
}


def _geojson_from_wkt(text: str) -> dict[str, Any]:
    """A GeoJSON geometry from WKT (POINT, LINESTRING, POLYGON and their MULTI forms, EMPTY)."""
    head = re.match(r"([A-Za-z]+)\s*(?:(?:ZM|Z|M)\s+|(?:ZM|Z|M)(?=\())?", text)
    if head is None:
        raise ValueError(f"WKT must start with a geometry type ({', '.join(_WKT_TYPES)}), got {text[:40]!r}")
    kind = _WKT_TYPES.get(head.group(1).upper())
    if kind is None:
        raise ValueError(f"unsupported WKT type {head.group(1)!r}; valid types are {', '.join(_WKT_TYPES)}")
    body = text[head.end() :].strip()
    if body.upper() == "EMPTY":
        return {"type": kind, "coordinates": []}
    tokens = re.findall(r"\(|\)|,|[^\s(),]+", body)

    def nested(i: int) -> tuple[list[Any], int]:  # tokens[i] == "("
        items: list[Any] = []
        i += 1
        while True:
            if tokens[i] == "(":
                item, i = nested(i)
            else:
                item = []
                while tokens[i] not in (",", ")"):
                    item.append(float(tokens[i]))
                    i += 1
            items.append(item)
            if tokens[i] == ")":
                return items, i + 1
            if tokens[i] != ",":
                raise ValueError(f"unexpected {tokens[i]!r}")
            i += 1

    try:
        if not tokens or tokens[0] != "(":
            raise ValueError("expected '(' after the type name")
        coordinates, end = nested(0)
        if end != len(tokens):
            raise ValueError(f"unexpected {tokens[end]!r} after the closing ')'")
    except IndexError:
        raise ValueError("unbalanced parentheses in WKT") from None
    if kind == "Point":
        coordinates = coordinates[0]
    elif kind == "MultiPoint":  # both "MULTIPOINT (1 2, 3 4)" and "MULTIPOINT ((1 2), (3 4))"
        coordinates = [c[0] if len(c) == 1 and isinstance(c[0], list) else c for c in coordinates]
    return {"type": kind, "coordinates": coordinates}


def parse_geometry(value: Any) -> Shapes:
    """Shapes of a GeoJSON geometry given as a dict or JSON text (single quotes allowed)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:  # the official client swaps " for ' inside filters
                value = json.loads(value.replace("'", '"'))
            except json.JSONDecodeError:
                raise GeometryError(f"Region is not GeoJSON: {value[:200]!r}") from None
    points: list[Point] = []
    lines: list[tuple[Point, ...]] = []
    polygons: list[tuple[tuple[Point, ...], ...]] = []
    _collect(value, points, lines, polygons)
    return Shapes(tuple(points), tuple(lines), tuple(polygons))


def _collect(value: Any, points: list, lines: list, polygons: list) -> None:
    if not isinstance(value, dict) or "type" not in value:
        raise GeometryError(f"A GeoJSON geometry must be an object with a 'type', got {str(value)[:200]!r}")
    kind = value["type"]
    if kind == "GeometryCollection":
        for member in _require_list(value.get("geometries"), "geometries"):
            _collect(member, points, lines, polygons)
        return
    if kind == "Feature":
        _collect(value.get("geometry"), points, lines, polygons)
        return
    coordinates = value.get("coordinates")
    if kind == "Point":
        points.append(_point(coordinates))
    elif kind == "MultiPoint":
        points.extend(_point(p) for p in _require_list(coordinates, "coordinates"))
    elif kind == "LineString":
        lines.append(_path(coordinates))
    elif kind == "MultiLineString":
        lines.extend(_path(line) for line in _require_list(coordinates, "coordinates"))
    elif kind in ("Polygon", "LinearRing"):
        if coordinates != []:  # an empty Polygon (WKT "POLYGON EMPTY") has no area at all
            polygons.append(_rings(coordinates if kind == "Polygon" else [coordinates]))
    elif kind == "MultiPolygon":
        polygons.extend(_rings(polygon) for polygon in _require_list(coordinates, "coordinates") if polygon != [])
    else:
        raise GeometryError(
            f"Unsupported geometry type {kind!r}: expected Point, MultiPoint, LineString, MultiLineString, "
            "Polygon, MultiPolygon or GeometryCollection"
        )


def _require_list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise GeometryError(f"GeoJSON {what} must be a list, got {str(value)[:200]!r}")
    return value


def _point(value: Any) -> Point:
    if (
        not isinstance(value, (list, tuple))
        or len(value) < 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value[:2])
    ):
        raise GeometryError(f"A GeoJSON position must be [x, y] numbers, got {str(value)[:200]!r}")
    return (float(value[0]), float(value[1]))


def _path(value: Any) -> tuple[Point, ...]:
    path = tuple(_point(p) for p in _require_list(value, "coordinates"))
    if not path:
        raise GeometryError("A GeoJSON line or ring needs at least one position")
    return path


def _rings(value: Any) -> tuple[tuple[Point, ...], ...]:
    rings = tuple(_path(ring) for ring in _require_list(value, "coordinates"))
    if not rings:
        raise GeometryError("A GeoJSON polygon needs an exterior ring")
    for ring in rings:
        if len(set(ring)) < 3:
            raise GeometryError(f"A GeoJSON polygon ring needs at least 3 distinct positions, got {list(ring)[:6]}")
    return rings


# -- intersection ---------------------------------------------------------------------
def intersects(first: Shapes, second: Shapes) -> bool:
    """Whether two geometries share at least one point (boundaries included)."""
    first_segments, second_segments = _segments(first), _segments(second)
    for a in first_segments:
        for b in second_segments:
            if _segments_intersect(a, b):
                return True
    # No boundary crossing: one geometry touches the other only if one of its
    # vertices (any will do) lies inside or on it.
    return _any_vertex_inside(first, second) or _any_vertex_inside(second, first)


def _segments(shapes: Shapes) -> list[tuple[Point, Point]]:
    segments: list[tuple[Point, Point]] = []
    rings = [ring if ring[0] == ring[-1] else ring + (ring[0],) for polygon in shapes.polygons for ring in polygon]
    for path in list(shapes.lines) + rings:
        segments.extend(itertools.pairwise(path))
        if len(path) == 1:  # a degenerate line is a point
            segments.append((path[0], path[0]))
    return segments


def _any_vertex_inside(inner: Shapes, outer: Shapes) -> bool:
    vertices = list(inner.points) + [line[0] for line in inner.lines] + [polygon[0][0] for polygon in inner.polygons]
    for vertex in vertices:
        if any(_in_polygon(vertex, polygon) for polygon in outer.polygons):
            return True
        if any(_on_segment(vertex, a, b) for a, b in _segments(outer)):
            return True
        if vertex in outer.points:
            return True
    return False


def _in_polygon(point: Point, rings: tuple[tuple[Point, ...], ...]) -> bool:
    inside = _in_ring(point, rings[0])
    return inside and not any(_in_ring(point, hole) and not _on_ring(point, hole) for hole in rings[1:])


def _in_ring(point: Point, ring: tuple[Point, ...]) -> bool:
    if _on_ring(point, ring):
        return True
    x, y = point
    inside = False
    closed = ring if ring[0] == ring[-1] else ring + (ring[0],)
    for (x0, y0), (x1, y1) in itertools.pairwise(closed):
        if (y0 > y) != (y1 > y):
            crossing = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
            if x < crossing:
                inside = not inside
    return inside


def _on_ring(point: Point, ring: tuple[Point, ...]) -> bool:
    closed = ring if ring[0] == ring[-1] else ring + (ring[0],)
    return any(_on_segment(point, a, b) for a, b in itertools.pairwise(closed))


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _on_segment(point: Point, a: Point, b: Point) -> bool:
    if _cross(a, b, point) != 0:
        return False
    return min(a[0], b[0]) <= point[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= point[1] <= max(a[1], b[1])


def _segments_intersect(first: tuple[Point, Point], second: tuple[Point, Point]) -> bool:
    (p1, p2), (q1, q2) = first, second
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    if ((d1 > 0 and d2 < 0) or (d1 < 0 and d2 > 0)) and ((d3 > 0 and d4 < 0) or (d3 < 0 and d4 > 0)):
        return True
    return _on_segment(p1, q1, q2) or _on_segment(p2, q1, q2) or _on_segment(q1, p1, p2) or _on_segment(q2, p1, p2)
