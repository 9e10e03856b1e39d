"""Validate and normalise the keyword options of ``open_dataset`` before any request.

Every bad value raises here with a message naming it and what would be valid,
so no request is made for an open that cannot succeed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eexarray.geometry import PixelGrid, normalize_crs
from eexarray.geometry.grid import InvalidGridError, _scale_pair
from eexarray.planning import MAX_BANDS

FILE_FORMATS = ("NPY", "GEO_TIFF")
Bounds = tuple[float, float, float, float]


@dataclass(frozen=True)
class OpenOptions:
    bands: tuple[str, ...] | None = None
    crs: str | None = None
    scale: tuple[float, float] | None = None
    region: Bounds | None = None  # west, south, east, north in EPSG:4326
    grid: PixelGrid | None = None
    start: str | None = None  # RFC 3339, inclusive
    end: str | None = None  # RFC 3339, exclusive
    filter: str | None = None
    mask_and_scale: bool = False
    file_format: str = "NPY"


def parse_bands(bands: Any) -> tuple[str, ...] | None:
    if bands is None:
        return None
    if isinstance(bands, str):
        bands = [bands]
    if not isinstance(bands, Sequence) or not all(isinstance(b, str) and b for b in bands):
        raise TypeError(f"bands must be a list of band ids (strings), got {bands!r}")
    if not bands:
        raise ValueError("bands is empty: select at least one band, or pass None for all bands")
    duplicates = sorted({b for b in bands if list(bands).count(b) > 1})
    if duplicates:
        raise ValueError(f"bands lists {duplicates} more than once; each band may be selected once")
    if len(bands) > MAX_BANDS * 64:
        raise ValueError(f"{len(bands)} bands selected; that is more than any image has")
    return tuple(bands)


def parse_region(region: Any) -> Bounds:
    """(west, south, east, north) in EPSG:4326 from a GeoJSON dict, a shapely geometry or a 4-tuple."""
    if hasattr(region, "bounds") and hasattr(region, "geom_type"):  # shapely, without importing it
        if region.is_empty:
            raise ValueError(f"region {region!r} is an empty geometry")
        bounds = tuple(float(v) for v in region.bounds)
    elif isinstance(region, dict):
        bounds = _geojson_bounds(region)
    elif isinstance(region, (tuple, list)) and len(region) == 4:
        if not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in region):
            raise TypeError(f"region bounds must be four numbers (west, south, east, north), got {region!r}")
        bounds = tuple(float(v) for v in region)
    else:
        raise TypeError(
            "region must be a GeoJSON geometry dict, a shapely geometry or (west, south, east, north) "
            f"in EPSG:4326 degrees, got {type(region).__name__}: {region!r}"
        )
    west, south, east, north = bounds
    if not all(math.isfinite(v) for v in bounds):
        raise ValueError(f"region bounds {bounds} are not finite")
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90):
        raise ValueError(
            f"region bounds {bounds} are outside longitude [-180, 180] / latitude [-90, 90]; "
            "regions are given in EPSG:4326 degrees"
        )
    if west >= east or south >= north:
        raise ValueError(f"region bounds {bounds} are empty or inverted: expected west < east and south < north")
    return bounds  # type: ignore[return-value]


def _geojson_bounds(geometry: dict[str, Any]) -> Bounds:
    kind = geometry.get("type")
    if kind == "Feature":
        return _geojson_bounds(geometry.get("geometry") or {})
    if kind == "GeometryCollection":
        parts = [_geojson_bounds(g) for g in geometry.get("geometries", [])]
        if not parts:
            raise ValueError("region is an empty GeometryCollection")
        return (min(p[0] for p in parts), min(p[1] for p in parts), max(p[2] for p in parts), max(p[3] for p in parts))
    if kind not in ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"):
        raise ValueError(f"region GeoJSON type {kind!r} is not a geometry type (Polygon, MultiPolygon, Point, ...)")
    points = np.asarray(_flatten_positions(geometry.get("coordinates")), dtype="float64")
    if points.size == 0:
        raise ValueError(f"region GeoJSON {kind} has no coordinates")
    return (points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max())


def _flatten_positions(coordinates: Any) -> list[list[float]]:
    if not isinstance(coordinates, (list, tuple)):
        raise ValueError(f"region GeoJSON coordinates are malformed: {coordinates!r}")
    if coordinates and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in coordinates):
        if len(coordinates) < 2:
            raise ValueError(f"region GeoJSON position {coordinates!r} needs longitude and latitude")
        return [list(coordinates[:2])]
    positions: list[list[float]] = []
    for part in coordinates:
        positions.extend(_flatten_positions(part))
    return positions


def parse_time(value: Any, name: str) -> str | None:
    """An RFC 3339 UTC string from a string, datetime, date or numpy/pandas timestamp."""
    if value is None:
        return None
    original = value
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[us]").astype(dt.datetime)
    elif hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{name}={original!r} is not a date: expected ISO 8601 such as '2021-06-01' or '2021-06-01T12:00:00Z'"
            ) from None
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} must be a date string, datetime or numpy.datetime64, got {type(original).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_options(
    *,
    bands: Any = None,
    crs: Any = None,
    scale: Any = None,
    region: Any = None,
    grid: Any = None,
    start: Any = None,
    end: Any = None,
    filter: Any = None,
    mask_and_scale: Any = False,
    file_format: Any = "NPY",
) -> OpenOptions:
    if grid is not None and any(v is not None for v in (crs, scale, region)):
        raise ValueError("grid is exclusive with crs/scale/region: pass either a full grid or crs/scale/region")
    parsed_grid = None
    if grid is not None:
        if isinstance(grid, PixelGrid):
            parsed_grid = grid
        elif isinstance(grid, dict):
            parsed_grid = PixelGrid.from_rest(grid)
        else:
            raise TypeError(
                "grid must be a PixelGrid or a REST PixelGrid dict (dimensions, affineTransform, crsCode), "
                f"got {grid!r}"
            )
    try:
        scale_pair = _scale_pair(scale) if scale is not None else None
    except InvalidGridError as error:
        raise ValueError(str(error)) from None
    start_text, end_text = parse_time(start, "start"), parse_time(end, "end")
    if start_text and end_text and start_text >= end_text:
        raise ValueError(f"start={start!r} is not before end={end!r}: the time range is empty")
    if filter is not None and (not isinstance(filter, str) or not filter.strip()):
        raise ValueError(f"filter must be a non-empty AIP-160 filter string, got {filter!r}")
    if not isinstance(mask_and_scale, bool):
        raise TypeError(f"mask_and_scale must be True or False, got {mask_and_scale!r}")
    if file_format not in FILE_FORMATS:
        raise ValueError(f"file_format={file_format!r} is not supported; use one of {FILE_FORMATS}")
    return OpenOptions(
        bands=parse_bands(bands),
        crs=normalize_crs(crs) if crs is not None else None,
        scale=scale_pair,
        region=parse_region(region) if region is not None else None,
        grid=parsed_grid,
        start=start_text,
        end=end_text,
        filter=filter,
        mask_and_scale=mask_and_scale,
        file_format=file_format,
    )
