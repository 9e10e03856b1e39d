"""Geometry and projection helpers of the spatial algorithms (pure numpy/pyproj/shapely).

* Geometries are GeoJSON in EPSG:4326; a pixel belongs to a geometry with area when
  its centre lies inside it (planar in longitude/latitude, as the server's other
  geometry tests), and to a point or line geometry when it contains one of its points
  (lines sampled every quarter pixel).
* ``at_scale`` is Earth Engine's ``Projection.atScale``: the projection's transform
  scaled (about its origin) so that its nominal scale is the given metres; degrees
  convert at the equator (6378137 m sphere), so ``EPSG:4326`` at 10 m has a pixel
  of 8.983152841195215e-05 degrees.
* ``lattice_grid`` is the grid of a lattice (a CRS and an affine) covering a geometry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
import shapely
import shapely.geometry
from affine import Affine

from eexarray.geometry import PixelGrid, Window, to_pyproj
from eexarray.geometry.grid import transform_bounds
from eexarray.server.compute import values as v
from eexarray.server.compute.bands import masked
from eexarray.server.images import BandInfo, ServerImage
from eexarray.server.resample import read_on_grid

EARTH_METRES_PER_DEGREE = 2 * math.pi * 6378137.0 / 360
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
_ROWS_PER_STRIP = 256  # centre tests transform this many rows at a time


def crs_units_per_metre(crs: str) -> float:
    """CRS units in one metre: 1/111319.49 for geographic CRSs (at the equator), else by the axis unit."""
    parsed = pyproj.CRS.from_user_input(to_pyproj(crs))
    if parsed.is_geographic:
        return 1.0 / EARTH_METRES_PER_DEGREE
    axes = parsed.axis_info
    factor = float(axes[0].unit_conversion_factor) if axes and axes[0].unit_conversion_factor else 1.0
    return 1.0 / factor


def nominal_scale(projection: v.Projection) -> float:
    """Metres per pixel of ``projection`` (square root of the pixel area)."""
    a, b, _, d, e, _ = projection.transform
    return math.sqrt(abs(a * e - b * d)) / crs_units_per_metre(projection.crs)


def at_scale(projection: v.Projection, metres: float) -> v.Projection:
    """``projection`` scaled about its origin so that one pixel is ``metres`` (Projection.atScale)."""
    factor = metres / nominal_scale(projection)
    scaled = Affine(*projection.transform) * Affine.scale(factor)
    return v.Projection(projection.crs, (scaled.a, scaled.b, scaled.c, scaled.d, scaled.e, scaled.f))


def band_projection(band: v.Band) -> v.Projection:
    """A band's default projection; Earth Engine's EPSG:4326 at 1 degree for bands without a grid."""
    if band.projection is not None:
        return band.projection
    if band.grid is None:
        return v.Projection("EPSG:4326", IDENTITY)
    t = band.grid.transform
    return v.Projection(band.grid.crs, (t.a, t.b, t.c, t.d, t.e, t.f))


def north_up(transform: Sequence[float]) -> Affine:
    """The same axis-aligned lattice with a negative y scale (the row direction our grids use)."""
    a, b, c, d, e, f = transform
    if b != 0 or d != 0:
        raise ValueError(f"Only axis-aligned transforms are supported here, got {list(transform)}")
    return Affine(abs(a), 0.0, c, 0.0, -abs(e), f)


def shape_of(geojson: dict[str, Any]) -> shapely.Geometry:
    """The shapely geometry of a GeoJSON geometry (EPSG:4326)."""
    return shapely.geometry.shape(geojson)


def lattice_grid(crs: str, lattice: Affine, geometry: shapely.Geometry) -> PixelGrid:
    """The window of the lattice covering the geometry's bounding box (transformed to ``crs``)."""
    west, south, east, north = geometry.bounds
    if west == east or south == north:  # a point or a straight line: still covered by a pixel
        pad = 1e-9
        west, south, east, north = west - pad, south - pad, east + pad, north + pad
    bounds = transform_bounds((west, south, east, north), "EPSG:4326", crs)
    window = PixelGrid(crs, lattice, 1, 1).window_covering(bounds)
    return PixelGrid(crs, lattice * Affine.translation(window.col_start, window.row_start), window.width, window.height)


def inside(geometry: shapely.Geometry, grid: PixelGrid) -> np.ndarray:
    """True for the pixels of ``grid`` that belong to ``geometry`` (centre inside; crossed for no area)."""
    if geometry.area == 0:
        return _crossed(geometry, grid)
    result = np.zeros(grid.shape, bool)
    transformer = pyproj.Transformer.from_crs(to_pyproj(grid.crs), "EPSG:4326", always_xy=True)
    shapely.prepare(geometry)
    boundary = geometry.boundary
    t = grid.transform
    cols = np.arange(grid.width, dtype="float64") + 0.5
    for start in range(0, grid.height, _ROWS_PER_STRIP):
        rows = np.arange(start, min(start + _ROWS_PER_STRIP, grid.height), dtype="float64") + 0.5
        col_grid, row_grid = np.meshgrid(cols, rows)
        xs, ys = transformer.transform(t.a * col_grid + t.b * row_grid + t.c, t.d * col_grid + t.e * row_grid + t.f)
        strip = shapely.contains_xy(geometry, xs, ys) | shapely.intersects_xy(boundary, xs, ys)
        result[start : start + len(rows)] = strip
    return result


def _crossed(geometry: shapely.Geometry, grid: PixelGrid) -> np.ndarray:
    """Pixels containing a point of a point or line geometry (lines sampled every 1/4 pixel)."""
    transformer = pyproj.Transformer.from_crs("EPSG:4326", to_pyproj(grid.crs), always_xy=True)
    inverse = ~grid.transform

    def to_pixels(xy: np.ndarray) -> np.ndarray:
        xs, ys = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack(inverse * (np.asarray(xs), np.asarray(ys)))

    in_pixels = shapely.segmentize(shapely.transform(geometry, to_pixels), 0.25)
    points = shapely.get_coordinates(in_pixels)
    result = np.zeros(grid.shape, bool)
    finite = np.isfinite(points).all(axis=1)
    cols, rows = np.floor(points[finite, 0]).astype("int64"), np.floor(points[finite, 1]).astype("int64")
    ok = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    result[rows[ok], cols[ok]] = True
    return result


class _IndexProbe(ServerImage):
    """A one-band image on ``grid`` whose pixel values are their flat indices (exact in float64)."""

    def __init__(self, grid: PixelGrid):
        self.asset_id = "<index>"
        self.bands = (BandInfo("index", "float64", grid),)
        self.start_time = self.end_time = None
        self.properties = {}
        self._width = grid.width

    def read_band(self, band_index: int, window: Window) -> np.ma.MaskedArray:
        rows = np.arange(window.row_start, window.row_stop, dtype="float64")[:, None]
        cols = np.arange(window.col_start, window.col_stop, dtype="float64")[None, :]
        return masked(rows * self._width + cols)

    def sample_band(self, band_index: int, rows: np.ndarray, cols: np.ndarray) -> np.ma.MaskedArray:
        return masked((np.asarray(rows) * self._width + np.asarray(cols)).astype("float64"))


@dataclass(frozen=True, eq=False)
class ReprojectedSource:
    """``inner`` computed on a fixed lattice, then sampled (nearest) onto any requested grid.

    A request aligned with the lattice is a window of it, so values are bit-exact.
    """

    inner: Any  # bands.BandSource
    crs: str
    lattice: Affine

    def read(self, grid: PixelGrid) -> np.ma.MaskedArray:
        bounds = transform_bounds(grid.bounds, grid.crs, self.crs)
        window = PixelGrid(self.crs, self.lattice, 1, 1).window_covering(bounds)
        # One pixel more on each side: nearest sampling of a rotated/reprojected edge may reach it.
        window = Window(window.row_start - 1, window.row_stop + 1, window.col_start - 1, window.col_stop + 1)
        computed_grid = PixelGrid(
            self.crs, self.lattice * Affine.translation(window.col_start, window.row_start), window.width, window.height
        )
        computed = self.inner.read(computed_grid)
        indices = read_on_grid(_IndexProbe(computed_grid), [0], grid)[0]
        outside = np.ma.getmaskarray(indices)
        flat = np.where(outside, 0, np.ma.getdata(indices)).astype("int64")
        values = np.ma.getdata(computed).ravel()[flat]
        mask = outside | np.ma.getmaskarray(computed).ravel()[flat]
        return masked(values, mask)


class _ComputedWindow(ServerImage):
    """Pixels already computed on a window of a band's native lattice, as a one-band image."""

    def __init__(self, grid: PixelGrid, pixels: np.ma.MaskedArray):
        self.asset_id = "<computed>"
        self.bands = (BandInfo("computed", np.dtype(pixels.dtype).name, grid),)
        self.start_time = self.end_time = None
        self.properties = {}
        self._pixels = pixels

    def read_band(self, band_index: int, window: Window) -> np.ma.MaskedArray:
        return masked(np.ma.getdata(self._pixels)[window.slices()], np.ma.getmaskarray(self._pixels)[window.slices()])


@dataclass(frozen=True, eq=False)
class ResampledSource:
    """``Image.resample`` of a computed band with a default grid: ``inner`` computed on its native
    lattice (the window under the request, 2 pixels more a side for the bicubic taps), then
    interpolated onto the requested grid. A request aligned with the lattice is a window of it."""

    inner: Any  # bands.BandSource
    native: PixelGrid
    mode: str

    def read(self, grid: PixelGrid) -> np.ma.MaskedArray:
        if grid.offset_in(self.native) is not None:
            return self.inner.read(grid)
        bounds = transform_bounds(grid.bounds, grid.crs, self.native.crs)
        window = self.native.window_covering(bounds)
        window = Window(window.row_start - 2, window.row_stop + 2, window.col_start - 2, window.col_stop + 2)
        lattice = PixelGrid(
            self.native.crs,
            self.native.transform * Affine.translation(window.col_start, window.row_start),
            window.width,
            window.height,
        )
        computed = self.inner.read(lattice)
        return read_on_grid(_ComputedWindow(lattice, computed), [0], grid, self.mode)[0]
