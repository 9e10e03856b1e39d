"""EarthEngineAsset JSON for images, collections and folders, as the REST API shapes it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from eexarray.server.catalog import Asset, CollectionAsset, FolderAsset, ImageAsset
from eexarray.server.geojson import grid_footprint
from eexarray.server.images import BandInfo
from eexarray.server.names import short_id
from eexarray.server.timestamps import format_time

VIEWS = ("FULL", "BASIC", "IMAGE_VIEW_UNSPECIFIED")


def data_type(dtype: str) -> dict[str, Any]:
    """The REST PixelDataType of a numpy dtype: INT with its range, FLOAT or DOUBLE."""
    kind = np.dtype(dtype)
    if kind.kind in "iu":
        info = np.iinfo(kind)
        return {"precision": "INT", "range": {"min": int(info.min), "max": int(info.max)}}
    return {"precision": "FLOAT" if kind.itemsize == 4 else "DOUBLE"}


def band_json(band: BandInfo) -> dict[str, Any]:
    result: dict[str, Any] = {
        "id": band.id,
        "dataType": data_type(band.dtype),
        "grid": band.grid.to_rest(),
        "pyramidingPolicy": band.pyramiding_policy,
    }
    if band.nodata is not None:
        value = band.nodata
        # JSON has no NaN: the REST API writes it as the string "NaN".
        result["missingData"] = {"values": ["NaN" if isinstance(value, float) and math.isnan(value) else value]}
    return result


def image_json(asset: ImageAsset, view: str = "FULL") -> dict[str, Any]:
    image = asset.image
    result: dict[str, Any] = {
        "type": "IMAGE",
        "name": asset.name,
        "id": short_id(asset.name),
        "updateTime": format_time(asset.update_time),
    }
    if image.start_time is not None:
        result["startTime"] = format_time(image.start_time)
    if image.end_time is not None:
        result["endTime"] = format_time(image.end_time)
    if view == "BASIC":
        return result
    result["properties"] = dict(image.properties)
    if image.bands:
        result["geometry"] = grid_footprint(image.bands[0].grid)
    size = asset.size_bytes
    if size is None:
        size = sum(band.grid.width * band.grid.height * np.dtype(band.dtype).itemsize for band in image.bands)
    result["sizeBytes"] = str(size)
    result["bands"] = [band_json(band) for band in image.bands]
    return result


def collection_json(asset: CollectionAsset, view: str = "FULL") -> dict[str, Any]:
    result: dict[str, Any] = {
        "type": "IMAGE_COLLECTION",
        "name": asset.name,
        "id": short_id(asset.name),
        "updateTime": format_time(asset.update_time),
    }
    starts = [member.image.start_time for member in asset.images if member.image.start_time is not None]
    ends = [member.image.end_time for member in asset.images if member.image.end_time is not None]
    if starts:
        result["startTime"] = format_time(min(starts))
    if ends:
        result["endTime"] = format_time(max(ends))
    if view != "BASIC":
        result["properties"] = dict(asset.properties)
    return result


def folder_json(asset: FolderAsset) -> dict[str, Any]:
    return {
        "type": "FOLDER",
        "name": asset.name,
        "id": short_id(asset.name),
        "updateTime": format_time(asset.update_time),
    }


def asset_json(asset: Asset, view: str = "FULL") -> dict[str, Any]:
    if isinstance(asset, ImageAsset):
        return image_json(asset, view)
    if isinstance(asset, CollectionAsset):
        return collection_json(asset, view)
    return folder_json(asset)
