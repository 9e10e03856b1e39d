"""Turn Earth Engine asset metadata into what the Dataset needs: images, bands, output grid.

The only network calls are one ``get`` of the asset and, for a collection, one
paged listing with every filter pushed to the server (no per-image calls).
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from eexarray.backend.options import OpenOptions
from eexarray.geometry import PixelGrid, Window
from eexarray.geometry.grid import transform_bounds
from eexarray.progress import track_listing
from eexarray.transport import RestClient
from eexarray.transport.api import get_asset, list_images

_INT_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64")


class MixedGridWarning(UserWarning):
    """Selected bands have different native grids; the finest was chosen."""


@dataclass(frozen=True)
class BandMeta:
    id: str
    dtype: str
    grid: PixelGrid
    missing_values: tuple[float, ...]
    pyramiding_policy: str
    data_type: str  # the REST dataType object, as JSON text (attrs must be simple values)
    bounded: bool = True  # False: a computed band with a lattice but no extent (e.g. a composite)


@dataclass(frozen=True)
class ResolvedAsset:
    name: str
    asset_type: str
    image_names: tuple[str, ...]
    image_ids: tuple[str, ...]
    start_times: tuple[str | None, ...]
    bands: tuple[BandMeta, ...]
    grid: PixelGrid
    properties: dict[str, Any]
    expressions: tuple[str, ...] | None = None  # computed images: canonical expression per time step
    # Each image's version for the request cache: its updateTime (stored), its getInfo version (computed).
    versions: tuple[str | None, ...] | None = None


def _shorten(items: list[str], limit: int = 20) -> str:
    """A list for an error message, cut after ``limit`` items."""
    if len(items) <= limit:
        return str(items)
    return f"{items[:limit]}... ({len(items)} in all)"


def dtype_of(data_type: dict[str, Any]) -> str:
    """Storage dtype of a REST ``dataType``: INT bands by their range, FLOAT -> float32, DOUBLE -> float64."""
    precision = data_type.get("precision", "FLOAT")
    if precision == "FLOAT":
        return "float32"
    if precision == "DOUBLE":
        return "float64"
    value_range = data_type.get("range", {})
    low, high = float(value_range.get("min", 0)), float(value_range.get("max", 0))
    for name in _INT_TYPES:
        info = np.iinfo(name)
        if info.min <= low and high <= info.max:
            return name
    raise ValueError(f"INT band range {value_range} does not fit int64")


def _band_meta(band: dict[str, Any]) -> BandMeta:
    data_type = band.get("dataType", {})
    missing = band.get("missingData", {}).get("values", [])
    return BandMeta(
        id=band["id"],
        dtype=dtype_of(data_type),
        grid=PixelGrid.from_rest(band["grid"]),
        missing_values=tuple(float(v) for v in missing),
        pyramiding_policy=band.get("pyramidingPolicy", "MEAN"),
        data_type=json.dumps(data_type, sort_keys=True),
    )


def _time_filter(options: OpenOptions) -> str | None:
    clauses = []
    if options.start:
        clauses.append(f'startTime >= "{options.start}"')
    if options.end:
        clauses.append(f'startTime < "{options.end}"')
    if options.region:
        west, south, east, north = options.region
        polygon = {
            "type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
        }
        clauses.append(f"intersects({json.dumps(json.dumps(polygon))})")
    if options.filter:
        clauses.append(f"({options.filter})")
    return " AND ".join(clauses) or None


def fetch_images(
    client: RestClient, name: str, options: OpenOptions, *, what: str = "open_dataset", progress: bool | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The asset and its images (itself for an IMAGE; one filtered, paged listing for a collection).

    Collection images are sorted by start time; a listing may be empty.
    """
    asset = get_asset(client, name)
    asset_type = asset.get("type")
    if asset_type == "IMAGE":
        if options.start or options.end or options.filter:
            raise ValueError(f"start/end/filter apply to image collections; {asset.get('id', name)!r} is an IMAGE")
        return asset, [asset]
    if asset_type != "IMAGE_COLLECTION":
        raise ValueError(f"{asset.get('id', name)!r} is a {asset_type}; {what} needs an IMAGE or IMAGE_COLLECTION")
    listing = list_images(client, name, filter=_time_filter(options))
    images = list(track_listing(listing, description=f"listing {asset.get('id', name)}", progress=progress))
    images.sort(key=lambda image: (image.get("startTime") or "", image.get("id", "")))
    return asset, images


def resolve_asset(client: RestClient, name: str, options: OpenOptions) -> ResolvedAsset:
    asset, images = fetch_images(client, name, options)
    asset_type = asset["type"]
    if asset_type == "IMAGE_COLLECTION":
        if not images:
            raise ValueError(
                f"No image of collection {asset.get('id', name)!r} matches start={options.start!r}, "
                f"end={options.end!r}, region={options.region!r}, filter={options.filter!r}"
            )
        if not images[0].get("bands"):
            images[0] = get_asset(client, images[0]["name"])  # a BASIC listing: one image for its bands
    all_bands = [_band_meta(band) for band in images[0].get("bands", [])]
    if not all_bands:
        raise ValueError(f"{images[0].get('id', name)!r} has no bands")
    by_id = {band.id: band for band in all_bands}
    if options.bands is not None:
        unknown = [band for band in options.bands if band not in by_id]
        if unknown:
            raise ValueError(
                f"Unknown band(s) {_shorten(unknown)} for {asset.get('id', name)!r}; available: {_shorten(list(by_id))}"
            )
        bands = tuple(by_id[band] for band in options.bands)
    else:
        bands = tuple(all_bands)
    for image in images[1:]:
        listed = {band["id"] for band in image.get("bands", [])} if image.get("bands") else None
        if listed is not None and not {band.id for band in bands} <= listed:
            missing = sorted({band.id for band in bands} - listed)
            raise ValueError(
                f"Image {image.get('id')!r} of the collection lacks band(s) {missing}; "
                "select bands= present in all images"
            )
    footprints = []
    for image in images:
        for band in image.get("bands", [])[:1]:
            if band.get("grid"):
                band_grid = PixelGrid.from_rest(band["grid"])
                footprints.append((band_grid.crs, band_grid.bounds))
    grid = choose_grid(bands, options, footprints)
    return ResolvedAsset(
        name=name,
        asset_type=asset_type,
        image_names=tuple(image["name"] for image in images),
        image_ids=tuple(image.get("id", image["name"]) for image in images),
        start_times=tuple(image.get("startTime") for image in images),
        bands=bands,
        grid=grid,
        versions=tuple(image.get("updateTime") for image in images),
        properties=dict(asset.get("properties", {}))
        if asset_type == "IMAGE_COLLECTION"
        else dict(images[0].get("properties", {})),
    )


def finest_grid(bands: tuple[BandMeta, ...]) -> PixelGrid:
    grids = {band.grid for band in bands}
    if len(grids) == 1:
        return bands[0].grid
    finest = min(bands, key=lambda band: abs(band.grid.transform.determinant))
    warnings.warn(
        f"Selected bands have different native grids; using the finest, that of band {finest.id!r} "
        f"({abs(finest.grid.transform.a)} units per pixel). Pass crs/scale or grid to choose another.",
        MixedGridWarning,
        stacklevel=4,
    )
    return finest.grid


Footprint = tuple[str, tuple[float, float, float, float]]  # (crs, bounds in that crs)


def _union(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def choose_grid(bands: tuple[BandMeta, ...], options: OpenOptions, footprints: list[Footprint]) -> PixelGrid:
    """The output grid: ``grid`` as given, else the native lattice or a crs/scale lattice over the region."""
    if options.grid is not None:
        return options.grid
    native = finest_grid(bands)
    bounded = all(band.bounded for band in bands)
    if not bounded and options.region is None:
        raise ValueError(
            "This computed image has no bounded native grid (e.g. a composite): pass region= (with crs= and "
            "scale= to choose the lattice) or grid="
        )
    crs = options.crs or native.crs
    same_crs = crs == native.crs
    if options.scale is None and not same_crs:
        raise ValueError(f"scale is required when crs={crs!r} differs from the native CRS {native.crs!r}")
    native_scale = (abs(native.transform.a), abs(native.transform.e))
    on_native_lattice = (
        same_crs
        and native.is_axis_aligned
        and (options.scale is None or np.allclose(options.scale, native_scale, rtol=1e-9))
    )
    if bounded:
        boxes = [transform_bounds(bounds, source_crs, crs) for source_crs, bounds in footprints] or [
            native.footprint_bounds(crs)
        ]
        extent = _union(boxes)
    if options.region is not None:
        bounds = transform_bounds(options.region, "EPSG:4326", crs)
        if bounded and not _overlaps(bounds, extent):
            raise ValueError(
                f"region {options.region} does not intersect the data, whose extent is "
                f"{transform_bounds(extent, crs, 'EPSG:4326')} (west, south, east, north in EPSG:4326)"
            )
    elif len(footprints) > 1:
        bounds = extent  # a collection's extent is the union of its images' footprints
    else:
        if on_native_lattice:
            return native
        bounds = native.footprint_bounds(crs)
    if on_native_lattice:
        window = native.window_covering(bounds)
        if options.region is None or not bounded:
            return native.window(window)
        clipped = window.intersection(Window(0, native.height, 0, native.width))
        return native.window(clipped if clipped is not None else window)
    scale = options.scale if options.scale is not None else native_scale
    return PixelGrid.from_bounds(crs, bounds, scale)


def parse_start_time(text: str | None) -> np.datetime64:
    if not text:
        return np.datetime64("NaT", "ns")
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    return np.datetime64(moment.replace(tzinfo=None), "ns")
