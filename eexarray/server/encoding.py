"""Encoders for getPixels: NPY, GeoTIFF (plain and zipped), PNG and JPEG.

Masked pixels are written as 0 in every format (PNG also makes them transparent).
NPY is a structured array, one field per band in the band's own dtype. A GeoTIFF
has one dtype, so mixed bands are promoted to the smallest type holding them all.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import numpy as np
import rasterio
from PIL import Image
from rasterio.io import MemoryFile

from eexarray.geometry import PixelGrid, to_pyproj

CONTENT_TYPES = {
    "NPY": "application/octet-stream",
    "GEO_TIFF": "image/tiff",
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "ZIPPED_GEO_TIFF": "application/zip",
    "ZIPPED_GEO_TIFF_PER_BAND": "application/zip",
}


def filled(band: np.ma.MaskedArray) -> np.ndarray:
    """Band values with masked pixels set to 0."""
    data = np.ma.getdata(band)
    mask = np.ma.getmask(band)
    if mask is np.ma.nomask or not mask.any():
        return data
    return np.where(mask, np.zeros((), data.dtype), data)


def encode_npy(band_ids: Sequence[str], arrays: Sequence[np.ndarray]) -> bytearray:
    """A .npy file of a structured ``(height, width)`` array, one field per band.

    The fields are written straight into the output buffer: one copy of the pixels.
    """
    height, width = arrays[0].shape
    dtype = np.dtype([(band_id, array.dtype) for band_id, array in zip(band_ids, arrays)])
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (height, width)}
    )
    head = header.getvalue()
    buffer = bytearray(len(head) + height * width * dtype.itemsize)
    buffer[: len(head)] = head
    record = np.frombuffer(buffer, dtype=dtype, offset=len(head)).reshape(height, width)
    for band_id, array in zip(band_ids, arrays):
        record[band_id] = array
    return buffer


def encode_geotiff(band_ids: Sequence[str], arrays: Sequence[np.ndarray], grid: PixelGrid) -> bytes:
    dtype = np.result_type(*[array.dtype for array in arrays])
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": len(arrays),
        "dtype": dtype.name,
        "crs": rasterio.crs.CRS.from_wkt(to_pyproj(grid.crs).to_wkt())
        if not grid.crs.startswith("EPSG:")
        else grid.crs,
        "transform": grid.transform,
    }
    with MemoryFile() as memory:
        with memory.open(**profile) as dataset:
            for index, (band_id, array) in enumerate(zip(band_ids, arrays), start=1):
                dataset.write(array.astype(dtype, copy=False), index)
                dataset.set_band_description(index, band_id)
        return memory.read()


def encode_zipped_geotiff(
    band_ids: Sequence[str], arrays: Sequence[np.ndarray], grid: PixelGrid, name: str, per_band: bool
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if per_band:
            for band_id, array in zip(band_ids, arrays):
                archive.writestr(f"{name}.{band_id}.tif", encode_geotiff([band_id], [array], grid))
        else:
            archive.writestr(f"{name}.tif", encode_geotiff(band_ids, arrays, grid))
    return buffer.getvalue()


def encode_picture(channels: Sequence[np.ndarray], alpha: np.ndarray, file_format: str) -> tuple[bytes, str]:
    """PNG (RGBA) or JPEG (RGB); AUTO_JPEG_PNG picks PNG only when some pixel is transparent."""
    if file_format == "AUTO_JPEG_PNG":
        file_format = "PNG" if (alpha < 255).any() else "JPEG"
    buffer = io.BytesIO()
    if file_format == "PNG":
        Image.fromarray(np.dstack([*channels, alpha]), "RGBA").save(buffer, format="PNG", compress_level=1)
    else:
        Image.fromarray(np.dstack(channels), "RGB").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue(), CONTENT_TYPES[file_format]
