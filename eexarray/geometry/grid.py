"""``PixelGrid``: an immutable georeferenced pixel lattice (CRS + affine + size).

The affine maps the *top-left corner* of pixel (col, row) to CRS coordinates, the
convention of GDAL, rasterio and the Earth Engine REST ``PixelGrid``. Every
operation returns a new grid; loose input (REST dicts, bounding boxes) is
normalised once, in the constructors here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
from affine import Affine

from eexarray.geometry.crs import InvalidCrsError, crs_as_given, crs_equal, is_crs_code, normalize_crs, to_pyproj
from eexarray.geometry.window import Window

# Two transforms whose coefficients differ by less than this fraction of a pixel
# are the same lattice (floating point noise from JSON round trips).
ALIGNMENT_TOLERANCE = 1e-6


class InvalidGridError(ValueError):
    """A pixel grid that cannot exist (bad size, singular affine, both crsCode and crsWkt...)."""


AFFINE_KEYS = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")


def affine_from_rest(value: Any) -> Affine:
    """An ``Affine`` from the REST ``affineTransform`` object (missing keys are 0)."""
    if not isinstance(value, dict):
        raise InvalidGridError(f"affineTransform must be an object with keys {AFFINE_KEYS}, got {value!r}")
    unknown = set(value) - set(AFFINE_KEYS)
    if unknown:
        raise InvalidGridError(f"Unknown affineTransform keys {sorted(unknown)}; valid keys are {list(AFFINE_KEYS)}")
    numbers = []
    for key in AFFINE_KEYS:
        number = value.get(key, 0)
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise InvalidGridError(f"affineTransform.{key} must be a finite number, got {number!r}")
        numbers.append(float(number))
    scale_x, shear_x, translate_x, shear_y, scale_y, translate_y = numbers
    transform = Affine(scale_x, shear_x, translate_x, shear_y, scale_y, translate_y)
    if transform.is_degenerate:
        raise InvalidGridError(f"affineTransform {value!r} is singular (zero scale): no pixel has an area")
    return transform


def affine_to_rest(transform: Affine) -> dict[str, float]:
    return dict(zip(AFFINE_KEYS, (transform.a, transform.b, transform.c, transform.d, transform.e, transform.f)))


def crs_from_rest(value: dict[str, Any]) -> str | None:
    """The CRS of a REST PixelGrid: ``crsCode`` or ``crsWkt`` (never both), or None.

    ``crsWkt`` is kept exactly as given (checked, not re-exported): a grid read from an
    asset goes back to Earth Engine in the asset's own words.
    """
    code, wkt = value.get("crsCode"), value.get("crsWkt")
    if code is not None and wkt is not None:
        raise InvalidGridError("A PixelGrid may set crsCode or crsWkt, not both")
    if code is None and wkt is None:
        return None
    text = code if code is not None else wkt
    if not isinstance(text, str) or not text.strip():
        raise InvalidGridError(f"crsCode/crsWkt must be a non-empty string, got {text!r}")
    return normalize_crs(text) if code is not None else crs_as_given(text)


def crs_to_rest(crs: str) -> dict[str, str]:
    return {"crsCode": crs} if is_crs_code(crs) else {"crsWkt": crs}


def dimensions_from_rest(value: Any) -> tuple[int, int]:
    """``(width, height)`` from the REST ``dimensions`` object."""
    if not isinstance(value, dict):
        raise InvalidGridError(f"dimensions must be an object {{'width': w, 'height': h}}, got {value!r}")
    sizes = []
    for key in ("width", "height"):
        size = value.get(key)
        if isinstance(size, str) and size.isdigit():  # int64 fields may arrive as strings
            size = int(size)
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise InvalidGridError(f"dimensions.{key} must be a positive integer, got {size!r}")
        sizes.append(size)
    return sizes[0], sizes[1]


@dataclass(frozen=True)
class PixelGrid:
    """A ``width`` x ``height`` pixel lattice placed in ``crs`` by ``transform``."""

    crs: str
    transform: Affine
    width: int
    height: int

    def __post_init__(self) -> None:
        if isinstance(self.width, bool) or not isinstance(self.width, (int, np.integer)) or self.width <= 0:
            raise InvalidGridError(f"Grid width must be a positive integer, got {self.width!r}")
        if isinstance(self.height, bool) or not isinstance(self.height, (int, np.integer)) or self.height <= 0:
            raise InvalidGridError(f"Grid height must be a positive integer, got {self.height!r}")
        if not isinstance(self.transform, Affine):
            object.__setattr__(self, "transform", Affine(*tuple(self.transform)[:6]))
        if self.transform.is_degenerate or not all(math.isfinite(v) for v in tuple(self.transform)[:6]):
            raise InvalidGridError(f"Grid transform {tuple(self.transform)[:6]} is singular or not finite")
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_rest(cls, value: dict[str, Any], *, default_crs: str | None = None) -> PixelGrid:
        """A grid from a complete REST PixelGrid dict."""
        if not isinstance(value, dict):
            raise InvalidGridError(f"A PixelGrid must be a dict, got {type(value).__name__}")
        unknown = set(value) - {"dimensions", "affineTransform", "crsCode", "crsWkt"}
        if unknown:
            raise InvalidGridError(
                f"Unknown PixelGrid keys {sorted(unknown)}; valid keys are dimensions, affineTransform, crsCode, crsWkt"
            )
        crs = crs_from_rest(value) or default_crs
        if crs is None:
            raise InvalidGridError("A PixelGrid needs crsCode or crsWkt")
        if "affineTransform" not in value:
            raise InvalidGridError("A PixelGrid needs an affineTransform")
        if "dimensions" not in value:
            raise InvalidGridError("A PixelGrid needs dimensions {'width', 'height'}")
        width, height = dimensions_from_rest(value["dimensions"])
        return cls(crs, affine_from_rest(value["affineTransform"]), width, height)

    @classmethod
    def from_bounds(
        cls,
        crs: Any,
        bounds: tuple[float, float, float, float],
        scale: float | tuple[float, float],
        *,
        snap: bool = True,
    ) -> PixelGrid:
        """A north-up grid covering ``bounds`` (west, south, east, north in ``crs`` units).

        With ``snap`` the pixel edges fall on multiples of the scale, so two grids
        built at the same scale for different regions share one lattice.
        """
        crs = normalize_crs(crs)
        scale_x, scale_y = _scale_pair(scale)
        west, south, east, north = (float(v) for v in bounds)
        if not all(math.isfinite(v) for v in (west, south, east, north)):
            raise InvalidGridError(f"Region bounds {bounds!r} are not finite")
        if east <= west or north <= south:
            raise InvalidGridError(
                f"Region bounds {bounds!r} are empty or inverted: expected west < east and south < north"
            )
        if snap:
            west = math.floor(west / scale_x + ALIGNMENT_TOLERANCE) * scale_x
            north = math.ceil(north / scale_y - ALIGNMENT_TOLERANCE) * scale_y
        width = max(1, math.ceil((east - west) / scale_x - ALIGNMENT_TOLERANCE))
        height = max(1, math.ceil((north - south) / scale_y - ALIGNMENT_TOLERANCE))
        return cls(crs, Affine(scale_x, 0.0, west, 0.0, -scale_y, north), width, height)

    # -- conversion -------------------------------------------------------------------
    def to_rest(self) -> dict[str, Any]:
        return {
            "dimensions": {"width": self.width, "height": self.height},
            "affineTransform": affine_to_rest(self.transform),
            **crs_to_rest(self.crs),
        }

    @property
    def pyproj_crs(self) -> pyproj.CRS:
        return to_pyproj(self.crs)

    # -- shape and placement ----------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``, numpy order."""
        return (self.height, self.width)

    @property
    def is_axis_aligned(self) -> bool:
        """No shear or rotation, so pixel centres form 1-D x and y coordinates."""
        return self.transform.b == 0 and self.transform.d == 0

    @property
    def resolution(self) -> tuple[float, float]:
        """Signed ``(x, y)`` pixel size of an axis-aligned grid (y is negative when north-up)."""
        return (self.transform.a, self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` of the grid's outer edges in its CRS."""
        xs, ys = [], []
        for col, row in ((0, 0), (self.width, 0), (0, self.height), (self.width, self.height)):
            x, y = self.transform @ (col, row)
            xs.append(x)
            ys.append(y)
        return (min(xs), min(ys), max(xs), max(ys))

    def x_coords(self) -> np.ndarray:
        """Pixel-centre x coordinates of each column (axis-aligned grids)."""
        self._require_axis_aligned()
        return self.transform.c + (np.arange(self.width, dtype="float64") + 0.5) * self.transform.a

    def y_coords(self) -> np.ndarray:
        """Pixel-centre y coordinates of each row (axis-aligned grids)."""
        self._require_axis_aligned()
        return self.transform.f + (np.arange(self.height, dtype="float64") + 0.5) * self.transform.e

    def _require_axis_aligned(self) -> None:
        if not self.is_axis_aligned:
            raise InvalidGridError(f"Grid transform {tuple(self.transform)[:6]} is sheared or rotated")

    # -- derived grids ----------------------------------------------------------------
    def window(self, window: Window) -> PixelGrid:
        """The sub-grid covering ``window`` (which may extend past this grid's edges)."""
        return PixelGrid(
            self.crs,
            self.transform @ Affine.translation(window.col_start, window.row_start),
            window.width,
            window.height,
        )

    def with_dimensions(self, width: int, height: int) -> PixelGrid:
        """The same footprint resampled to ``width`` x ``height`` pixels."""
        scale = Affine.scale(self.width / width, self.height / height)
        return PixelGrid(self.crs, self.transform @ scale, width, height)

    def offset_in(self, other: PixelGrid) -> tuple[int, int] | None:
        """``(row, col)`` of this grid's origin in ``other``'s lattice, if both share one.

        Shared lattice: same CRS, same pixel size and orientation, origins an integer
        number of pixels apart. Reading such a grid from ``other`` is a pure window read.
        """
        a, b = self.transform, other.transform
        pixel = max(abs(b.a), abs(b.b), abs(b.d), abs(b.e))
        for mine, theirs in ((a.a, b.a), (a.b, b.b), (a.d, b.d), (a.e, b.e)):
            if abs(mine - theirs) > ALIGNMENT_TOLERANCE * pixel:
                return None
        if not crs_equal(self.crs, other.crs):
            return None
        col, row = ~b @ (a.c, a.f)
        col_int, row_int = round(col), round(row)
        if abs(col - col_int) > ALIGNMENT_TOLERANCE or abs(row - row_int) > ALIGNMENT_TOLERANCE:
            return None
        return (int(row_int), int(col_int))

    def footprint_bounds(self, crs: str, densify: int = 21) -> tuple[float, float, float, float]:
        """Bounding box of this grid's footprint in another CRS (edges densified)."""
        return transform_bounds(self.bounds, self.crs, crs, densify)

    def window_covering(self, bounds: tuple[float, float, float, float]) -> Window:
        """Smallest window of this axis-aligned grid covering ``bounds`` (may exceed the grid)."""
        self._require_axis_aligned()
        inverse = ~self.transform
        west, south, east, north = bounds
        cols, rows = zip(*(inverse @ (x, y) for x, y in ((west, north), (east, south))))
        col_start = math.floor(min(cols) + ALIGNMENT_TOLERANCE)
        col_stop = math.ceil(max(cols) - ALIGNMENT_TOLERANCE)
        row_start = math.floor(min(rows) + ALIGNMENT_TOLERANCE)
        row_stop = math.ceil(max(rows) - ALIGNMENT_TOLERANCE)
        return Window(row_start, max(row_stop, row_start + 1), col_start, max(col_stop, col_start + 1))


@dataclass(frozen=True)
class PartialGrid:
    """A band's native grid as Earth Engine reports it, parts possibly missing.

    The PixelGrid reference makes ``dimensions`` and ``affineTransform`` optional: a band
    may give a lattice without an extent, or only a CRS. Such a band opens when the user
    supplies what is missing (``region=`` for the extent, ``scale=``/``resolution=`` for
    the lattice).
    """

    crs: str
    transform: Affine | None  # None: no affineTransform reported
    width: int | None  # None (with height): no dimensions reported
    height: int | None

    @classmethod
    def from_rest(cls, value: Any) -> PartialGrid:
        if not isinstance(value, dict):
            raise InvalidGridError(f"A PixelGrid must be a dict, got {type(value).__name__}")
        unknown = set(value) - {"dimensions", "affineTransform", "crsCode", "crsWkt"}
        if unknown:
            raise InvalidGridError(
                f"Unknown PixelGrid keys {sorted(unknown)}; valid keys are dimensions, affineTransform, crsCode, crsWkt"
            )
        crs = crs_from_rest(value)
        if crs is None:
            raise InvalidGridError(f"A band's PixelGrid needs crsCode or crsWkt, got {value!r}")
        transform = affine_from_rest(value["affineTransform"]) if "affineTransform" in value else None
        width, height = dimensions_from_rest(value["dimensions"]) if "dimensions" in value else (None, None)
        return cls(crs, transform, width, height)

    @property
    def has_transform(self) -> bool:
        return self.transform is not None

    @property
    def has_dimensions(self) -> bool:
        return self.width is not None and self.height is not None

    @property
    def complete(self) -> PixelGrid | None:
        """The full grid when nothing is missing, else None."""
        if self.transform is None or self.width is None or self.height is None:
            return None
        return PixelGrid(self.crs, self.transform, self.width, self.height)

    def lattice(self) -> PixelGrid:
        """A one-pixel grid on this lattice (the identity transform when none was reported)."""
        return PixelGrid(self.crs, self.transform if self.transform is not None else Affine.identity(), 1, 1)


def _scale_pair(
    scale: float | tuple[float, float], name: str = "scale", units: str = "CRS units"
) -> tuple[float, float]:
    """``(x, y)`` pixel sizes from one positive number or a pair (``name``/``units`` word the errors)."""
    if isinstance(scale, (tuple, list)):
        if len(scale) != 2:
            raise InvalidGridError(f"{name} must be a number or an (x, y) pair, got {scale!r}")
        pair = tuple(scale)
    else:
        pair = (scale, scale)
    result = []
    for value in pair:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InvalidGridError(f"{name} must be a positive number of {units} per pixel, got {scale!r}")
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise InvalidGridError(f"{name} must be a positive finite number of {units} per pixel, got {scale!r}")
        result.append(value)
    return result[0], result[1]


def transform_bounds(
    bounds: tuple[float, float, float, float], source_crs: str, target_crs: str, densify: int = 21
) -> tuple[float, float, float, float]:
    """Reproject a bounding box, densifying its edges so curved edges stay inside."""
    if crs_equal(source_crs, target_crs):
        return tuple(float(v) for v in bounds)  # type: ignore[return-value]
    transformer = pyproj.Transformer.from_crs(to_pyproj(source_crs), to_pyproj(target_crs), always_xy=True)
    try:
        result = transformer.transform_bounds(*bounds, densify_pts=densify)
    except pyproj.exceptions.ProjError as error:
        raise InvalidCrsError(f"Cannot transform bounds {bounds} from {source_crs} to {target_crs}: {error}") from None
    if not all(math.isfinite(v) for v in result):
        raise InvalidCrsError(f"Bounds {bounds} have no finite image from {source_crs} in {target_crs}")
    return tuple(float(v) for v in result)  # type: ignore[return-value]
