"""``projects.thumbnails``: create (POST) and ``:getPixels`` (GET), what ``getDownloadId``,
``getDownloadURL``, ``getThumbId`` and ``getThumbURL`` of the official client use.

``POST /v1/projects/{p}/thumbnails`` with ``{expression, fileFormat, bandIds,
visualizationOptions, filenamePrefix, grid, workloadTag}`` checks the request (the
expression is evaluated, so a bad expression, band id or format is a 400 at once) and
answers ``{"name": "projects/{p}/thumbnails/{id}"}``; ``GET
/v1/projects/{p}/thumbnails/{id}:getPixels`` computes and encodes the pixels, as
computePixels does, on the image's own grid: the client has folded region, scale,
dimensions and CRS into the expression (``Image.clipToBoundsAndScale``,
``Image.reproject``...), so every band carries the grid to write. One file per band
(``ZIPPED_GEO_TIFF_PER_BAND``) writes each band on its own grid (band-level
``crs``/``scale`` of ``getDownloadId``); other formats use the first band's grid (or
``grid`` when the request gives one). Files in a zip are ``<prefix>.tif`` or
``<prefix>.<band>.tif``; the prefix is ``filenamePrefix``, else ``download``.

Ids are random (``secrets``) and kept in memory: the most recent ``MAX_THUMBNAILS``, and
no more than ``MAX_STORED_BYTES`` of request bodies.
"""

from __future__ import annotations

import io
import json
import secrets
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from eexarray.geometry import InvalidCrsError, InvalidGridError, PixelGrid
from eexarray.server.catalog import Catalog
from eexarray.server.compute import values as v
from eexarray.server.compute.pixels import grid_for
from eexarray.server.compute.service import evaluate
from eexarray.server.encoding import CONTENT_TYPES, encode_geotiff, filled
from eexarray.server.errors import invalid_argument, not_found
from eexarray.server.pixel_request import (
    PixelRequest,
    band_positions,
    check_size,
    parse_file_format,
    requested_visualization,
    unknown_field,
)
from eexarray.server.pixels import encode_bands

BODY_KEYS = (
    "expression",
    "fileFormat",
    "bandIds",
    "visualizationOptions",
    "filenamePrefix",
    "grid",
    "workloadTag",
    "name",
)
MAX_THUMBNAILS = 10000
MAX_STORED_BYTES = 256 * 2**20  # request bodies kept (as JSON text), oldest dropped first
DEFAULT_PREFIX = "download"


@dataclass(frozen=True)
class Thumbnail:
    body: dict[str, Any]
    size: int  # bytes of the body as JSON


@dataclass(frozen=True)
class ThumbnailPixels:
    data: bytes | bytearray
    content_type: str
    band_ids: list[str]
    width: int
    height: int
    file_format: str


class ThumbnailStore:
    """Created thumbnail requests by name (thread-safe, bounded)."""

    def __init__(self, limit: int = MAX_THUMBNAILS, max_bytes: int = MAX_STORED_BYTES):
        self._items: OrderedDict[str, Thumbnail] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit
        self._max_bytes = max_bytes
        self._bytes = 0

    def create(self, catalog: Catalog, project: str, body: Any) -> dict[str, str]:
        _checked(catalog, body)
        name = f"{project}/thumbnails/{secrets.token_hex(16)}"
        thumbnail = Thumbnail(dict(body), len(json.dumps(body)))
        with self._lock:
            self._items[name] = thumbnail
            self._bytes += thumbnail.size
            while len(self._items) > 1 and (len(self._items) > self._limit or self._bytes > self._max_bytes):
                self._bytes -= self._items.popitem(last=False)[1].size
        return {"name": name}

    def get_pixels(self, catalog: Catalog, name: str) -> ThumbnailPixels:
        with self._lock:
            thumbnail = self._items.get(name)
        if thumbnail is None:
            raise not_found(f'Thumbnail "{name}" not found (thumbnails live in the server\'s memory).')
        return _render(catalog, thumbnail.body)


def _checked(catalog: Catalog, body: Any) -> tuple[v.Image, list[int], str]:
    if not isinstance(body, dict):
        raise invalid_argument(f"The request body must be a JSON object with keys {BODY_KEYS}")
    for key in body:
        if key not in BODY_KEYS:
            raise unknown_field(key)
    if body.get("expression") is None:
        raise invalid_argument("A thumbnail needs an expression (the image).")
    prefix = body.get("filenamePrefix")
    if prefix is not None and (not isinstance(prefix, str) or not prefix or "/" in prefix or "\\" in prefix):
        raise invalid_argument(f"filenamePrefix must be a file name without slashes, got {prefix!r}")
    file_format = parse_file_format(body.get("fileFormat"), "thumbnails")
    image = evaluate(catalog, body["expression"])
    if not isinstance(image, v.Image):
        raise invalid_argument(f"A thumbnail is of an Image; the expression is a {v.type_name(image)}.")
    positions = list(band_positions(image.band_names, body.get("bandIds") or None, "<computed>"))
    requested_visualization(body, file_format, len(positions))
    return image, positions, file_format


def _render(catalog: Catalog, body: dict[str, Any]) -> ThumbnailPixels:
    image, positions, file_format = _checked(catalog, body)
    bands = [image.bands[position] for position in positions]
    band_ids = [band.id for band in bands]
    prefix = body.get("filenamePrefix") or DEFAULT_PREFIX
    visualization = requested_visualization(body, file_format, len(bands))
    try:
        if file_format == "ZIPPED_GEO_TIFF_PER_BAND" and visualization is None:
            return _per_band(bands, body.get("grid"), prefix)
        grid = grid_for(bands[0], body.get("grid"))
    except (InvalidGridError, InvalidCrsError) as error:
        raise invalid_argument(str(error)) from None
    check_size([band.pixel_type.dtype for band in bands], grid)
    request = PixelRequest(tuple(positions), grid, file_format, visualization)
    arrays = [band.source.read(grid) for band in bands]
    data, content_type = encode_bands(arrays, band_ids, request, prefix)
    return ThumbnailPixels(data, content_type, band_ids, grid.width, grid.height, file_format)


def _per_band(bands: list[v.Band], grid_value: Any, prefix: str) -> ThumbnailPixels:
    """One GeoTIFF per band, each on its own grid, in one zip."""
    grids: list[PixelGrid] = [grid_for(band, grid_value) for band in bands]
    for band, grid in zip(bands, grids):
        check_size([band.pixel_type.dtype], grid)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for band, grid in zip(bands, grids):
            array = filled(band.source.read(grid))
            archive.writestr(f"{prefix}.{band.id}.tif", encode_geotiff([band.id], [array], grid))
    widest = max(grids, key=lambda g: g.width * g.height)
    return ThumbnailPixels(
        buffer.getvalue(),
        CONTENT_TYPES["ZIPPED_GEO_TIFF_PER_BAND"],
        [band.id for band in bands],
        widest.width,
        widest.height,
        "ZIPPED_GEO_TIFF_PER_BAND",
    )
