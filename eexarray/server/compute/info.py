"""``value:compute`` results: values as the official client's ``getInfo()`` returns them.

* Image: ``{"type": "Image", "bands": [{"id", "data_type": {"type": "PixelType",
  "precision": "int"|"float"|"double", "min", "max"}, "dimensions": [w, h], "crs",
  "crs_transform": [a, b, c, d, e, f]}], "id", "version", "properties": {...}}``.
  ``id``/``version`` only for stored images; bands without a native grid (composites,
  constants) report EPSG:4326 with a 1-degree transform and no dimensions, as Earth
  Engine does. Properties include ``system:index``, ``system:time_start``,
  ``system:time_end`` and, for stored images, ``system:footprint`` (a LinearRing).
* ImageCollection: ``{"type": "ImageCollection", "bands": [], "id", "version",
  "properties", "features": [Image, ...]}``.
* Date ``{"type": "Date", "value": ms}``, DateRange, Projection, Geometry (GeoJSON),
  Feature; PixelType as in ``data_type``; lists and dictionaries element-wise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from eexarray.server.compute import values as v
from eexarray.server.compute.pixeltype import PixelType
from eexarray.server.errors import invalid_argument
from eexarray.server.geojson import grid_footprint

_HIDDEN_PROPERTIES = ("system:id", "system:version")  # reported as "id" and "version" instead
_DEGREE = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def band_info(band: v.Band) -> dict[str, Any]:
    info: dict[str, Any] = {"id": band.id, "data_type": band.pixel_type.to_info()}
    if band.grid is None:
        info["crs"], info["crs_transform"] = "EPSG:4326", list(_DEGREE)
        return info
    t = band.grid.transform
    info["dimensions"] = [band.grid.width, band.grid.height]
    info["crs"] = band.grid.crs
    info["crs_transform"] = [t.a, t.b, t.c, t.d, t.e, t.f]
    return info


def image_info(image: v.Image) -> dict[str, Any]:
    info: dict[str, Any] = {"type": "Image", "bands": [band_info(band) for band in image.bands]}
    if image.asset_id is not None:
        info["id"] = image.asset_id
        info["version"] = image.version
    properties = {k: to_json(value) for k, value in image.properties.items() if k not in _HIDDEN_PROPERTIES}
    if image.asset_id is not None and image.bands and image.bands[0].grid is not None:
        ring = grid_footprint(image.bands[0].grid)["coordinates"][0]
        properties["system:footprint"] = {"type": "LinearRing", "coordinates": ring}
    info["properties"] = properties
    return info


def collection_info(collection: v.Collection) -> dict[str, Any]:
    info: dict[str, Any] = {"type": "ImageCollection", "bands": []}
    if collection.asset_id is not None:
        info["id"] = collection.asset_id
        info["version"] = collection.version
    info["properties"] = {k: to_json(x) for k, x in collection.properties.items() if k not in _HIDDEN_PROPERTIES}
    info["features"] = [image_info(image) for image in collection.images]
    return info


def feature_collection_info(collection: v.FeatureCollection) -> dict[str, Any]:
    """getInfo of a FeatureCollection: features with their ``id`` (``system:index``) and properties."""
    columns: dict[str, str] = {}
    features = []
    for feature in collection.features:
        properties = {k: to_json(x) for k, x in feature.properties.items() if k != "system:index"}
        for key, item in properties.items():
            columns.setdefault(key, "Float" if isinstance(item, float) else v.type_name(item))
        described: dict[str, Any] = {"type": "Feature", "geometry": None, "properties": properties}
        if feature.geometry is not None:
            described["geometry"] = dict(feature.geometry.geojson)
        if "system:index" in feature.properties:
            described["id"] = str(feature.properties["system:index"])
        features.append(described)
    return {
        "type": "FeatureCollection",
        "columns": {**columns, "system:index": "String"},
        "properties": {k: to_json(x) for k, x in collection.properties.items()},
        "features": features,
    }


def to_json(value: Any) -> Any:
    """The JSON form of an evaluated value; 400 for values that have none (filters, functions...)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):  # JSON has no NaN or infinity
            return None
        return number
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, v.Image):
        return image_info(value)
    if isinstance(value, v.Collection):
        return collection_info(value)
    if isinstance(value, v.Date):
        return {"type": "Date", "value": value.millis}
    if isinstance(value, v.DateRange):
        return {"type": "DateRange", "dates": [value.start, value.end]}
    if isinstance(value, v.Projection):
        return {"type": "Projection", "crs": value.crs, "transform": list(value.transform)}
    if isinstance(value, v.Geometry):
        return dict(value.geojson)
    if isinstance(value, v.FeatureCollection):
        return feature_collection_info(value)
    if isinstance(value, v.Feature):
        geometry = None if value.geometry is None else dict(value.geometry.geojson)
        return {"type": "Feature", "geometry": geometry, "properties": to_json(dict(value.properties))}
    if isinstance(value, PixelType):
        return value.to_info()
    if isinstance(value, bytes):
        raise invalid_argument("value:compute cannot return bytes.")
    raise invalid_argument(f"value:compute cannot return a {v.type_name(value)}: it has no JSON form.")
