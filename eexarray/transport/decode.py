"""Decode pixel responses and check them against what was asked for.

A body that is cut short or holds the wrong shape, fields or dtypes raises
``CorruptResponseError`` so the caller retries it: it is never returned as data.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from eexarray.transport.errors import CorruptResponseError

NPY_MAGIC = b"\x93NUMPY"


def decode_npy(
    content: bytes, *, shape: tuple[int, int], band_ids: Sequence[str], dtypes: Sequence[np.dtype]
) -> dict[str, np.ndarray]:
    """A structured NPY body -> one 2-D array per band, validated field by field."""
    if not content.startswith(NPY_MAGIC):
        raise CorruptResponseError(f"not an NPY body (starts with {content[:16]!r})")
    try:
        array = np.load(io.BytesIO(content), allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:
        raise CorruptResponseError(f"NPY body does not decode ({error})") from None
    if array.shape != tuple(shape):
        raise CorruptResponseError(f"NPY shape {array.shape}, expected {tuple(shape)}")
    names = array.dtype.names or ()
    if list(names) != list(band_ids):
        raise CorruptResponseError(f"NPY fields {list(names)}, expected {list(band_ids)}")
    result = {}
    for band_id, dtype in zip(band_ids, dtypes):
        field = array[band_id]
        if field.dtype.newbyteorder("=") != np.dtype(dtype).newbyteorder("="):
            raise CorruptResponseError(f"band {band_id!r} has dtype {field.dtype}, expected {np.dtype(dtype)}")
        result[band_id] = np.ascontiguousarray(field, dtype=np.dtype(dtype).newbyteorder("="))
    return result


def decode_geotiff(
    content: bytes, *, shape: tuple[int, int], band_ids: Sequence[str], dtypes: Sequence[np.dtype]
) -> dict[str, np.ndarray]:
    """A GeoTIFF body -> one 2-D array per band (bands in request order)."""
    from rasterio.errors import RasterioIOError
    from rasterio.io import MemoryFile

    if not (content.startswith(b"II") or content.startswith(b"MM")):
        raise CorruptResponseError(f"not a TIFF body (starts with {content[:16]!r})")
    try:
        with MemoryFile(content) as memory, memory.open() as dataset:
            if dataset.count != len(band_ids) or (dataset.height, dataset.width) != tuple(shape):
                raise CorruptResponseError(
                    f"GeoTIFF holds {dataset.count} bands of {dataset.height}x{dataset.width}, "
                    f"expected {len(band_ids)} of {shape[0]}x{shape[1]}"
                )
            stack = dataset.read()
    except RasterioIOError as error:
        raise CorruptResponseError(f"GeoTIFF body does not decode ({error})") from None
    result = {}
    for index, (band_id, dtype) in enumerate(zip(band_ids, dtypes)):
        band = stack[index]
        if not np.can_cast(np.dtype(dtype), band.dtype, "safe"):
            raise CorruptResponseError(f"band {band_id!r} has dtype {band.dtype}, expected {np.dtype(dtype)}")
        result[band_id] = band.astype(dtype, copy=False)
    return result


DECODERS = {"NPY": decode_npy, "GEO_TIFF": decode_geotiff}
