"""getPixels end to end: checked request -> pixels on the output grid -> encoded bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from eexarray.server.encoding import (
    CONTENT_TYPES,
    check_description,
    encode_geotiff,
    encode_npy,
    encode_picture,
    encode_zipped_geotiff,
    filled,
)
from eexarray.server.images import ServerImage
from eexarray.server.pixel_request import IMAGE_FORMATS, PixelRequest, parse_pixel_request
from eexarray.server.resample import read_on_grid
from eexarray.server.visualize import VIS_BAND_IDS, visualize


@dataclass(frozen=True)
class PixelResult:
    data: bytes | bytearray
    content_type: str
    request: PixelRequest
    band_ids: list[str]


def get_pixels(image: ServerImage, body: Any) -> PixelResult:
    request = parse_pixel_request(image, body)
    bands = read_on_grid(image, request.band_indices, request.grid)
    band_ids = request.band_ids(image)
    file_name = image.asset_id.rsplit("/", 1)[-1] or "download"
    data, content_type = encode_bands(bands, band_ids, request, file_name)
    return PixelResult(data, content_type, request, band_ids)


def encode_bands(
    bands: list[np.ma.MaskedArray], band_ids: list[str], request: PixelRequest, file_name: str
) -> tuple[bytes | bytearray, str]:
    """``(body, content type)`` of bands already on ``request.grid`` (shared with computePixels)."""
    file_format = request.file_format
    data: bytes | bytearray
    if request.visualization is not None:
        channels, alpha = visualize(bands, request.visualization)
        if file_format in IMAGE_FORMATS:
            return encode_picture(channels, alpha, file_format)
        arrays, output_ids = channels, list(VIS_BAND_IDS)
    else:
        arrays, output_ids = [filled(band) for band in bands], band_ids
    if file_format != "NPY":
        for band_id in output_ids:  # before any encoding work
            check_description(band_id, file_format)
    if file_format == "NPY":
        data = encode_npy(output_ids, arrays)
    elif file_format == "GEO_TIFF":
        data = encode_geotiff(output_ids, arrays, request.grid)
    else:
        data = encode_zipped_geotiff(
            output_ids, arrays, request.grid, file_name, per_band=file_format == "ZIPPED_GEO_TIFF_PER_BAND"
        )
    return data, CONTENT_TYPES[file_format]  # a bytearray (NPY) is sent as is: no extra copy
