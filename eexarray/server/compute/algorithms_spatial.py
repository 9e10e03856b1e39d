"""Algorithms that involve places and projections: atScale, clip, reproject, buffer,
reduceRegion and sampleRectangle (see ``spatial`` for the geometry rules).

Region reductions read pixels (value:compute then reads, as Earth Engine does): the
pixels of the image's (or the requested) projection whose centres lie inside the
geometry each count once. Earth Engine weights edge pixels of ``mean``/``sum`` by the
covered fraction and computes ``median`` from a histogram; here every inside pixel has
weight 1 and the median is exact, so values can differ at polygon edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
import shapely
import shapely.geometry
from affine import Affine

from eexarray.geometry import InvalidCrsError, InvalidGridError, PixelGrid, Window, crs_equal, to_pyproj
from eexarray.geometry.grid import transform_bounds
from eexarray.server.compute import values as v
from eexarray.server.compute.algorithms_image import IMAGE
from eexarray.server.compute.bands import AssetSource, ClipSource, masked
from eexarray.server.compute.registry import Call, algorithm, opt
from eexarray.server.compute.spatial import (
    ReprojectedSource,
    ResampledSource,
    at_scale,
    band_projection,
    inside,
    lattice_grid,
    north_up,
    shape_of,
)
from eexarray.server.geojson import grid_footprint

SAMPLE_RECTANGLE_LIMIT = 262144  # Earth Engine's limit on the pixels of one sampleRectangle
REDUCERS = ("mean", "median", "min", "max", "sum", "count", "first")


# -- projections ----------------------------------------------------------------------------
@algorithm("Projection.atScale", "Projection", "The projection scaled so that its nominal scale is `meters`.",
           ("projection", "Projection"), ("meters", "Float"))  # fmt: skip
def _at_scale(call: Call) -> v.Projection:
    projection = call.of("projection", v.Projection, "Projection")
    metres = call.finite("meters")
    if not metres > 0:
        raise call.error(f"meters must be a positive number, got {metres!r}.")
    return at_scale(projection, float(metres))


# -- geometry arguments ---------------------------------------------------------------------------
def geometry_argument(call: Call, name: str) -> shapely.Geometry:
    """A Geometry (or a Feature's geometry) argument as shapely, EPSG:4326."""
    value = call.get(name)
    if isinstance(value, v.Feature) and value.geometry is not None:
        value = value.geometry
    if not isinstance(value, v.Geometry):
        raise call.error(f"Invalid type for argument '{name}'. Expected type: Geometry. "
                         f"Actual type: {v.type_name(value)}.")  # fmt: skip
    try:
        shape = shape_of(value.geojson)
    except (ValueError, TypeError, AttributeError, shapely.errors.ShapelyError) as error:
        raise call.error(f"Invalid geometry in '{name}': {error}") from None
    if shape.is_empty:
        raise call.error(f"The geometry in '{name}' is empty.")
    return shape


def _image_footprint(call: Call, image: v.Image) -> shapely.Geometry:
    grids = [band.grid for band in image.bands if band.grid is not None]
    if not grids:
        raise call.error("The image has no footprint (a composite or a constant): give a geometry.")
    return shape_of(grid_footprint(grids[0]))


@dataclass(frozen=True)
class Lattice:
    """A CRS and an axis-aligned, north-up pixel lattice in it."""

    crs: str
    transform: Affine


def requested_lattice(
    call: Call, image: v.Image, crs_name: str, transform_name: str | None, scale_name: str
) -> Lattice:
    """The lattice of a (crs, crsTransform, scale) triple, defaults from the image's first band.

    As in Earth Engine: ``crsTransform`` wins over ``scale``; ``scale`` (metres) applies to
    the given (else the image's) projection with Projection.atScale.
    """
    crs_value = call.get(crs_name)
    if crs_value is None:
        projection = band_projection(image.bands[0]) if image.bands else v.Projection("EPSG:4326", (1, 0, 0, 0, 1, 0))
    elif isinstance(crs_value, v.Projection):
        projection = crs_value
    elif isinstance(crs_value, str):
        projection = v.Projection(crs_value, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0))
    else:
        raise call.error(f"{crs_name} must be a Projection or a CRS code, got {v.type_name(crs_value)}.")
    try:
        to_pyproj(projection.crs)
        transform = call.get(transform_name) if transform_name is not None else None
        if transform is not None:
            assert transform_name is not None
            numbers = call.sequence(transform_name)
            if len(numbers) != 6 or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in numbers
            ):
                raise call.error(f"{transform_name} must be 6 numbers, got {numbers!r}.")
            projection = v.Projection(projection.crs, tuple(float(x) for x in numbers))  # type: ignore[arg-type]
        elif call.get(scale_name) is not None:
            scale = call.finite(scale_name)
            if not scale > 0:
                raise call.error(f"{scale_name} must be a positive number of metres, got {scale!r}.")
            projection = at_scale(projection, float(scale))
        return Lattice(projection.crs, north_up(projection.transform))
    except (InvalidCrsError, pyproj.exceptions.CRSError) as error:
        raise call.error(f"Invalid projection: {error}") from None
    except ValueError as error:
        raise call.error(str(error)) from None


def band_lattice(call: Call, band: v.Band) -> Lattice:
    """The lattice of a band's default projection; a 400 for rotated or sheared grids."""
    projection = band_projection(band)
    try:
        return Lattice(projection.crs, north_up(projection.transform))
    except ValueError as error:
        raise call.error(f"Band '{band.id}': {error}") from None


def region_grid(
    call: Call,
    lattice: Lattice,
    geometry: shapely.Geometry,
    max_pixels: int | None,
    advice: str = "Raise maxPixels or use a coarser scale.",
) -> PixelGrid:
    try:
        grid = lattice_grid(lattice.crs, lattice.transform, geometry)
    except (InvalidCrsError, InvalidGridError) as error:
        raise call.error(f"Cannot place the region in {lattice.crs}: {error}") from None
    if max_pixels is not None and grid.width * grid.height > max_pixels:
        raise call.error(
            f"Too many pixels in the region. Found {grid.width * grid.height}, but maxPixels allows only "
            f"{max_pixels}. {advice}"
        )
    return grid


# -- clip, reproject, buffer ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class GeometryClipSource:
    inner: Any  # bands.BandSource
    geometry: shapely.Geometry

    def read(self, grid: PixelGrid) -> np.ma.MaskedArray:
        band = self.inner.read(grid)
        return masked(np.ma.getdata(band), np.ma.getmaskarray(band) | ~inside(self.geometry, grid))


@algorithm("Image.clip", IMAGE, "Masks the pixels whose centre lies outside the geometry.",
           ("input", IMAGE), ("geometry", "Object", "A Geometry or a Feature."))  # fmt: skip
def _clip(call: Call) -> v.Image:
    image = call.image("input")
    geometry = geometry_argument(call, "geometry")
    bands = []
    for band in image.bands:
        source = GeometryClipSource(band.source, geometry)
        bands.append(v.Band(band.id, band.pixel_type, source, _cropped(band, geometry), band_projection(band)))
    return image.with_bands(bands)


def _cropped(band: v.Band, geometry: shapely.Geometry) -> PixelGrid | None:
    """The band's grid cut to the window covering the geometry (what a download of the clip covers)."""
    if band.grid is None or not band.grid.is_axis_aligned:
        return band.grid
    try:
        bounds = transform_bounds(geometry.bounds, "EPSG:4326", band.grid.crs)
        window = band.grid.window_covering(bounds)
    except (InvalidCrsError, InvalidGridError):
        return band.grid
    inside_grid = window.intersection(Window.from_shape(band.grid.height, band.grid.width))
    if inside_grid is None:
        return band.grid.window(Window(0, 1, 0, 1))  # no overlap: a token one-pixel grid, all masked
    return band.grid.window(inside_grid)


@algorithm("Image.reproject", IMAGE, "Computes the image in the given projection (nearest neighbour).",
           ("image", IMAGE), ("crs", "Projection"), opt("crsTransform", "List<Float>"),
           opt("scale", "Float"))  # fmt: skip
def _reproject(call: Call) -> v.Image:
    image = call.image("image")
    if call.get("crs") is None:
        raise call.error("crs is required.")
    lattice = requested_lattice(call, image, "crs", "crsTransform", "scale")
    bands = []
    for band in image.bands:
        grid = None
        if band.grid is not None:
            try:  # the lattice window covering the band's footprint
                bounds = transform_bounds(band.grid.bounds, band.grid.crs, lattice.crs)
                window = PixelGrid(lattice.crs, lattice.transform, 1, 1).window_covering(bounds)
            except (InvalidCrsError, InvalidGridError) as error:
                raise call.error(f"Cannot place band '{band.id}' in {lattice.crs}: {error}") from None
            origin = lattice.transform * Affine.translation(window.col_start, window.row_start)
            grid = PixelGrid(lattice.crs, origin, window.width, window.height)
        source = ReprojectedSource(band.source, lattice.crs, lattice.transform)
        t = lattice.transform
        projection = v.Projection(lattice.crs, (t.a, t.b, t.c, t.d, t.e, t.f))
        bands.append(v.Band(band.id, band.pixel_type, source, grid, projection))
    return image.with_bands(bands)


@algorithm("Image.resample", IMAGE,
           "The image with bilinear or bicubic interpolation (instead of nearest neighbour) wherever its pixels "
           "are computed off their native grid or pyramid level; bands without a default projection "
           "(composites) are unchanged.",
           ("image", IMAGE), opt("mode", "String", default="bilinear"))  # fmt: skip
def _resample(call: Call) -> v.Image:
    image = call.image("image")
    mode = call.string("mode") if call.get("mode") is not None else "bilinear"
    if mode not in ("bilinear", "bicubic"):
        raise call.error(f"Unknown resampling mode '{mode}'; expected 'bilinear' or 'bicubic'.")
    bands = []
    for band in image.bands:
        source = band.source
        if isinstance(source, AssetSource):
            source = AssetSource(source.image, source.index, mode)
        elif band.grid is not None:
            source = ResampledSource(source, band.grid, mode)
        bands.append(v.Band(band.id, band.pixel_type, source, band.grid, band.projection))
    return image.with_bands(bands)


@algorithm("Geometry.buffer", "Geometry",
           "The geometry grown (or shrunk, when negative) by `distance` metres; planar in a local "
           "azimuthal equidistant projection centred on the geometry.",
           ("geometry", "Geometry"), ("distance", "Float"), opt("maxError", "ErrorMargin"),
           opt("proj", "Projection"))  # fmt: skip
def _buffer(call: Call) -> v.Geometry:
    geometry = geometry_argument(call, "geometry")
    distance = call.finite("distance")
    if call.get("proj") is not None:
        raise call.error("proj is not supported by this server: distances are metres.")
    centre = geometry.centroid
    local = pyproj.CRS.from_proj4(f"+proj=aeqd +lat_0={centre.y} +lon_0={centre.x} +datum=WGS84 +units=m")
    forward = pyproj.Transformer.from_crs("EPSG:4326", local, always_xy=True)
    backward = pyproj.Transformer.from_crs(local, "EPSG:4326", always_xy=True)
    planar = shapely.transform(geometry, lambda xy: np.column_stack(forward.transform(xy[:, 0], xy[:, 1])))
    grown = planar.buffer(float(distance), quad_segs=16)
    buffered = shapely.transform(grown, lambda xy: np.column_stack(backward.transform(xy[:, 0], xy[:, 1])))
    return v.Geometry(_as_lists(shapely.geometry.mapping(buffered)))


def _as_lists(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_as_lists(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_lists(item) for key, item in value.items()}
    return value


# -- reductions over a region ---------------------------------------------------------------------
def reduce_pixels(kind: str, values: np.ndarray) -> Any:
    """One reducer output over the valid pixel values (1-D) of one band."""
    if kind == "count":
        return int(values.size)
    if kind == "sum":
        return float(values.sum(dtype="float64")) if values.dtype.kind == "f" else int(values.sum(dtype="int64"))
    if values.size == 0:
        return None
    if kind == "mean":
        return float(values.mean(dtype="float64"))
    if kind == "median":
        return float(np.median(values.astype("float64")))
    if kind == "min":
        return values.min().item()
    if kind == "max":
        return values.max().item()
    assert kind == "first"
    return values[0].item()


@algorithm(
    "Image.reduceRegion",
    "Dictionary<Object>",
    "Each band reduced over the pixels whose centre lies inside the geometry (every pixel weight 1).",
    ("image", IMAGE),
    ("reducer", "Reducer"),
    opt("geometry", "Geometry"),
    opt("scale", "Float"),
    opt("crs", "Projection"),
    opt("crsTransform", "List<Float>"),
    opt("bestEffort", "Boolean", "", False),
    opt("maxPixels", "Long", "", 10000000),
    opt("tileScale", "Float", "", 1),
)
def _reduce_region(call: Call) -> dict[str, Any]:
    image = call.image("image")
    reducer = call.of("reducer", v.Reducer, "Reducer")
    if reducer.kind not in REDUCERS or reducer.copies is not None:
        raise call.error(f"Reducer.{reducer.kind} cannot reduce a region here; use one of "
                         f"{['Reducer.' + k for k in REDUCERS]}.")  # fmt: skip
    if call.boolean("bestEffort"):
        raise call.error("bestEffort is not supported by this server; give a scale that fits maxPixels.")
    geometry = geometry_argument(call, "geometry") if call.get("geometry") is not None else None
    if geometry is None:
        geometry = _image_footprint(call, image)
    lattice = requested_lattice(call, image, "crs", "crsTransform", "scale")
    grid = region_grid(call, lattice, geometry, call.integer("maxPixels"))
    chosen = inside(geometry, grid)
    result: dict[str, Any] = {}
    for band in image.bands:
        pixels = band.source.read(grid)
        valid = chosen & ~np.ma.getmaskarray(pixels)
        result[band.id] = reduce_pixels(reducer.kind, np.ma.getdata(pixels)[valid])
    return result


@algorithm(
    "Image.sampleRectangle",
    "Feature",
    "The pixels of each band over the region's bounding box, in the band's own projection, as nested lists.",
    ("image", IMAGE),
    opt("region", "Geometry"),
    opt("properties", "List<String>"),
    opt("defaultValue", "Float"),
    opt("defaultArrayValue", "Array"),
)
def _sample_rectangle(call: Call) -> v.Feature:
    image = call.image("image")
    region = geometry_argument(call, "region") if call.get("region") is not None else _image_footprint(call, image)
    default = None if call.get("defaultValue") is None else call.finite("defaultValue")
    if call.get("defaultArrayValue") is not None:
        raise call.error("defaultArrayValue is not supported by this server (array images are not).")
    names = call.optional_string_list("properties") or []
    properties: dict[str, Any] = {name: image.properties[name] for name in names if name in image.properties}
    for band in image.bands:
        lattice = band_lattice(call, band)
        grid = region_grid(call, lattice, region, None)
        if grid.width * grid.height > SAMPLE_RECTANGLE_LIMIT:
            raise call.error(
                f"Too many pixels in sample; must be <= {SAMPLE_RECTANGLE_LIMIT}. "
                f"Got {grid.width * grid.height} ({grid.width} x {grid.height}) for band '{band.id}'."
            )
        pixels = band.source.read(grid)
        missing = np.ma.getmaskarray(pixels)
        if missing.any() and default is None:
            raise call.error(f"Band '{band.id}' has masked pixels in the region and no defaultValue was given.")
        values = np.ma.getdata(pixels).tolist()
        if missing.any():
            assert default is not None  # checked above
            values = np.where(missing, default, np.ma.getdata(pixels).astype("float64")).tolist()
        properties[band.id] = values
    return v.Feature(v.Geometry(_as_lists(shapely.geometry.mapping(region))), properties)


# -- what getDownloadId / getThumbURL build ---------------------------------------------------------
def _bounds_in(geometry: v.Geometry, shape: shapely.Geometry, crs: str) -> tuple[float, float, float, float]:
    """The geometry's bounding box in ``crs``: exact when it was built in that CRS (a grid rectangle)."""
    if geometry.native is not None and crs_equal(geometry.native[0], crs):
        return shape_of(geometry.native[1]).bounds
    west, south, east, north = shape.bounds
    return transform_bounds((west, south, east, north), "EPSG:4326", crs)


def _window_grid(lattice: Lattice, bounds: tuple[float, float, float, float]) -> PixelGrid:
    window = PixelGrid(lattice.crs, lattice.transform, 1, 1).window_covering(bounds)
    origin = lattice.transform * Affine.translation(window.col_start, window.row_start)
    return PixelGrid(lattice.crs, origin, window.width, window.height)


@algorithm(
    "Image.clipToBoundsAndScale",
    IMAGE,
    "The image clipped to the geometry's bounding box and resampled to a scale or to pixel dimensions.",
    ("input", IMAGE),
    opt("geometry", "Geometry"),
    opt("width", "Integer"),
    opt("height", "Integer"),
    opt("maxDimension", "Integer"),
    opt("scale", "Float"),
)
def _clip_to_bounds_and_scale(call: Call) -> v.Image:
    image = call.image("input")
    width, height = call.optional_integer("width"), call.optional_integer("height")
    max_dimension = call.optional_integer("maxDimension")
    for name, value in (("width", width), ("height", height), ("maxDimension", max_dimension)):
        if value is not None and not 0 < value <= 32768:
            raise call.error(f"{name} must be between 1 and 32768, got {value}.")
    scale = None if call.get("scale") is None else call.finite("scale")
    if scale is not None and scale <= 0:
        raise call.error(f"scale must be a positive number of metres, got {scale}.")
    geometry_value = call.get("geometry")
    bands = []
    for band in image.bands:
        lattice = band_lattice(call, band)
        try:
            if geometry_value is not None:
                shape = geometry_argument(call, "geometry")
                bounds = _bounds_in(geometry_value, shape, lattice.crs)
            elif band.grid is not None:
                bounds = transform_bounds(band.grid.bounds, band.grid.crs, lattice.crs)
            else:
                raise call.error(f"Band '{band.id}' has no footprint (a composite or a constant): give a geometry.")
            grid = _scaled_grid(call, lattice, bounds, width, height, max_dimension, scale)
        except (InvalidCrsError, InvalidGridError) as error:
            raise call.error(f"Cannot place band '{band.id}': {error}") from None
        source = ClipSource(ReprojectedSource(band.source, grid.crs, grid.transform), grid)
        bands.append(v.Band(band.id, band.pixel_type, source, grid))
    return image.with_bands(bands)


def _scaled_grid(
    call: Call,
    lattice: Lattice,
    bounds: tuple[float, float, float, float],
    width: int | None,
    height: int | None,
    max_dimension: int | None,
    scale: float | None,
) -> PixelGrid:
    west, south, east, north = bounds
    extent_x, extent_y = east - west, north - south
    if width is None and height is None and max_dimension is not None:
        if extent_x >= extent_y:
            width = max_dimension
        else:
            height = max_dimension
    if width is not None or height is not None:
        if extent_x <= 0 or extent_y <= 0:
            raise call.error("The region has no area: give a polygon to scale to pixel dimensions.")
        # One given dimension: the other follows the region's aspect ratio (square pixels).
        if width is None:
            assert height is not None
            width = max(1, round(height * extent_x / extent_y))
        if height is None:
            height = max(1, round(width * extent_y / extent_x))
        transform = Affine(extent_x / width, 0.0, west, 0.0, -extent_y / height, north)
        return PixelGrid(lattice.crs, transform, width, height)
    if scale is not None:
        scaled = at_scale(v.Projection(lattice.crs, tuple(lattice.transform)[:6]), scale)
        lattice = Lattice(lattice.crs, north_up(scaled.transform))
    return _window_grid(lattice, bounds)


@algorithm("Image.setDefaultProjection", IMAGE,
           "The image with a new default projection; pixels are not resampled until a later request.",
           ("image", IMAGE), ("crs", "Projection"), opt("crsTransform", "List<Float>"),
           opt("scale", "Float"))  # fmt: skip
def _set_default_projection(call: Call) -> v.Image:
    image = call.image("image")
    if call.get("crs") is None:
        raise call.error("crs is required.")
    lattice = requested_lattice(call, image, "crs", "crsTransform", "scale")
    bands = []
    for band in image.bands:
        grid = None
        if band.grid is not None:
            try:
                grid = _window_grid(lattice, transform_bounds(band.grid.bounds, band.grid.crs, lattice.crs))
            except (InvalidCrsError, InvalidGridError) as error:
                raise call.error(f"Cannot place band '{band.id}' in {lattice.crs}: {error}") from None
        bands.append(v.Band(band.id, band.pixel_type, band.source, grid))
    return image.with_bands(bands)


# -- sampling pixels into features -----------------------------------------------------------------
MAX_SAMPLES = 5000  # features one request may return (Earth Engine's getInfo aborts beyond 5000 elements)


@algorithm(
    "Image.sample",
    "FeatureCollection",
    "Features of the pixels (centres inside the region) of the requested lattice, one property per band.",
    ("image", IMAGE),
    opt("region", "Geometry"),
    opt("scale", "Float"),
    opt("projection", "Projection"),
    opt("factor", "Float"),
    opt("numPixels", "Long"),
    opt("seed", "Integer", "", 0),
    opt("dropNulls", "Boolean", "", True),
    opt("tileScale", "Float", "", 1),
    opt("geometries", "Boolean", "", False),
)
def _sample(call: Call) -> v.FeatureCollection:
    image = call.image("image")
    if not image.bands:
        raise call.error("The image has no bands.")
    factor = None if call.get("factor") is None else call.finite("factor")
    count = call.optional_integer("numPixels")
    if factor is not None and count is not None:
        raise call.error("Give factor or numPixels, not both.")
    if factor is not None and not 0 < factor <= 1:
        raise call.error(f"factor must be in (0, 1], got {factor}.")
    if count is not None and count < 0:
        raise call.error(f"numPixels must not be negative, got {count}.")
    region = geometry_argument(call, "region") if call.get("region") is not None else _image_footprint(call, image)
    lattice = requested_lattice(call, image, "projection", None, "scale")
    grid = region_grid(call, lattice, region, 10_000_000, "Sample a smaller region or at a coarser scale.")
    chosen = inside(region, grid)
    rows, cols = np.nonzero(chosen)
    pixels = [band.source.read(grid) for band in image.bands]
    masks = np.stack([np.ma.getmaskarray(p)[rows, cols] for p in pixels])
    if call.boolean("dropNulls"):
        keep = ~masks.any(axis=0)
        rows, cols, masks = rows[keep], cols[keep], masks[:, keep]
    # Which pixels: all, a random fraction, or about numPixels of them (seeded; Earth Engine's choice differs).
    generator = np.random.default_rng(call.integer("seed"))
    if factor is not None or count is not None:
        fraction = factor if factor is not None else min(1.0, (count or 0) / max(1, len(rows)))
        picked = generator.random(len(rows)) < fraction
        rows, cols, masks = rows[picked], cols[picked], masks[:, picked]
    if len(rows) > MAX_SAMPLES:
        raise call.error(
            f"The sample has {len(rows)} pixels; at most {MAX_SAMPLES} can be returned. "
            "Use factor, numPixels or a coarser scale."
        )
    transformer = pyproj.Transformer.from_crs(to_pyproj(grid.crs), "EPSG:4326", always_xy=True)
    t = grid.transform
    features = []
    for position, (row, col) in enumerate(zip(rows.tolist(), cols.tolist())):
        properties: dict[str, Any] = {"system:index": str(position)}
        for band_position, (band, values) in enumerate(zip(image.bands, pixels)):
            if not masks[band_position, position]:
                properties[band.id] = np.ma.getdata(values)[row, col].item()
        geometry = None
        if call.boolean("geometries"):
            lon, lat = transformer.transform(*(t * (col + 0.5, row + 0.5)))
            geometry = v.Geometry({"type": "Point", "coordinates": [lon, lat]})
        features.append(v.Feature(geometry, properties))
    return v.FeatureCollection(tuple(features))
