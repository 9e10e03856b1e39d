"""Open computed images: an expression graph (or an ``ee.Image``/``ee.ImageCollection``).

Metadata comes from one ``value:compute`` of the expression (the getInfo document:
bands with ``data_type``, ``crs``, ``crs_transform`` and ``dimensions``; for a
collection, its ``features``). Pixels come from ``computePixels``, one expression
per time step (``List.get`` of the collection's ``toList`` for collections).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
from affine import Affine

from eexarray.backend.metadata import BandMeta, ResolvedAsset, choose_grid
from eexarray.backend.options import OpenOptions
from eexarray.geometry import PixelGrid, normalize_crs
from eexarray.planning import expressions
from eexarray.transport import RestClient
from eexarray.transport.api import compute_value

_PRECISIONS = {"float": "float32", "double": "float64"}


def dtype_of_info(data_type: dict[str, Any]) -> str:
    """Storage dtype of a getInfo ``data_type`` (``{"type": "PixelType", "precision", "min", "max"}``)."""
    precision = data_type.get("precision", "float")
    if precision in _PRECISIONS:
        return _PRECISIONS[precision]
    low, high = float(data_type.get("min", 0)), float(data_type.get("max", 0))
    for name in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64"):
        info = np.iinfo(name)
        if info.min <= low and high <= info.max:
            return name
    raise ValueError(f"Integer band range {low}..{high} does not fit int64")


def _band(info: dict[str, Any]) -> BandMeta:
    transform = info.get("crs_transform") or [1, 0, 0, 0, 1, 0]
    dimensions = info.get("dimensions")
    crs = normalize_crs(info.get("crs", "EPSG:4326"))
    width, height = (int(dimensions[0]), int(dimensions[1])) if dimensions else (1, 1)
    origin = info.get("origin") or [0, 0]
    grid = PixelGrid(crs, Affine(*transform[:6]) * Affine.translation(origin[0], origin[1]), width, height)
    return BandMeta(
        id=info["id"],
        dtype=dtype_of_info(info.get("data_type", {})),
        grid=grid,
        missing_values=(),
        pyramiding_policy="MEAN",
        data_type=json.dumps(info.get("data_type", {}), sort_keys=True),
        bounded=dimensions is not None,
    )


def _time(properties: dict[str, Any]) -> str | None:
    start = properties.get("system:time_start")
    if start is None:
        return None
    moment = dt.datetime.fromtimestamp(float(start) / 1000, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def resolve_computed(
    client: RestClient, project: str, expression: expressions.Expression, options: OpenOptions
) -> ResolvedAsset:
    if options.start or options.end or options.filter:
        raise ValueError(
            "start/end/filter apply to stored collections; for a computed collection, filter it in the "
            "expression (e.g. ee.ImageCollection.filterDate) before opening"
        )
    info = compute_value(client, project, expression, what="value:compute of the expression's metadata")
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "Image":
        images = [info]
        per_image = [expressions.canonical(expression)]
    elif kind == "ImageCollection":
        images = list(info.get("features", []))
        if not images:
            raise ValueError("The computed collection is empty")
        per_image = [
            expressions.canonical(expressions.element_of(expression, i, len(images))) for i in range(len(images))
        ]
    else:
        raise ValueError(
            f"The expression computes a {kind or type(info).__name__}; open_dataset needs an Image or ImageCollection"
        )
    all_bands = [_band(band) for band in images[0].get("bands", [])]
    if not all_bands:
        raise ValueError("The computed image has no bands")
    by_id = {band.id: band for band in all_bands}
    if options.bands is not None:
        unknown = [band for band in options.bands if band not in by_id]
        if unknown:
            raise ValueError(f"Unknown band(s) {unknown} of the computed image; available: {list(by_id)}")
        bands = tuple(by_id[band] for band in options.bands)
    else:
        bands = tuple(all_bands)
    footprints = [(band.grid.crs, band.grid.bounds) for band in bands if band.bounded][:1]
    grid = choose_grid(bands, options, footprints)
    properties = dict(info.get("properties", {}))
    return ResolvedAsset(
        name="<computed>",
        asset_type="IMAGE_COLLECTION" if kind == "ImageCollection" else "IMAGE",
        image_names=tuple("<computed>" for _ in images),
        image_ids=tuple(
            str(image.get("id") or image.get("properties", {}).get("system:index", i)) for i, image in enumerate(images)
        ),
        start_times=tuple(_time(image.get("properties", {})) for image in images),
        bands=bands,
        grid=grid,
        properties={k: v for k, v in properties.items() if not k.startswith("system:")},
        expressions=tuple(per_image),
        # Earth Engine reports a version for images it can trace to one asset version; a
        # computed image without one is never answered from the request cache.
        versions=tuple(str(image["version"]) if image.get("version") is not None else None for image in images),
    )
