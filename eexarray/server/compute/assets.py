"""Stored assets as expression values: ``Image.load`` and ``ImageCollection.load``.

A loaded image keeps each band's native grid and dtype; its properties are the
asset's own plus Earth Engine's system properties: ``system:index`` (the last
segment of the id), ``system:id``, ``system:time_start`` / ``system:time_end``
(milliseconds since the epoch, when the image has times) and ``system:version``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from eexarray.server.catalog import Catalog, CollectionAsset, ImageAsset
from eexarray.server.compute import values as v
from eexarray.server.compute.bands import AssetSource
from eexarray.server.compute.pixeltype import PixelType
from eexarray.server.errors import ApiError, invalid_argument
from eexarray.server.names import name_for_id, short_id


def millis(value: dt.datetime) -> int:
    return int(round(value.timestamp() * 1000))


def version_of(update_time: dt.datetime) -> int:
    """Earth Engine reports an asset's version as its update time in microseconds."""
    return int(round(update_time.timestamp() * 1_000_000))


def _lookup(catalog: Catalog, asset_id: str, algorithm: str, kind: str) -> Any:
    try:
        return catalog.get(name_for_id(asset_id))
    except ApiError as error:
        if error.code == 404:
            raise invalid_argument(
                f"{algorithm}: {kind} asset '{asset_id}' not found (does not exist or caller does not have access)."
            ) from None
        raise invalid_argument(f"{algorithm}: {error.message}") from None


def image_value(asset: ImageAsset) -> v.Image:
    image = asset.image
    identifier = short_id(asset.name)
    version = version_of(asset.update_time)
    properties: dict[str, Any] = dict(image.properties)
    properties["system:index"] = identifier.rsplit("/", 1)[-1]
    properties["system:id"] = identifier
    properties["system:version"] = version
    if image.start_time is not None:
        properties["system:time_start"] = millis(image.start_time)
    if image.end_time is not None:
        properties["system:time_end"] = millis(image.end_time)
    bands = tuple(
        v.Band(band.id, PixelType.of_dtype(band.dtype), AssetSource(image, index), band.grid)
        for index, band in enumerate(image.bands)
    )
    return v.Image(bands, properties, identifier, version)


def load_image(catalog: Catalog, asset_id: str) -> v.Image:
    asset = _lookup(catalog, asset_id, "Image.load", "Image")
    if not isinstance(asset, ImageAsset):
        raise invalid_argument(f"Image.load: Asset '{asset_id}' is not an Image.")
    return image_value(asset)


def load_collection(catalog: Catalog, asset_id: str) -> v.Collection:
    asset = _lookup(catalog, asset_id, "ImageCollection.load", "ImageCollection")
    if not isinstance(asset, CollectionAsset):
        raise invalid_argument(f"ImageCollection.load: Asset '{asset_id}' is not an ImageCollection.")
    identifier = short_id(asset.name)
    version = version_of(asset.update_time)
    properties = dict(asset.properties)
    properties["system:id"] = identifier
    properties["system:version"] = version
    return v.Collection(tuple(image_value(member) for member in asset.images), properties, identifier, version)
