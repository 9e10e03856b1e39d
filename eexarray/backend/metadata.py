"""Turn Earth Engine asset metadata into what the Dataset needs: images, bands, output grid.

The only network calls are one ``get`` of the asset and, for a collection, one
paged listing with every filter pushed to the server (no per-image calls).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eexarray.backend.grouping import centre_longitude, group_by_solar_day
from eexarray.backend.options import MAX_PIXELS_PER_SIDE, OpenOptions
from eexarray.backend.properties import check_names, merged
from eexarray.geometry import PartialGrid, PixelGrid, Window, crs_equal, metres_to_crs_units, to_pyproj
from eexarray.geometry.grid import transform_bounds
from eexarray.planning import auto_tile_shape
from eexarray.progress import track_listing
from eexarray.transport import RestClient
from eexarray.transport.api import get_asset, list_images

_INT_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64")


class TooManyImagesError(ValueError):
    """A collection listed without any filter holds more than ``max_images`` images."""


class MixedGridWarning(UserWarning):
    """Selected bands have different native grids; the finest was chosen."""


class DegenerateGridWarning(UserWarning):
    """The output grid is less than 2 pixels wide or tall (often: a scale meant in other units)."""


# Request tiles per band and image allowed at max_pixels_per_side = 2^20 (scaled with its
# square): a graph of more is slow to build and plan, and is rarely what was meant.
MAX_TILES_PER_BAND = 10**6


@dataclass(frozen=True)
class BandMeta:
    id: str
    dtype: str
    grid: PixelGrid
    missing_values: tuple[float, ...]
    pyramiding_policy: str
    data_type: str  # the REST dataType object, as JSON text (attrs must be simple values)
    bounded: bool = True  # False: a lattice but no extent (a composite; a stored band without dimensions)
    has_transform: bool = True  # False: Earth Engine reported no affineTransform (the lattice is unknown)


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
    # Per image: its ``updateTime`` (stored) or ``version`` (computed, when the value has one);
    # a download resumes only while these are unchanged (download/resume.py).
    versions: tuple[str | None, ...] = ()
    # Per time step: the image's properties (a mosaic's: those its images agree on).
    image_properties: tuple[dict[str, Any], ...] = ()
    # groupby: per time step, the names of the images mosaicked into it (last on top); else None.
    mosaics: tuple[tuple[str, ...], ...] | None = None


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
    # The PixelGrid reference makes dimensions and affineTransform optional: a band without
    # them keeps a one-pixel placeholder lattice, flagged so choose_grid asks for what is missing.
    partial = PartialGrid.from_rest(band.get("grid"))
    complete = partial.complete
    return BandMeta(
        id=band["id"],
        dtype=dtype_of(data_type),
        grid=complete if complete is not None else partial.lattice(),
        missing_values=tuple(float(v) for v in missing),
        pyramiding_policy=band.get("pyramidingPolicy", "MEAN"),
        data_type=json.dumps(data_type, sort_keys=True),
        bounded=partial.has_dimensions and partial.has_transform,
        has_transform=partial.has_transform,
    )


def geojson_filter_text(geometry: dict[str, Any]) -> str:
    """GeoJSON inside a double-quoted filter string, written as the official client writes it.

    earthengine-api (``ee/_cloud_api_utils.py``, listImages' ``region``): ``json.dumps`` then
    every ``"`` becomes ``'``, so the text needs no backslash escapes inside the quotes.
    """
    return json.dumps(geometry).replace('"', "'")


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
        clauses.append(f'intersects("{geojson_filter_text(polygon)}")')
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
        # The image is the asset asked for: a getAsset answer without "name" (GDAL's EEDAI test
        # recordings have none; tests/conformance) is named as requested.
        return asset, [{"name": name, **asset}]
    if asset_type != "IMAGE_COLLECTION":
        raise ValueError(f"{asset.get('id', name)!r} is a {asset_type}; {what} needs an IMAGE or IMAGE_COLLECTION")
    collection = asset.get("id", name)
    # Unfiltered, a listing could run to millions of images (Sentinel-2): it stops one past the limit.
    unbounded = not (options.start or options.end or options.region or options.filter)
    limit = options.max_images + 1 if unbounded and options.max_images is not None else None
    listing = list_images(client, name, filter=_time_filter(options), limit=limit)
    images = list(track_listing(listing, description=f"listing {collection}", progress=progress))
    if limit is not None and len(images) >= limit:
        raise TooManyImagesError(
            f"Collection {collection!r} has more than max_images={options.max_images} images and no "
            "start/end/region/filter narrows it (listing stopped there). Select images with start= and end= "
            "(dates), region= (the area), or filter= (e.g. 'properties.CLOUDY_PIXEL_PERCENTAGE < 20'), "
            "or raise max_images= (None: no limit)"
        )
    images.sort(key=lambda image: (image.get("startTime") or "", image.get("id", "")))
    return asset, images


def resolve_asset(client: RestClient, name: str, options: OpenOptions) -> ResolvedAsset:
    asset, images = fetch_images(client, name, options)
    asset_type = asset["type"]
    if asset_type == "IMAGE" and (options.properties or options.groupby):
        raise ValueError(
            f"properties=/groupby= apply to image collections; {asset.get('id', name)!r} is an IMAGE "
            "(its properties are the Dataset's attrs)"
        )
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
                band_grid = PartialGrid.from_rest(band["grid"]).complete
                if band_grid is not None:  # a grid without dimensions has no footprint
                    footprints.append((band_grid.crs, band_grid.bounds))
    grid = choose_grid(bands, options, footprints)
    per_image = [dict(image.get("properties", {})) for image in images]
    if isinstance(options.properties, tuple):
        check_names(options.properties, per_image, asset.get("id", name))
    resolved = ResolvedAsset(
        name=name,
        asset_type=asset_type,
        image_names=tuple(image["name"] for image in images),
        image_ids=tuple(image.get("id", image["name"]) for image in images),
        start_times=tuple(image.get("startTime") for image in images),
        bands=bands,
        grid=grid,
        versions=tuple(image.get("updateTime") for image in images),
        properties=dict(asset.get("properties", {})) if asset_type == "IMAGE_COLLECTION" else per_image[0],
        image_properties=tuple(per_image),
    )
    return group_images(resolved) if options.groupby == "solar_day" else resolved


def group_images(resolved: ResolvedAsset) -> ResolvedAsset:
    """One time step per local solar day over the output grid (see eexarray.backend.grouping)."""
    groups = group_by_solar_day(resolved.start_times, centre_longitude(resolved.grid))
    return dataclasses.replace(
        resolved,
        image_names=tuple(resolved.image_names[group[0]] for group in groups),
        # The ids of the day's images, in mosaic order (the last is on top).
        image_ids=tuple(",".join(resolved.image_ids[i] for i in group) for group in groups),
        start_times=tuple(resolved.start_times[group[0]] for group in groups),
        image_properties=tuple(merged([resolved.image_properties[i] for i in group]) for group in groups),
        mosaics=tuple(tuple(resolved.image_names[i] for i in group) for group in groups),
        # A mosaic changes when any of its images does.
        versions=tuple(",".join(str(resolved.versions[i]) for i in group) for group in groups)
        if resolved.versions
        else (),
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


def _pixel_size(options: OpenOptions, crs: str) -> tuple[float, float] | None:
    """The requested pixel size in ``crs`` units: ``resolution`` as given, ``scale`` converted from metres."""
    if options.resolution is not None:
        return options.resolution
    if options.scale is not None:
        return (metres_to_crs_units(crs, options.scale[0]), metres_to_crs_units(crs, options.scale[1]))
    return None


def _unit_name(crs: str) -> str:
    axes = to_pyproj(crs).axis_info
    return axes[0].unit_name if axes and axes[0].unit_name else "CRS units"


def choose_grid(bands: tuple[BandMeta, ...], options: OpenOptions, footprints: list[Footprint]) -> PixelGrid:
    """The output grid: ``grid`` as given, else the native lattice or a crs/scale lattice over the region.

    Grids larger than ``options.side_limit`` (or cut into too many request tiles) are
    refused here, before anything is allocated, unless they are a window of one image's
    own grid: that is at most what the asset holds.
    """
    if options.grid is not None:
        check_grid_size(options.grid, bands, options.side_limit, "grid=")
        return options.grid
    native = finest_grid(bands)
    bounded = all(band.bounded for band in bands)
    lattice_known = all(band.has_transform for band in bands)
    if not bounded and options.region is None:
        raise ValueError(_unbounded_message(bands))
    crs = options.crs or native.crs
    if crs != native.crs and crs_equal(crs, native.crs):
        crs = native.crs  # the same CRS: keep the asset's own words (its code or WKT) for requests
    same_crs = crs == native.crs
    pixel_size = _pixel_size(options, crs)
    if pixel_size is None and not lattice_known:
        missing = [band.id for band in bands if not band.has_transform]
        raise ValueError(
            f"Band(s) {_shorten(missing)} have no affineTransform in their native grid (Earth Engine did not "
            "report one), so there is no native pixel size: pass scale= (metres per pixel) or resolution= "
            "(CRS units per pixel), with region=, or a full grid="
        )
    if pixel_size is None and not same_crs:
        raise ValueError(
            f"scale= (metres per pixel) or resolution= (CRS units per pixel) is required when crs={crs!r} "
            f"differs from the native CRS {native.crs!r}"
        )
    native_scale = (abs(native.transform.a), abs(native.transform.e))
    on_native_lattice = (
        lattice_known
        and same_crs
        and native.is_axis_aligned
        and (pixel_size is None or np.allclose(pixel_size, native_scale, rtol=1e-9))
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
            return native  # the asset's own grid: never capped, it is what the asset holds
        bounds = native.footprint_bounds(crs)
    if on_native_lattice:
        window = native.window_covering(bounds)
        image = Window(0, native.height, 0, native.width)
        if options.region is not None and bounded:
            window = window.intersection(image) or window
        grid = native.window(window)
        if not (bounded and image.contains(window)):
            # Beyond one image's own grid (a composite's lattice, a collection's union): the region
            # or the footprints decide the size, so it is capped like any other grid.
            check_grid_size(grid, bands, options.side_limit, "region=" if options.region else "the footprints")
        _warn_if_degenerate(grid, bounds, options)
        return grid
    size = pixel_size if pixel_size is not None else native_scale
    _check_size_before_building(bounds, size, crs, options)
    grid = PixelGrid.from_bounds(crs, bounds, size)
    check_grid_size(grid, bands, options.side_limit, "scale=/resolution=/region=")
    _warn_if_degenerate(grid, bounds, options)
    return grid


def _unbounded_message(bands: tuple[BandMeta, ...]) -> str:
    unbounded = [band.id for band in bands if not band.bounded]
    return (
        f"Band(s) {_shorten(unbounded)} have a native grid without an extent (a computed image such as a "
        "composite, or a stored band whose grid has no dimensions): pass region= (with crs= and scale= or "
        "resolution= to choose the lattice) or grid="
    )


def _check_size_before_building(
    bounds: tuple[float, float, float, float],
    size: tuple[float, float],
    crs: str,
    options: OpenOptions,
) -> None:
    """Refuse an oversized grid from its bounds and pixel size, before PixelGrid computes anything."""
    width = math.ceil((bounds[2] - bounds[0]) / size[0])
    height = math.ceil((bounds[3] - bounds[1]) / size[1])
    limit = options.side_limit
    if width > limit or height > limit:
        units = _unit_name(crs)
        raise ValueError(
            f"The output grid would be {width:,} x {height:,} pixels ({size[0]:g} x {size[1]:g} {units} per "
            f"pixel over a region of {bounds[2] - bounds[0]:g} x {bounds[3] - bounds[1]:g} {units}), more than "
            f"max_pixels_per_side={limit:,} a side. {_size_hint(options)}or pass max_pixels_per_side= to allow it"
        )


def _size_hint(options: OpenOptions) -> str:
    if options.scale is not None:
        return f"scale={options.scale[0]:g} is metres per pixel (Earth Engine's meaning); check it, "
    if options.resolution is not None:
        return f"resolution={options.resolution[0]:g} is CRS units per pixel; check it, "
    return "Pass a smaller region= or a coarser scale=, "


def check_grid_size(grid: PixelGrid, bands: tuple[BandMeta, ...], max_pixels_per_side: int, source: str) -> None:
    """Refuse a grid wider or taller than ``max_pixels_per_side``, or cut into too many request tiles."""
    if grid.width > max_pixels_per_side or grid.height > max_pixels_per_side:
        raise ValueError(
            f"The output grid from {source} is {grid.width:,} x {grid.height:,} pixels, more than "
            f"max_pixels_per_side={max_pixels_per_side:,} a side; pass max_pixels_per_side= to allow it"
        )
    rows, cols = auto_tile_shape(grid.height, grid.width, [band.dtype for band in bands])
    tiles = math.ceil(grid.height / rows) * math.ceil(grid.width / cols)
    limit = int(MAX_TILES_PER_BAND * (max_pixels_per_side / MAX_PIXELS_PER_SIDE) ** 2)
    if tiles > limit:
        raise ValueError(
            f"The output grid from {source} ({grid.width:,} x {grid.height:,} pixels, {len(bands)} band(s)) needs "
            f"{tiles:,} request tiles of {rows} x {cols} pixels per band and image, more than the {limit:,} "
            f"allowed at max_pixels_per_side={max_pixels_per_side:,}: select fewer bands, a smaller region or a "
            "coarser scale, or raise max_pixels_per_side"
        )


def _warn_if_degenerate(grid: PixelGrid, bounds: tuple[float, float, float, float], options: OpenOptions) -> None:
    if grid.width >= 2 and grid.height >= 2:
        return
    units = _unit_name(grid.crs)
    hint = ""
    if options.scale is not None:
        hint = " scale= is metres per pixel, as in Earth Engine; for CRS units (e.g. degrees) use resolution=."
    warnings.warn(
        f"The output grid is only {grid.width} x {grid.height} pixel(s): the region spans "
        f"{bounds[2] - bounds[0]:g} x {bounds[3] - bounds[1]:g} {units} and a pixel is "
        f"{abs(grid.transform.a):g} x {abs(grid.transform.e):g} {units}.{hint}",
        DegenerateGridWarning,
        stacklevel=5,
    )


# The span of datetime64[ns] (what pandas and xarray default to); a time outside it does
# not fit: numpy would wrap it around silently (0999-01-01 becomes 2168-02-09).
_NS_SPAN = (np.datetime64("1677-09-22", "us"), np.datetime64("2262-04-11", "us"))


def parse_start_time(text: str | None) -> np.datetime64:
    """An image's start time, in microseconds (any year of RFC 3339 fits)."""
    if not text:
        return np.datetime64("NaT", "us")
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    return np.datetime64(moment.replace(tzinfo=None), "us")


def time_coordinate(texts: Sequence[str | None]) -> np.ndarray:
    """Start times as datetime64[ns] when they all fit (the usual case), else datetime64[us]."""
    times = np.array([parse_start_time(text) for text in texts], dtype="datetime64[us]")
    known = times[~np.isnat(times)]
    if known.size and (known.min() < _NS_SPAN[0] or known.max() > _NS_SPAN[1]):
        return times
    return times.astype("datetime64[ns]")
