"""CRS normalisation.

A CRS travels through eexarray as a plain string: a code (``"EPSG:32610"``, or one of
the ``SR-ORG`` codes Earth Engine uses) or WKT. Strings pickle small, hash cheaply and
map directly onto the REST ``crsCode`` / ``crsWkt`` fields.

What Earth Engine gave is what it gets back: a code stays that code and WKT from an
asset stays that exact text (Earth Engine writes WKT1; pyproj would re-export WKT2).
Only ``to_pyproj`` interprets the string, through ``SR_ORG_DEFINITIONS`` for the codes
PROJ does not know.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import pyproj

# Earth Engine reports every MODIS sinusoidal product (MOD09GA, MOD13Q1, MCD12Q1, ...) in
# "SR-ORG:6974"; some assets say "SR-ORG:6842". PROJ knows neither code. Both are the MODIS
# grid's sinusoidal projection on a sphere of radius 6371007.181 m: SR-ORG:6842's WKT on
# spatialreference.org (OSGeo/spatialreference.org scripts/sr-org.json) says so directly;
# SR-ORG:6974's entry there puts that radius in semi_major/semi_minor parameters over a
# WGS 84 datum, which PROJ reads as the WGS 84 ellipsoid (wrong by ~7 km at the equator),
# so geedim substitutes 6842's definition for 6974 (earthengine issue 194561313) and GDAL's
# EEDAI driver resolves SR-ORG codes through spatialreference.org.
MODIS_SINUSOIDAL_PROJ = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
SR_ORG_DEFINITIONS: dict[str, str] = {
    "SR-ORG:6974": MODIS_SINUSOIDAL_PROJ,
    "SR-ORG:6842": MODIS_SINUSOIDAL_PROJ,
}
# The code eexarray writes for a CRS object that is the MODIS sinusoidal projection (what
# Earth Engine itself reports for MODIS data).
MODIS_SINUSOIDAL_CODE = "SR-ORG:6974"

# Earth Engine's ``Projection.atScale`` for a geographic CRS: metres per degree along the
# equator of the WGS 84 major axis (2 * pi * 6378137 / 360 = 111319.49079327357), whatever
# the CRS's own ellipsoid; the getPixels seed example converts metres to degrees this way.
METRES_PER_DEGREE = 2 * math.pi * 6378137.0 / 360


class InvalidCrsError(ValueError):
    """A CRS value that pyproj cannot interpret."""


@functools.lru_cache(maxsize=256)
def to_pyproj(crs: str) -> pyproj.CRS:
    """The pyproj CRS of a normalised CRS string (cached: parsing WKT is slow)."""
    definition = SR_ORG_DEFINITIONS.get(crs.strip().upper(), crs)
    try:
        return pyproj.CRS.from_user_input(definition)
    except pyproj.exceptions.CRSError as error:
        hint = f"; the SR-ORG codes eexarray knows are {sorted(SR_ORG_DEFINITIONS)}" if _is_sr_org(crs) else ""
        raise InvalidCrsError(
            f"Unrecognised CRS {crs!r}: expected an EPSG code such as 'EPSG:32610', "
            f"a WKT string or a pyproj.CRS{hint} ({error})"
        ) from None


def _is_sr_org(text: str) -> bool:
    return text.strip().upper().startswith("SR-ORG:")


def is_crs_code(crs: str) -> bool:
    """Whether a normalised CRS string is a code (REST ``crsCode``) rather than WKT (``crsWkt``)."""
    return crs.upper().startswith(("EPSG:", "SR-ORG:"))


def _known_code(crs: pyproj.CRS) -> str | None:
    """The code Earth Engine would use for ``crs``: its exact EPSG code, or the MODIS SR-ORG code."""
    epsg = crs.to_epsg(min_confidence=100)
    if epsg is not None:
        return f"EPSG:{epsg}"
    if crs == to_pyproj(MODIS_SINUSOIDAL_CODE):
        return MODIS_SINUSOIDAL_CODE
    return None


def _wkt1(crs: pyproj.CRS) -> str:
    """WKT1 (what Earth Engine writes and reads), or WKT2 for a CRS WKT1 cannot express."""
    try:
        text = crs.to_wkt(version="WKT1_GDAL")
    except pyproj.exceptions.CRSError:
        text = None
    return text or crs.to_wkt()


def normalize_crs(value: Any) -> str:
    """Normalise loose CRS input (code, WKT, pyproj CRS, rasterio CRS) to a string.

    ``EPSG:n`` and the SR-ORG codes of ``SR_ORG_DEFINITIONS`` are kept as codes. WKT
    text that pyproj identifies exactly as an EPSG code becomes that code; other WKT
    text is kept as given (so an asset's ``crsWkt`` goes back to Earth Engine
    unchanged). A CRS object (pyproj, rasterio) or a PROJ string becomes its EPSG code,
    ``SR-ORG:6974`` when it is the MODIS sinusoidal projection, else WKT1.
    """
    if isinstance(value, pyproj.CRS):
        crs = value
    elif hasattr(value, "to_wkt") and not isinstance(value, str):
        crs = to_pyproj(value.to_wkt())
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        upper = text.upper()
        if upper.startswith("EPSG:"):
            code = text[5:]
            if not code.isdigit():
                raise InvalidCrsError(f"Unrecognised CRS {value!r}: an EPSG code must be 'EPSG:' followed by digits")
            to_pyproj(f"EPSG:{int(code)}")  # validates that the code exists
            return f"EPSG:{int(code)}"
        if _is_sr_org(text):
            if upper not in SR_ORG_DEFINITIONS:
                raise InvalidCrsError(
                    f"Unrecognised CRS {value!r}: PROJ knows no SR-ORG codes and eexarray maps only "
                    f"{sorted(SR_ORG_DEFINITIONS)} (MODIS sinusoidal); pass the CRS as WKT instead"
                )
            return upper
        crs = to_pyproj(text)
        if _looks_like_wkt(text):
            epsg = crs.to_epsg(min_confidence=100)
            return f"EPSG:{epsg}" if epsg is not None else text
    elif isinstance(value, int) and not isinstance(value, bool):
        return normalize_crs(f"EPSG:{value}")
    else:
        raise InvalidCrsError(
            f"Unrecognised CRS {value!r}: expected an EPSG code such as 'EPSG:32610', a WKT string or a pyproj.CRS"
        )
    return _known_code(crs) or _wkt1(crs)


def crs_as_given(text: str) -> str:
    """A CRS string Earth Engine wrote (a grid's ``crsCode``/``crsWkt``, getInfo's ``crs``), kept in its words.

    Codes are checked and spelled canonically (``EPSG:32610``, ``SR-ORG:6974``); WKT is
    checked and kept verbatim, so requests send back exactly what Earth Engine gave.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidCrsError(f"Unrecognised CRS {text!r}: expected a CRS code or WKT string")
    if text.strip().upper().startswith(("EPSG:", "SR-ORG:")):
        return normalize_crs(text)
    to_pyproj(text)  # raises InvalidCrsError naming the text when PROJ cannot read it
    return text


def _looks_like_wkt(text: str) -> bool:
    """WKT starts with a keyword and a bracket (``PROJCS[``, ``GEOGCRS[``...), unlike PROJ strings or codes."""
    head = text.split("[", 1)[0].split("(", 1)[0].strip()
    return bool(head) and head.replace("_", "").isalpha() and len(head) < len(text)


def crs_equal(first: str, second: str) -> bool:
    """Whether two normalised CRS strings denote the same CRS."""
    if first == second:
        return True
    return bool(to_pyproj(first) == to_pyproj(second))


def metres_to_crs_units(crs: str, metres: float) -> float:
    """``metres`` as a pixel size in ``crs`` units, as Earth Engine's ``Projection.atScale`` converts it.

    Geographic CRSs: degrees = metres / ``METRES_PER_DEGREE``; projected CRSs: by the unit
    of their first axis (metres stay metres, US survey feet are 0.3048006 m).
    """
    pyproj_crs = to_pyproj(crs)
    if pyproj_crs.is_geographic:
        return metres / METRES_PER_DEGREE
    axes = pyproj_crs.axis_info
    factor = float(axes[0].unit_conversion_factor) if axes and axes[0].unit_conversion_factor else 1.0
    return metres / factor
