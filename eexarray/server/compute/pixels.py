"""computePixels end to end: body checks, evaluation, band pixels on the grid, encoding.

Same rules, limits, error texts and formats as getPixels (``pixel_request``,
``pixels.encode_bands``), with two differences the REST reference implies: the body
has ``expression`` and no ``region``, and a computed image may have no default grid
(composites, constants): then ``grid`` must give a CRS, an affine transform and
dimensions. Otherwise omitted parts of ``grid`` come from the first requested band.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from affine import Affine

from eexarray.geometry import InvalidCrsError, InvalidGridError, PixelGrid
from eexarray.geometry.grid import crs_from_rest
from eexarray.server.catalog import Catalog
from eexarray.server.compute import values as v
from eexarray.server.compute.bands import shared_reads
from eexarray.server.compute.service import evaluate
from eexarray.server.errors import invalid_argument
from eexarray.server.pixel_request import (
    GRID_KEYS,
    PixelRequest,
    band_positions,
    check_size,
    output_grid,
    parse_file_format,
    requested_visualization,
    unknown_field,
)
from eexarray.server.pixels import encode_bands

BODY_KEYS = ("expression", "fileFormat", "grid", "bandIds", "visualizationOptions", "workloadTag")
COMPUTED_NAME = "<computed>"


@dataclass(frozen=True)
class ComputedPixels:
    data: bytes | bytearray
    content_type: str
    request: PixelRequest
    band_ids: list[str]


# Earth Engine's answer to a computation over its per-request memory (e.g. gee-community/geemap#1465).
MEMORY_LIMIT_MESSAGE = "User memory limit exceeded."


def image_loads(expression: Any) -> int:
    """How many ``Image.load`` invocations the expression graph holds (as written)."""
    count = 0
    stack = [expression]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            invocation = node.get("functionInvocationValue")
            if isinstance(invocation, dict) and invocation.get("functionName") == "Image.load":
                count += 1
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def compute_pixels(catalog: Catalog, body: Any, compute_budget: int | None = None) -> ComputedPixels:
    """The pixels of ``body``; ``compute_budget`` (output pixels x images) refuses heavier requests."""
    if not isinstance(body, dict):
        raise invalid_argument(f"The request body must be a JSON object with keys {BODY_KEYS}")
    for key in body:
        if key not in BODY_KEYS:
            raise unknown_field(key)
    if body.get("expression") is None:
        raise invalid_argument("computePixels needs an expression (the image to compute).")
    file_format = parse_file_format(body.get("fileFormat"), "computePixels")
    image = evaluate(catalog, body["expression"])
    if not isinstance(image, v.Image):
        raise invalid_argument(f"computePixels computes Images; the expression is a {v.type_name(image)}.")
    positions = band_positions(image.band_names, body.get("bandIds"), COMPUTED_NAME)
    bands = [image.bands[position] for position in positions]
    visualization = requested_visualization(body, file_format, len(bands))
    try:
        grid = grid_for(bands[0], body.get("grid"))
    except (InvalidGridError, InvalidCrsError) as error:
        raise invalid_argument(str(error)) from None
    check_size([band.pixel_type.dtype for band in bands], grid)
    if (
        compute_budget is not None
        and grid.width * grid.height * max(1, image_loads(body["expression"])) > compute_budget
    ):
        raise invalid_argument(MEMORY_LIMIT_MESSAGE)
    request = PixelRequest(tuple(positions), grid, file_format, visualization)
    try:
        with shared_reads():
            arrays = [band.source.read(grid) for band in bands]
    except RecursionError:  # e.g. an iterate that chained thousands of operations on one band
        raise invalid_argument("The image is computed through too many nested operations.") from None
    band_ids = [band.id for band in bands]
    data, content_type = encode_bands(arrays, band_ids, request, "download")
    return ComputedPixels(data, content_type, request, band_ids)


def grid_for(first: v.Band, grid_value: Any) -> PixelGrid:
    """The output grid: ``grid_value``'s parts over the band's own grid (all parts needed without one)."""
    if first.grid is not None:
        return output_grid(first.grid, grid_value, None)
    complete = isinstance(grid_value, dict) and all(key in grid_value for key in ("affineTransform", "dimensions"))
    if not complete or crs_from_rest(grid_value) is None:
        if isinstance(grid_value, dict):
            for key in grid_value:
                if key not in GRID_KEYS:
                    raise unknown_field(key, "grid")
        raise invalid_argument(
            f"A grid is required: band '{first.id}' of this computed image has no default projection "
            "(composites and constants have none). Give grid.crsCode (or crsWkt), grid.affineTransform "
            "and grid.dimensions."
        )
    crs = crs_from_rest(grid_value)
    assert crs is not None
    # Every part of the grid is given, so the stand-in native grid only supplies nothing.
    return output_grid(PixelGrid(crs, Affine.identity(), 1, 1), grid_value, None)
