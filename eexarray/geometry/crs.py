"""CRS normalisation.

A CRS travels through eexarray as a plain string: ``"EPSG:32610"`` when the CRS
has an EPSG code, WKT otherwise. Strings pickle small, hash cheaply and map
directly onto the REST ``crsCode`` / ``crsWkt`` fields.
"""

from __future__ import annotations

import functools
from typing import Any

import pyproj


class InvalidCrsError(ValueError):
    """A CRS value that pyproj cannot interpret."""


@functools.lru_cache(maxsize=256)
def to_pyproj(crs: str) -> pyproj.CRS:
    """The pyproj CRS of a normalised CRS string (cached: parsing WKT is slow)."""
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as error:
        raise InvalidCrsError(
            f"Unrecognised CRS {crs!r}: expected an EPSG code such as 'EPSG:32610', "
            f"a WKT string or a pyproj.CRS ({error})"
        ) from None


def normalize_crs(value: Any) -> str:
    """Normalise loose CRS input (code, WKT, pyproj CRS, rasterio CRS) to a string.

    ``EPSG:n`` is kept as a code; WKT that pyproj identifies exactly as an EPSG
    code becomes that code; anything else stays WKT.
    """
    if isinstance(value, pyproj.CRS):
        crs = value
    elif hasattr(value, "to_wkt") and not isinstance(value, str):
        crs = to_pyproj(value.to_wkt())
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.upper().startswith("EPSG:"):
            code = text[5:]
            if not code.isdigit():
                raise InvalidCrsError(f"Unrecognised CRS {value!r}: an EPSG code must be 'EPSG:' followed by digits")
            to_pyproj(f"EPSG:{int(code)}")  # validates that the code exists
            return f"EPSG:{int(code)}"
        crs = to_pyproj(text)
    elif isinstance(value, int) and not isinstance(value, bool):
        return normalize_crs(f"EPSG:{value}")
    else:
        raise InvalidCrsError(
            f"Unrecognised CRS {value!r}: expected an EPSG code such as 'EPSG:32610', a WKT string or a pyproj.CRS"
        )
    epsg = crs.to_epsg(min_confidence=100)
    if epsg is not None:
        return f"EPSG:{epsg}"
    return crs.to_wkt()


def crs_equal(first: str, second: str) -> bool:
    """Whether two normalised CRS strings denote the same CRS."""
    if first == second:
        return True
    return bool(to_pyproj(first) == to_pyproj(second))
