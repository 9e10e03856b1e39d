"""Decode pixel responses and check them against what was asked for.

A body that is cut short or holds the wrong shape, fields or dtypes raises
``CorruptResponseError`` so the caller retries it: it is never returned as data.
"""

from __future__ import annotations

import re
import struct
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from eexarray.transport.errors import CorruptResponseError

NPY_MAGIC = b"\x93NUMPY"
# numpy refuses headers over 10,000 bytes by default; one field per band (and per image when
# a time series is packed into one request) needs more. The header is parsed by a small
# literal parser below (never executed) and checked field by field, so a larger bound is safe.
MAX_NPY_HEADER_BYTES = 2**22
# NPY format version -> (header length field, header text encoding).
_NPY_VERSIONS = {(1, 0): ("<H", "latin1"), (2, 0): ("<I", "latin1"), (3, 0): ("<I", "utf8")}
_NPY_KEYS = {"descr", "fortran_order", "shape"}
# Tokens of the Python literals an NPY header holds: punctuation, quoted strings (with
# backslash escapes), non-negative decimal integers (Python 2 writers added an L), True/False.
_TOKEN = re.compile(
    r"""[ \t\r\n]*(?:
        (?P<punct>[{}()\[\],:])
      | (?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
      | (?P<int>0|[1-9][0-9]*)[lL]?(?![0-9A-Za-z_])
      | (?P<bool>True|False)(?![0-9A-Za-z_])
    )""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")
_SIMPLE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_MAX_NESTING = 4  # dict > list > tuple > shape tuple
# One scalar type: byte order, kind, size, datetime unit ("<u2", "|b1", "<M8[ns]"). numpy reads
# comma lists and "(3,)u2" subarrays with ast.literal_eval: those never reach np.dtype.
_TYPE_STRING = re.compile(r"[<>|=]?[A-Za-z][0-9]*(?:\[[0-9]*[A-Za-z]+\])?")


class NpyHeader(NamedTuple):
    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int  # where the pixels start in the body


def npy_header(content: bytes | bytearray) -> NpyHeader:
    """The shape, dtype and data offset of an NPY body, parsed strictly (C order only).

    Not ``numpy.lib.format.read_array_header_*`` (nor ``np.load``): those parse the header
    with ``ast.literal_eval``, and CPython 3.11 before gh-113035 counts AST-constructor
    recursion in one counter shared by all threads; a garbage collection running a
    finalizer inside ``compile`` lets another thread parse at the same time and one of them
    fails with ``SystemError: AST constructor recursion depth mismatch``: a good body
    refused at random under concurrent reads. This parser reads only the literals a header
    holds (a dict of strings, booleans, integers, lists and tuples) and uses no ``ast``.
    """
    if bytes(content[: len(NPY_MAGIC)]) != NPY_MAGIC:
        raise CorruptResponseError(f"not an NPY body (starts with {bytes(content[:16])!r})")
    version = tuple(content[len(NPY_MAGIC) : len(NPY_MAGIC) + 2])
    if version not in _NPY_VERSIONS:
        raise CorruptResponseError(f"NPY header does not decode (unknown format version {version})")
    length_format, encoding = _NPY_VERSIONS[version]
    length_at = len(NPY_MAGIC) + 2
    start = length_at + struct.calcsize(length_format)
    if len(content) < start:
        raise CorruptResponseError(f"NPY header does not decode (body of {len(content)} bytes ends in its preamble)")
    (header_length,) = struct.unpack(length_format, bytes(content[length_at:start]))
    if header_length > MAX_NPY_HEADER_BYTES:
        raise CorruptResponseError(f"NPY header of {header_length} bytes exceeds {MAX_NPY_HEADER_BYTES}")
    if len(content) < start + header_length:
        raise CorruptResponseError(
            f"NPY header does not decode (body of {len(content)} bytes ends inside a {header_length}-byte header)"
        )
    try:
        text = bytes(content[start : start + header_length]).decode(encoding)
        fields = _parse_header_literal(text)
        shape, fortran_order, descr = fields["shape"], fields["fortran_order"], fields["descr"]
        if not isinstance(fortran_order, bool):
            raise ValueError(f"fortran_order is {fortran_order!r}, not a bool")
        if not isinstance(shape, tuple) or not all(type(size) is int and size >= 0 for size in shape):
            raise ValueError(f"shape is {shape!r}, not a tuple of sizes")
        dtype = _descr_dtype(descr)
    except (ValueError, TypeError, OverflowError) as error:  # also UnicodeDecodeError (a ValueError)
        raise CorruptResponseError(f"NPY header does not decode ({type(error).__name__}: {error})") from None
    if fortran_order:
        raise CorruptResponseError("NPY body is in Fortran order (fortran_order: True); only C order is read")
    return NpyHeader(shape, dtype, start + header_length)


def _parse_header_literal(text: str) -> dict[str, Any]:
    """The header dict, from tokens: strings, ints, booleans, and dicts, lists, tuples of them."""
    tokens: list[tuple[str, Any]] = []
    position = 0
    end = len(text.rstrip(" \t\r\n"))
    while position < end:
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"unexpected text at offset {position}: {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        value: Any = match.group(kind)
        if kind == "string":
            if not value.isprintable():  # repr escapes every unprintable character
                raise ValueError(f"unescaped unprintable character in {value!r}")
            value = _ESCAPE.sub(_unescape, value[1:-1])
        elif kind == "int":
            value = int(value)
        elif kind == "bool":
            value = value == "True"
        tokens.append((kind, value))
        position = match.end()
    result, index = _parse_value(tokens, 0, 0)
    if index != len(tokens):
        raise ValueError("text after the header dict")
    if not isinstance(result, dict):
        raise ValueError(f"header is a {type(result).__name__}, not a dict")
    if set(result) != _NPY_KEYS:
        raise ValueError(f"header keys {sorted(result)}, expected {sorted(_NPY_KEYS)}")
    return result


def _unescape(match: re.Match) -> str:
    escape = match.group(1)
    if len(escape) > 1:
        return chr(int(escape[1:], 16))  # \xhh, \uhhhh, \Uhhhhhhhh (chr refuses code points past U+10FFFF)
    if escape not in _SIMPLE_ESCAPES:
        raise ValueError(f"unsupported escape \\{escape} in a header string")
    return _SIMPLE_ESCAPES[escape]


def _parse_value(tokens: list[tuple[str, Any]], index: int, depth: int) -> tuple[Any, int]:
    if index >= len(tokens):
        raise ValueError("header ends early")
    kind, value = tokens[index]
    if kind != "punct":
        return value, index + 1
    if value not in "{[(" or depth >= _MAX_NESTING:
        raise ValueError(f"unexpected {value!r}")
    closing = {"{": "}", "[": "]", "(": ")"}[value]
    items: list[Any] = []
    index, trailing_comma = index + 1, False
    while True:
        if index >= len(tokens):
            raise ValueError("header ends early")
        if tokens[index] == ("punct", closing):
            index += 1
            break
        if items and not trailing_comma:
            raise ValueError(f"expected ',' or {closing!r}")
        item, index = _parse_value(tokens, index, depth + 1)
        if value == "{":
            if tokens[index : index + 1] != [("punct", ":")] or not isinstance(item, str):
                raise ValueError("dict keys are strings followed by ':'")
            entry, index = _parse_value(tokens, index + 1, depth + 1)
            if any(key == item for key, _ in items):
                raise ValueError(f"key {item!r} repeats")
            item = (item, entry)
        items.append(item)
        trailing_comma = tokens[index : index + 1] == [("punct", ",")]
        index += 1 if trailing_comma else 0
    if value == "{":
        return dict(items), index
    if value == "(":
        if len(items) == 1 and not trailing_comma:
            return items[0], index  # parentheses around one value, as Python reads them
        return tuple(items), index
    return items, index


def _descr_dtype(descr: object) -> np.dtype:
    """The dtype of a header's ``descr``: a type string, or a list of (field name, type string)."""
    if isinstance(descr, str):
        dtype = _scalar_dtype(descr)
    elif isinstance(descr, list) and all(
        isinstance(field, tuple) and len(field) == 2 and all(isinstance(part, str) for part in field) for field in descr
    ):
        dtype = np.dtype([(name, _scalar_dtype(type_string)) for name, type_string in descr])
    else:
        raise ValueError(f"descr {descr!r} is neither a type string nor a list of (name, type string) fields")
    fields = [dtype[name] for name in dtype.names or ()]
    if dtype.hasobject or dtype.subdtype or any(field.names or field.subdtype for field in fields):
        raise ValueError(f"descr {descr!r} holds objects or nested fields")
    return dtype


def _scalar_dtype(type_string: str) -> np.dtype:
    if not _TYPE_STRING.fullmatch(type_string):
        raise ValueError(f"type {type_string!r} is not one scalar type")
    return np.dtype(type_string)


def read_npy(content: bytes | bytearray) -> np.ndarray:
    """An NPY body as an array (a view into ``content``): ``np.load`` for bodies, without ``ast``."""
    header = npy_header(content)
    return _pixels(content, header)


def _pixels(content: bytes | bytearray, header: NpyHeader) -> np.ndarray:
    count = 1
    for size in header.shape:
        count *= size
    expected_length = header.offset + count * header.dtype.itemsize
    if len(content) != expected_length:
        described = "x".join(str(size) for size in header.shape) or "1"
        raise CorruptResponseError(
            f"NPY body has {len(content)} bytes, expected {expected_length} "
            f"({described} px of {header.dtype.itemsize} bytes after a {header.offset}-byte header)"
        )
    return np.frombuffer(content, dtype=header.dtype, count=count, offset=header.offset).reshape(header.shape)


def decode_npy(
    content: bytes | bytearray, *, shape: tuple[int, int], band_ids: Sequence[str], dtypes: Sequence[np.dtype]
) -> dict[str, np.ndarray]:
    """A structured NPY body -> one 2-D array per band (views into the body), validated first.

    The header is parsed first and checked against the request (shape, field names,
    dtypes), then the body length must be exactly header + height x width x itemsize:
    a body cut short or padded is refused, and nothing is allocated from a bad header.
    """
    header = npy_header(content)
    if tuple(header.shape) != tuple(shape):
        raise CorruptResponseError(f"NPY shape {tuple(header.shape)}, expected {tuple(shape)}")
    dtype = header.dtype
    names = dtype.names or ()
    if list(names) != list(band_ids):
        raise CorruptResponseError(f"NPY fields {list(names)}, expected {list(band_ids)}")
    for band_id, expected in zip(band_ids, dtypes):
        actual = dtype[band_id]  # the field's dtype (its names matched band_ids above)
        if actual.newbyteorder("=") != np.dtype(expected).newbyteorder("="):
            raise CorruptResponseError(f"band {band_id!r} has dtype {actual}, expected {np.dtype(expected)}")
    array = _pixels(content, header)
    result = {}
    for band_id, expected in zip(band_ids, dtypes):
        native = np.dtype(expected).newbyteorder("=")
        # A view into the body when the byte order is native: the caller copies each band
        # once, into the array it assembles (no intermediate copy per band).
        result[band_id] = array[band_id].astype(native, copy=False)
    return result


def _check_descriptions(descriptions: Sequence[str | None], band_ids: Sequence[str]) -> None:
    """Bands are matched by description, not trusted by position.

    A GeoTIFF whose bands all lack a description cannot be checked and is read in
    request order; any description present means all must equal the requested ids, in order.
    """
    if not any(descriptions):
        return
    if list(descriptions) != list(band_ids):
        raise CorruptResponseError(
            f"GeoTIFF band descriptions {list(descriptions)} do not match the requested bands {list(band_ids)} "
            "(same ids, same order)"
        )


def decode_geotiff(
    content: bytes | bytearray, *, shape: tuple[int, int], band_ids: Sequence[str], dtypes: Sequence[np.dtype]
) -> dict[str, np.ndarray]:
    """A GeoTIFF body -> one 2-D array per band (bands in request order, checked by description)."""
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
    from rasterio.io import MemoryFile

    if not (content.startswith(b"II") or content.startswith(b"MM")):
        raise CorruptResponseError(f"not a TIFF body (starts with {bytes(content[:16])!r})")
    try:
        # rasterio's MemoryFile takes bytes only (the transport reads into a bytearray).
        # GTiff only: a body in another format (a VRT names other files) is not opened.
        # The grid is the one requested, not the file's: a body without georeferencing (as
        # in GDAL's EEDAI tests; tests/conformance) is fine and must not warn the user.
        with MemoryFile(bytes(content)) as memory:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                dataset = memory.open(driver="GTiff")
            with dataset:
                if dataset.count != len(band_ids) or (dataset.height, dataset.width) != tuple(shape):
                    raise CorruptResponseError(
                        f"GeoTIFF holds {dataset.count} bands of {dataset.height}x{dataset.width}, "
                        f"expected {len(band_ids)} of {shape[0]}x{shape[1]}"
                    )
                _check_descriptions(dataset.descriptions, band_ids)
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

# Room a body may take beyond its pixels: headers, TIFF tags and strip tables, GeoKeys, WKT.
BODY_SLACK_BYTES = 2**20
# Widest pixel a GeoTIFF may carry for any requested dtype (bands promoted to one type).
_WIDEST_GEOTIFF_PIXEL = 8


def max_body_bytes(file_format: str, shape: tuple[int, int], band_ids: Sequence[str]) -> int:
    """The most bytes a good body for this request can take, once decompressed.

    The transport stops reading beyond it (a gzip-bombed or padded response is never
    inflated whole in memory). NPY: the pixels at 8 bytes per band (dtypes are checked
    later) plus a header of every name; GeoTIFF: the same plus a mask byte and a strip
    table entry per row and band.
    """
    height, width = shape
    names = sum(16 * (len(band_id) + 16) for band_id in band_ids)  # escaped names in headers / tags
    pixels = height * width * len(band_ids) * _WIDEST_GEOTIFF_PIXEL
    if file_format == "GEO_TIFF":
        pixels += height * width + 16 * height * len(band_ids)
    return pixels + names + BODY_SLACK_BYTES
