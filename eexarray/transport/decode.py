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
# numpy refuses headers over 10,000 bytes by default; one field per band (and per image when
# a time series is packed into one request) needs more. The header is parsed as a literal,
# never executed, and checked field by field, so a larger bound is safe.
MAX_NPY_HEADER_BYTES = 2**22


def decode_npy(
    content: bytes | bytearray, *, shape: tuple[int, int], band_ids: Sequence[str], dtypes: Sequence[np.dtype]
) -> dict[str, np.ndarray]:
    """A structured NPY body -> one 2-D array per band (read-only views), validated first.

    The header is parsed first and checked against the request (shape, field names,
    dtypes), then the body length must be exactly header + height x width x itemsize:
    a body cut short or padded is refused, and nothing is allocated from a bad header.
    """
    if not content.startswith(NPY_MAGIC):
        raise CorruptResponseError(f"not an NPY body (starts with {bytes(content[:16])!r})")
    stream = io.BytesIO(content)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        header_shape, fortran_order, dtype = read_header(stream, max_header_size=MAX_NPY_HEADER_BYTES)
    except Exception as error:  # noqa: BLE001 - a garbled header raises ValueError, SyntaxError, ...
        raise CorruptResponseError(f"NPY header does not decode ({type(error).__name__}: {error})") from None
    if tuple(header_shape) != tuple(shape):
        raise CorruptResponseError(f"NPY shape {tuple(header_shape)}, expected {tuple(shape)}")
    names = dtype.names or ()
    if list(names) != list(band_ids):
        raise CorruptResponseError(f"NPY fields {list(names)}, expected {list(band_ids)}")
    for band_id, expected in zip(band_ids, dtypes):
        actual = dtype[band_id]  # the field's dtype (its names matched band_ids above)
        if actual.newbyteorder("=") != np.dtype(expected).newbyteorder("="):
            raise CorruptResponseError(f"band {band_id!r} has dtype {actual}, expected {np.dtype(expected)}")
    offset = stream.tell()
    count = int(shape[0]) * int(shape[1])
    expected_length = offset + count * dtype.itemsize
    if len(content) != expected_length:
        raise CorruptResponseError(
            f"NPY body has {len(content)} bytes, expected {expected_length} "
            f"({shape[0]}x{shape[1]} px of {dtype.itemsize} bytes after a {offset}-byte header)"
        )
    array = np.frombuffer(content, dtype=dtype, count=count, offset=offset)
    array = array.reshape(shape, order="F" if fortran_order else "C")
    result = {}
    for band_id, expected in zip(band_ids, dtypes):
        native = np.dtype(expected).newbyteorder("=")
        # A read-only view into the body when the byte order is native: the caller copies
        # each band once, into the array it assembles (no intermediate copy per band).
        result[band_id] = array[band_id].astype(native, copy=False)
    return result


def decode_geotiff(
    content: bytes | bytearray, *, shape: tuple[int, int], band_ids: Sequence[str], dtypes: Sequence[np.dtype]
) -> dict[str, np.ndarray]:
    """A GeoTIFF body -> one 2-D array per band (bands in request order)."""
    from rasterio.errors import RasterioError
    from rasterio.io import MemoryFile

    if not (content.startswith(b"II") or content.startswith(b"MM")):
        raise CorruptResponseError(f"not a TIFF body (starts with {bytes(content[:16])!r})")
    try:
        # rasterio's MemoryFile takes bytes only (the transport reads into a bytearray).
        with MemoryFile(bytes(content)) as memory, memory.open() as dataset:
            if dataset.count != len(band_ids) or (dataset.height, dataset.width) != tuple(shape):
                raise CorruptResponseError(
                    f"GeoTIFF holds {dataset.count} bands of {dataset.height}x{dataset.width}, "
                    f"expected {len(band_ids)} of {shape[0]}x{shape[1]}"
                )
            stack = dataset.read()
    except CorruptResponseError:
        raise
    except (RasterioError, ValueError, OSError) as error:
        raise CorruptResponseError(f"GeoTIFF body does not decode ({error})") from None
    result = {}
    for index, (band_id, dtype) in enumerate(zip(band_ids, dtypes)):
        band = stack[index]
        # One GeoTIFF has one dtype: mixed bands arrive promoted to a type that holds them all.
        if not np.can_cast(np.dtype(dtype), band.dtype, "safe"):
            raise CorruptResponseError(f"band {band_id!r} has dtype {band.dtype}, expected {np.dtype(dtype)}")
        converted = band.astype(dtype, copy=False)
        exact = np.array_equal(converted.astype(band.dtype), band, equal_nan=band.dtype.kind == "f")
        if band.dtype != np.dtype(dtype) and not exact:
            raise CorruptResponseError(
                f"band {band_id!r} arrived as {band.dtype} with values that are not {np.dtype(dtype)} values"
            )
        result[band_id] = converted
    return result


DECODERS = {"NPY": decode_npy, "GEO_TIFF": decode_geotiff}
