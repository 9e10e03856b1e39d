"""A getPixels body checked and resolved: which bands, which output grid, which format.

Output grid rules (the reference's, with this server's choices where it is silent):

* ``grid`` omitted, or any of its fields omitted: the native grid of the first
  requested band supplies them (CRS, affine, dimensions).
* a CRS other than the native one without an ``affineTransform``: a north-up lattice
  whose square pixels have the native pixel area, snapped to multiples of that size.
* ``region`` (GeoJSON, EPSG:4326): its bounding box in the output CRS. With
  ``dimensions`` the box is divided into that many pixels; without, the output is the
  smallest window of the affine's lattice covering the box.
* no region and no dimensions: the smallest window of the lattice covering the
  native footprint.

Limits (checked before any pixel is read): at most 1024 bands, 32768 pixels a side
and 50,331,648 bytes counting one mask byte per pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine

from eexarray.geometry import InvalidCrsError, InvalidGridError, PixelGrid, crs_equal
from eexarray.geometry.grid import (
    ALIGNMENT_TOLERANCE,
    affine_from_rest,
    crs_from_rest,
    dimensions_from_rest,
    transform_bounds,
)
from eexarray.server.errors import invalid_argument
from eexarray.server.geojson import GeometryError, parse_geometry
from eexarray.server.images import ServerImage
from eexarray.server.visualize import VisualizationOptions, check_band_count, parse_visualization

MAX_REQUEST_BYTES = 50_331_648
MAX_DIMENSION = 32768
MAX_BANDS = 1024
FILE_FORMATS = ("NPY", "GEO_TIFF", "PNG", "JPEG", "AUTO_JPEG_PNG", "ZIPPED_GEO_TIFF", "ZIPPED_GEO_TIFF_PER_BAND")
IMAGE_FORMATS = ("PNG", "JPEG", "AUTO_JPEG_PNG")
BODY_KEYS = ("fileFormat", "grid", "region", "bandIds", "visualizationOptions", "workloadTag")
GRID_KEYS = ("dimensions", "affineTransform", "crsCode", "crsWkt")


@dataclass(frozen=True)
class PixelRequest:
    band_indices: tuple[int, ...]
    grid: PixelGrid
    file_format: str
    visualization: VisualizationOptions | None

    def band_ids(self, image: ServerImage) -> list[str]:
        return [image.bands[index].id for index in self.band_indices]


def unknown_field(name: str, where: str = "") -> Exception:
    location = f" at '{where}'" if where else ""
    return invalid_argument(f'Invalid JSON payload received. Unknown name "{name}"{location}: Cannot find field.')


def parse_pixel_request(image: ServerImage, body: Any) -> PixelRequest:
    if not isinstance(body, dict):
        raise invalid_argument(f"The request body must be a JSON object with keys {BODY_KEYS}")
    for key in body:
        if key not in BODY_KEYS:
            raise unknown_field(key)
    file_format = parse_file_format(body.get("fileFormat"))
    band_indices = _band_indices(image, body.get("bandIds"))
    visualization = requested_visualization(body, file_format, len(band_indices))
    try:
        grid = output_grid(image.bands[band_indices[0]].grid, body.get("grid"), body.get("region"))
    except (InvalidGridError, InvalidCrsError) as error:
        raise invalid_argument(str(error)) from None
    _check_size(image, band_indices, grid)
    return PixelRequest(band_indices, grid, file_format, visualization)


def requested_visualization(body: dict[str, Any], file_format: str, band_count: int) -> VisualizationOptions | None:
    """The body's visualizationOptions; defaults for PNG/JPEG; None for raw formats."""
    visualization = None
    if body.get("visualizationOptions") is not None:
        visualization = parse_visualization(body["visualizationOptions"])
    elif file_format in IMAGE_FORMATS:
        visualization = VisualizationOptions()
    if visualization is not None:
        check_band_count(visualization, band_count)
    return visualization


def parse_file_format(value: Any, method: str = "getPixels") -> str:
    if value is None:
        return "AUTO_JPEG_PNG"
    if value not in FILE_FORMATS:
        raise invalid_argument(f"Invalid fileFormat {value!r}: {method} supports {list(FILE_FORMATS)}")
    return value


def _band_indices(image: ServerImage, band_ids: Any) -> tuple[int, ...]:
    return band_positions([band.id for band in image.bands], band_ids, image.asset_id)


def band_positions(available: list[str], band_ids: Any, owner: str) -> tuple[int, ...]:
    """Positions in ``available`` of the requested ``bandIds`` (all bands when omitted); 400 naming bad ids."""
    if band_ids is None or band_ids == []:
        indices = tuple(range(len(available)))
    else:
        if not isinstance(band_ids, list) or not all(isinstance(b, str) for b in band_ids):
            raise invalid_argument(f"bandIds must be a list of band id strings, got {band_ids!r}")
        if len(band_ids) > MAX_BANDS:
            raise invalid_argument(f"Number of bands ({len(band_ids)}) must be less than or equal to {MAX_BANDS}.")
        duplicates = sorted({b for b in band_ids if band_ids.count(b) > 1})
        if duplicates:
            raise invalid_argument(f"bandIds lists {duplicates} more than once")
        indices_list = []
        for band_id in band_ids:
            if band_id not in available:
                raise invalid_argument(f"Band '{band_id}' not found in image '{owner}'. Available bands: {available}")
            indices_list.append(available.index(band_id))
        indices = tuple(indices_list)
    if not indices:
        raise invalid_argument(f"Image '{owner}' has no bands")
    if len(indices) > MAX_BANDS:
        raise invalid_argument(f"Number of bands ({len(indices)}) must be less than or equal to {MAX_BANDS}.")
    return indices


def output_grid(native: PixelGrid, grid_value: Any, region_value: Any) -> PixelGrid:
    """The output grid of a request; ``native`` supplies what ``grid_value`` leaves out."""
    grid_value = {} if grid_value is None else grid_value
    if not isinstance(grid_value, dict):
        raise invalid_argument(f"grid must be a PixelGrid object with keys {GRID_KEYS}, got {grid_value!r}")
    for key in grid_value:
        if key not in GRID_KEYS:
            raise unknown_field(key, "grid")
    crs = crs_from_rest(grid_value) or native.crs
    same_crs = crs_equal(crs, native.crs)
    dimensions = dimensions_from_rest(grid_value["dimensions"]) if "dimensions" in grid_value else None
    if dimensions is not None:
        _check_dimensions(*dimensions)
    if "affineTransform" in grid_value:
        lattice = affine_from_rest(grid_value["affineTransform"])
    elif same_crs:
        lattice = native.transform
    else:
        lattice = _equal_area_lattice(native, crs)
    if region_value is not None:
        bounds = _region_bounds(region_value, crs)
        if dimensions is not None:
            west, south, east, north = bounds
            if east <= west or north <= south:
                raise invalid_argument(f"region has an empty bounding box {bounds}: it cannot be divided into pixels")
            width, height = dimensions
            transform = Affine((east - west) / width, 0.0, west, 0.0, -(north - south) / height, north)
            return PixelGrid(crs, transform, width, height)
        return _covering(crs, lattice, bounds)
    if dimensions is not None:
        return PixelGrid(crs, lattice, *dimensions)
    if same_crs and PixelGrid(crs, lattice, 1, 1).offset_in(native) == (0, 0):
        return native
    return _covering(crs, lattice, native.footprint_bounds(crs))


def _equal_area_lattice(native: PixelGrid, crs: str) -> Affine:
    west, south, east, north = native.footprint_bounds(crs)
    scale = math.sqrt((east - west) * (north - south) / (native.width * native.height))
    if not math.isfinite(scale) or scale <= 0:
        raise invalid_argument(f"Cannot derive a pixel size in {crs!r}: give grid.affineTransform")
    return Affine(scale, 0.0, 0.0, 0.0, -scale, 0.0)


def _region_bounds(region: Any, crs: str) -> tuple[float, float, float, float]:
    try:
        shapes = parse_geometry(region)
    except GeometryError as error:
        raise invalid_argument(f"region must be a GeoJSON geometry: {error}") from None
    points = list(shapes.points)
    points += [p for line in shapes.lines for p in line]
    points += [p for polygon in shapes.polygons for ring in polygon for p in ring]
    if not points:
        raise invalid_argument("region has no coordinates")
    xs, ys = zip(*points)
    return transform_bounds((min(xs), min(ys), max(xs), max(ys)), "EPSG:4326", crs)


def _covering(crs: str, lattice: Affine, bounds: tuple[float, float, float, float]) -> PixelGrid:
    """Smallest window of the lattice (any affine) covering ``bounds``."""
    west, south, east, north = bounds
    inverse = ~lattice
    corners = [inverse @ (x, y) for x, y in ((west, south), (west, north), (east, south), (east, north))]
    cols, rows = zip(*corners)
    col_start = math.floor(min(cols) + ALIGNMENT_TOLERANCE)
    row_start = math.floor(min(rows) + ALIGNMENT_TOLERANCE)
    width = max(1, math.ceil(max(cols) - ALIGNMENT_TOLERANCE) - col_start)
    height = max(1, math.ceil(max(rows) - ALIGNMENT_TOLERANCE) - row_start)
    _check_dimensions(width, height)
    return PixelGrid(crs, lattice @ Affine.translation(col_start, row_start), width, height)


def _check_dimensions(width: int, height: int) -> None:
    if width > MAX_DIMENSION or height > MAX_DIMENSION:
        raise invalid_argument(
            f"Pixel grid dimensions ({width}x{height}) must be less than or equal to {MAX_DIMENSION}."
        )


def _check_size(image: ServerImage, band_indices: tuple[int, ...], grid: PixelGrid) -> None:
    check_size([image.bands[index].dtype for index in band_indices], grid)


def check_size(dtypes: list[Any], grid: PixelGrid) -> None:
    """The request limits on a grid of bands of ``dtypes`` (one mask byte per pixel counted too)."""
    _check_dimensions(grid.width, grid.height)
    per_pixel = sum(np.dtype(dtype).itemsize for dtype in dtypes) + 1
    total = grid.width * grid.height * per_pixel
    if total > MAX_REQUEST_BYTES:
        raise invalid_argument(
            f"Total request size ({total} bytes) must be less than or equal to {MAX_REQUEST_BYTES} bytes."
        )


# Public names for computePixels (eexarray.server.compute), which shares these rules.
