"""Encoders for getPixels: NPY, GeoTIFF (plain and zipped), PNG and JPEG.

Masked pixels are written as 0 in every format (PNG also makes them transparent).
NPY is a structured array, one field per band in the band's own dtype. A GeoTIFF
has one dtype, so mixed bands are promoted to the smallest type holding them all.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from collections.abc import Sequence

import numpy as np
import rasterio
from PIL import Image
from rasterio.io import MemoryFile

from eexarray.geometry import PixelGrid, to_pyproj
from eexarray.server.errors import invalid_argument

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
    head = npy_header(dtype, (height, width))
    buffer = bytearray(len(head) + height * width * dtype.itemsize)
    buffer[: len(head)] = head
    record = np.frombuffer(buffer, dtype=dtype, offset=len(head)).reshape(height, width)
    for band_id, array in zip(band_ids, arrays):
        record[band_id] = array
    return buffer


# NPY format 3.0 (numpy >= 1.17): a UTF-8 header, its length in 4 bytes, padded to 64 bytes.
_NPY_V3_PREFIX = b"\x93NUMPY\x03\x00"
_NPY_ALIGN = 64


def npy_header(dtype: np.dtype, shape: tuple[int, int]) -> bytes:
    """The NPY header of a C-order ``shape`` array of ``dtype``.

    Format 1.0 (what every numpy reads) when the field names are latin-1; band ids beyond
    latin-1 (``波段``) need format 3.0, whose header is UTF-8, written here because numpy
    only writes it from a whole array.
    """
    fields = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    header = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(header, fields)
        return header.getvalue()
    except UnicodeEncodeError:
        pass
    # The same dict text numpy writes ({'descr': ..., 'fortran_order': False, 'shape': (h, w), }).
    text = "{" + "".join(f"{key!r}: {value!r}, " for key, value in fields.items()) + "}"
    encoded = text.encode("utf-8")
    fixed = len(_NPY_V3_PREFIX) + 4 + len(encoded) + 1  # + the final newline
    padding = -fixed % _NPY_ALIGN
    length = len(encoded) + padding + 1
    return _NPY_V3_PREFIX + struct.pack("<I", length) + encoded + b" " * padding + b"\n"


# What GDAL keeps of a band description (its GDAL_METADATA XML): leading whitespace is
# stripped and C0 control characters other than tab, newline and carriage return dropped.
_DESCRIPTION_LOSES = re.compile(r"^[ \t\n\r]|[\x00-\x08\x0b\x0c\x0e-\x1f]")


def check_description(band_id: str, file_format: str) -> None:
    """400 for a band id a GeoTIFF band description cannot hold exactly (it would arrive changed)."""
    try:
        band_id.encode("utf-8")
    except UnicodeEncodeError:
        problem = "a lone surrogate, which is not UTF-8 text"
    else:
        found = _DESCRIPTION_LOSES.search(band_id)
        if found is None:
            return
        problem = "leading whitespace" if found.start() == 0 and band_id[0] in " \t\n\r" else "a control character"
    raise invalid_argument(
        f"Band id {band_id!r} cannot be written in a {file_format} band description: it holds {problem}, "
        "which GeoTIFF does not keep; request NPY or select other bands."
    )


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


# Characters a band id may bring into a file name inside a zip; others become "_" (a band
# id "../../x" or "a/b" must not make a member that extracts outside its directory).
_UNSAFE_IN_FILE_NAME = re.compile(r"[^\w.\-]")


def zip_member_names(name: str, band_ids: Sequence[str]) -> list[str]:
    """``<name>.<band>.tif`` per band, the band made safe as a file name and distinct."""
    members: list[str] = []
    for band_id in band_ids:
        member = f"{name}.{_UNSAFE_IN_FILE_NAME.sub('_', band_id)}.tif"
        stem, number = member[: -len(".tif")], 1
        while member in members:  # two ids made equal by the substitution
            number += 1
            member = f"{stem}_{number}.tif"
        members.append(member)
    return members


def encode_zipped_geotiff(
    band_ids: Sequence[str], arrays: Sequence[np.ndarray], grid: PixelGrid, name: str, per_band: bool
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if per_band:
            for member, band_id, array in zip(zip_member_names(name, band_ids), band_ids, arrays):
                archive.writestr(member, encode_geotiff([band_id], [array], grid))
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
