"""A deterministic synthetic landscape seen by a Sentinel-2-like sensor (package-private).

The demo catalog (:mod:`eexarray.server.demo_catalog`) serves this as imagery; this
module only computes pixels. Everything is numpy and fixed seeds, so every call in
every process gives identical values.

How it works:

* **Static layers** on :data:`GRID` (1536 x 1536 px of 10 m in EPSG:32633), computed
  once on first use and cached (about 1 s, about 35 MB): terrain from fractal value
  noise, a lake and a meandering river in a carved valley, a town of street blocks with
  three roads out of it, forest stands on the hills, floodplain meadows, and a rotated
  patchwork of crop parcels. Every pixel belongs to one *patch* (parcel, stand, block,
  the lake...) with a land-cover class and its own timing, vigour and soil brightness.
* **Phenology**: a patch's green fraction ``g`` at a day of year follows a sum of
  double-logistic seasons per class (winter cereals green up in spring and are
  harvested in July, maize peaks in August, meadows are mown three times, deciduous
  forest is leafless in winter...). A patch's surface reflectance per band is
  ``g * leaves + (1 - g) * background`` (soil, roofs, asphalt, litter or water).
* **Per pixel**: the patch reflectance times a static texture (within-field variation)
  times a small per-date sensor noise (an integer hash of row, column, date and band),
  plus a small seasonal path-radiance offset (strongest in blue).
* **Clouds**: per date, a few textured Gaussian blobs on the 20 m :data:`CLOUD_GRID`
  give a cloud probability (0-100, like Sentinel-2's ``MSK_CLDPRB``). Pixels with a
  probability of at least :data:`CLOUD_THRESHOLD` are masked (missing) in the
  reflectance bands; thinner cloud edges add haze, and cloud shadows, cast along the
  sun's azimuth with a length from the sun elevation of the date, darken the surface.

Every per-pixel step is element-wise over slices of full-grid arrays, so a window read
returns exactly the same values as the same pixels of a full read. Values are identical
from run to run on one platform; across CPUs, ``np.exp`` and the BLAS product summing
the cloud blobs may differ in the last bit, which can in rare cases move a pixel by one
digital number or flip a cloud-edge pixel (the cloud percentage always matches the mask).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from affine import Affine

from eexarray.geometry import PixelGrid, Window

SEED = 20230615

# About 15 x 15 km near 52.5 N 13 E (inside Sentinel-2 tile 33UUU).
GRID = PixelGrid("EPSG:32633", Affine(10.0, 0.0, 360000.0, 0.0, -10.0, 5820000.0), 1536, 1536)
CLOUD_GRID = PixelGrid("EPSG:32633", Affine(20.0, 0.0, 360000.0, 0.0, -20.0, 5820000.0), 768, 768)
SPECTRAL_BANDS = ("B2", "B3", "B4", "B8")
CLOUD_THRESHOLD = 50  # cloud probability (percent) from which a pixel is masked

# Land-cover classes: code -> (name, colour). Codes follow the spirit of ESA WorldCover.
CONIFEROUS_FOREST, DECIDUOUS_FOREST, GRASSLAND = 10, 11, 20
WINTER_CEREAL, SPRING_BARLEY, MAIZE, SUGAR_BEET, RAPESEED = 41, 42, 43, 44, 45
BUILT_UP, ROAD, WATER = 50, 51, 80
LANDCOVER_CLASSES: dict[int, tuple[str, str]] = {
    CONIFEROUS_FOREST: ("coniferous forest", "1b5e20"),
    DECIDUOUS_FOREST: ("deciduous forest", "4caf50"),
    GRASSLAND: ("grassland", "aed581"),
    WINTER_CEREAL: ("winter cereal", "ffd54f"),
    SPRING_BARLEY: ("spring barley", "ffe082"),
    MAIZE: ("maize", "ff9800"),
    SUGAR_BEET: ("sugar beet", "ba68c8"),
    RAPESEED: ("rapeseed", "fff176"),
    BUILT_UP: ("built-up", "e53935"),
    ROAD: ("road", "616161"),
    WATER: ("water", "1e88e5"),
}
CROPS = (WINTER_CEREAL, SPRING_BARLEY, MAIZE, SUGAR_BEET, RAPESEED)

# Reflectance x 10000 for B2, B3, B4, B8.
_LEAVES = np.array([250, 550, 280, 4200], dtype=np.float32)
_NEEDLES = np.array([200, 420, 200, 2800], dtype=np.float32)
_SOIL = np.array([700, 1000, 1300, 1900], dtype=np.float32)
_LITTER = np.array([450, 650, 800, 1500], dtype=np.float32)
_ROOF = np.array([1100, 1200, 1350, 1700], dtype=np.float32)
_ASPHALT = np.array([800, 880, 950, 1150], dtype=np.float32)
_LAKE = np.array([500, 520, 330, 170], dtype=np.float32)
_RIVER = np.array([600, 700, 500, 300], dtype=np.float32)
_CLOUD = np.array([6000, 6000, 6200, 6500], dtype=np.float32)
_SHADOW_FACTOR = np.array([0.55, 0.45, 0.42, 0.38], dtype=np.float32)  # blue keeps most skylight

# Patch id layout: three singletons, then one block of ids per kind of patch.
_LAKE_PATCH, _RIVER_PATCH, _ROAD_PATCH = 0, 1, 2
_STAND, _STANDS = 30, 30  # forest stands of 56 px on a warped lattice
_FOREST_BASE = 16
_BLOCK = 16  # town blocks of 16 px including a 2 px street
_BLOCKS = GRID.width // _BLOCK
_URBAN_BASE = _FOREST_BASE + _STANDS * _STANDS
_FIELD_ROWS, _FIELD_COLS = 52, 30  # parcels on a rotated lattice (ids with a split bit)
_FIELD_BASE = _URBAN_BASE + _BLOCKS * _BLOCKS
_FLOOD_BASE = _FIELD_BASE + _FIELD_ROWS * _FIELD_COLS * 2
PATCH_COUNT = _FLOOD_BASE + _FIELD_ROWS * _FIELD_COLS * 2

T = TypeVar("T")


def _cached(build: Callable[[], T]) -> Callable[[], T]:
    """``build()`` computed once even when several server threads ask at the same time."""
    lock = threading.Lock()
    box: list[T] = []

    def get() -> T:
        with lock:
            if not box:
                box.append(build())
            return box[0]

    get.cache_clear = box.clear  # type: ignore[attr-defined]
    return get


# -- noise ---------------------------------------------------------------------------------
def _value_noise(shape: tuple[int, int], cell: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth noise in [0, 1]: random values on a lattice of ``cell`` px, smoothstep-interpolated."""
    height, width = shape
    lattice = rng.random((int(height / cell) + 3, int(width / cell) + 3), dtype=np.float32)
    offset_row, offset_col = rng.random(2) * cell  # octaves must not share lattice lines

    def axis(size: int, offset: float) -> tuple[np.ndarray, np.ndarray]:
        position = (np.arange(size) + offset) / cell
        index = np.floor(position).astype(np.intp)
        fraction = position - index
        return index, (fraction * fraction * (3 - 2 * fraction)).astype(np.float32)

    row_index, row_weight = axis(height, offset_row)
    col_index, col_weight = axis(width, offset_col)
    rows = lattice[row_index] * (1 - row_weight)[:, None] + lattice[row_index + 1] * row_weight[:, None]
    return rows[:, col_index] * (1 - col_weight) + rows[:, col_index + 1] * col_weight


def _fractal_noise(shape: tuple[int, int], cells: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Octaves of value noise (each half the amplitude of the previous), stretched to [0, 1]."""
    total = np.zeros(shape, dtype=np.float32)
    for octave, cell in enumerate(cells):
        total += _value_noise(shape, cell, rng) * np.float32(0.5**octave)
    low, high = total.min(), total.max()
    return (total - low) / (high - low)


def _segment_distance(rows: np.ndarray, cols: np.ndarray, start: tuple[float, float], stop: tuple[float, float]):
    (r0, c0), (r1, c1) = start, stop
    dr, dc = r1 - r0, c1 - c0
    t = np.clip(((rows - r0) * dr + (cols - c0) * dc) / (dr * dr + dc * dc), 0, 1)
    return np.hypot(rows - (r0 + t * dr), cols - (c0 + t * dc))


# -- static layers ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Static:
    """Full-grid layers that do not change with time."""

    patch: np.ndarray  # int16 patch id per pixel
    texture: np.ndarray  # float32 multiplicative within-patch variation (about 1 +- 6 %)
    elevation: np.ndarray  # float32 metres
    slope: np.ndarray  # float32 degrees
    kind: np.ndarray  # per patch: land-cover code
    shift: np.ndarray  # per patch: phenology shift in days
    vigour: np.ndarray  # per patch: multiplier of the green fraction
    brightness: np.ndarray  # per patch: soil / roof brightness multiplier
    impervious: np.ndarray  # per patch: sealed fraction of a town block


def _build_static() -> Static:
    rng = np.random.default_rng(SEED)
    shape = GRID.shape
    rows = np.arange(shape[0], dtype=np.float32)[:, None]
    cols = np.arange(shape[1], dtype=np.float32)[None, :]

    terrain = _fractal_noise(shape, (480, 240, 120, 60, 30), rng)
    forest_noise = _fractal_noise(shape, (300, 150, 75, 36), rng)
    edge_noise = _fractal_noise(shape, (90, 40), rng)
    warp_rows = (_value_noise(shape, 96, rng) - 0.5) * 50
    warp_cols = (_value_noise(shape, 96, rng) - 0.5) * 50
    texture = 1 + (_fractal_noise(shape, (24, 7, 2.5), rng) - 0.5) * np.float32(0.12)

    # Water: an irregular lake and a river meandering from the north edge through it to the south edge.
    dr, dc = rows - 1040, cols - 430
    lake_metric = ((dr * 0.878 + dc * 0.479) / 150) ** 2 + ((-dr * 0.479 + dc * 0.878) / 235) ** 2
    lake = lake_metric + edge_noise < 1.5
    river_centre = 430 + 120 * np.sin(2 * np.pi * rows / 900 + 0.7) + 35 * np.sin(2 * np.pi * rows / 260 + 2.0)
    river_distance = np.abs(cols - river_centre)
    river = river_distance < 2.2 + 1.6 * rows / shape[0]
    # Town: a noisy disc of street blocks; roads leave it to the south-east, west and north-east.
    town = np.hypot(rows - 430, cols - 1080) < 200 * (0.7 + 0.6 * edge_noise)
    street = town & ((rows % _BLOCK < 2) | (cols % _BLOCK < 2))
    road = street.copy()
    for end in ((1536, 1330), (190, -1), (-1, 1420)):
        road |= _segment_distance(rows, cols, (430, 1080), end) < 1.0
    floodplain = (river_distance < 55) | (lake_metric < 2)
    forest = (0.65 * forest_noise + 0.35 * terrain > 0.66) & ~town & ~floodplain

    # Patches.
    stand = (
        np.clip(np.floor((rows + warp_rows) / 56) + 1, 0, _STANDS - 1) * _STANDS
        + np.clip(np.floor((cols + warp_cols) / 56) + 1, 0, _STANDS - 1)
    ).astype(np.int32)
    block = ((rows // _BLOCK) * _BLOCKS + cols // _BLOCK).astype(np.int32)
    angle = 0.21
    u = cols * math.cos(angle) + rows * math.sin(angle)
    v = rows * math.cos(angle) - cols * math.sin(angle)
    field_row = np.floor(v / 38).astype(np.int32) + 10
    row_offset = rng.random(_FIELD_ROWS).astype(np.float32) * 70
    u_cell = (u + row_offset[field_row]) / 70
    field_col = np.floor(u_cell).astype(np.int32)
    split = rng.random((_FIELD_ROWS, _FIELD_COLS)) < 0.4
    half = split[field_row, field_col] & (u_cell - field_col > 0.5)
    field = (field_row * _FIELD_COLS + field_col) * 2 + half

    patch = np.where(floodplain, _FLOOD_BASE + field, _FIELD_BASE + field)
    patch = np.where(forest, _FOREST_BASE + stand, patch)
    patch = np.where(town, _URBAN_BASE + block, patch)
    patch = np.where(road, _ROAD_PATCH, patch)
    patch = np.where(river, _RIVER_PATCH, patch)
    patch = np.where(lake, _LAKE_PATCH, patch).astype(np.int16)

    # Per-patch attributes.
    kind = np.empty(PATCH_COUNT, dtype=np.uint8)
    kind[:_FOREST_BASE] = ROAD  # ids 3-15 are unused
    kind[[_LAKE_PATCH, _RIVER_PATCH]] = WATER
    kind[_FOREST_BASE:_URBAN_BASE] = np.where(
        rng.random(_URBAN_BASE - _FOREST_BASE) < 0.55, CONIFEROUS_FOREST, DECIDUOUS_FOREST
    )
    kind[_URBAN_BASE:_FIELD_BASE] = np.where(rng.random(_FIELD_BASE - _URBAN_BASE) < 0.12, GRASSLAND, BUILT_UP)
    crop_choices = np.array([*CROPS, GRASSLAND], dtype=np.uint8)
    kind[_FIELD_BASE:_FLOOD_BASE] = rng.choice(
        crop_choices, size=_FLOOD_BASE - _FIELD_BASE, p=[0.34, 0.1, 0.2, 0.09, 0.12, 0.15]
    )
    kind[_FLOOD_BASE:] = GRASSLAND
    shift = rng.uniform(-12, 12, PATCH_COUNT).astype(np.float32)
    vigour = rng.uniform(0.88, 1.06, PATCH_COUNT).astype(np.float32)
    brightness = rng.uniform(0.75, 1.3, PATCH_COUNT).astype(np.float32)
    impervious = rng.uniform(0.5, 0.95, PATCH_COUNT).astype(np.float32)

    # Terrain: gentle hills, a valley along the river, a flat lake surface.
    lake_level = np.float32(38.0)
    elevation = 42 + 95 * terrain - 28 * np.exp(-((river_distance / 140) ** 2)) - lake_level - 0.5
    shore = np.clip((lake_metric + edge_noise - 1.5) / 1.2, 0, 1)  # the land slopes down to the lake
    elevation = np.where(lake, lake_level, lake_level + 0.5 + np.maximum(elevation, 0) * shore).astype(np.float32)
    gradient_rows, gradient_cols = np.gradient(elevation, 10.0)
    slope = np.degrees(np.arctan(np.hypot(gradient_rows, gradient_cols))).astype(np.float32)
    return Static(patch, texture.astype(np.float32), elevation, slope, kind, shift, vigour, brightness, impervious)


static = _cached(_build_static)


# -- phenology -------------------------------------------------------------------------------
def _season(day: np.ndarray, start: float, end: float, rise: float, fall: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(day - start) / rise)) - 1 / (1 + np.exp(-(day - end) / fall))


def _meadow(day: np.ndarray, mown: bool) -> np.ndarray:
    green = 0.45 + 0.42 * _season(day, 80, 300, 12, 15)
    if mown:
        for cut in (145.0, 200.0, 255.0):
            after = np.maximum(day - cut, 0)
            green = green * (1 - 0.45 * np.exp(-after / 14) / (1 + np.exp(-(day - cut) / 1.5)))
    return green


def green_fraction(kind: np.ndarray, day_of_year: float, shift: np.ndarray | float = 0.0) -> np.ndarray:
    """Fraction of green leaves (0-1) of patches of land-cover ``kind`` at a day of year."""
    kind = np.asarray(kind)
    day = np.float64(day_of_year) - np.asarray(shift, dtype=np.float64) + np.zeros(kind.shape)
    curves = {
        WINTER_CEREAL: lambda d: (
            0.04
            + 0.22 * _season(d, -100, 196, 5, 3)
            + 0.66 * _season(d, 85, 178, 10, 9)
            + 0.24 * _season(d, 290, 600, 12, 5)
        ),
        SPRING_BARLEY: lambda d: 0.04 + 0.84 * _season(d, 115, 190, 9, 6),
        MAIZE: lambda d: 0.04 + 0.86 * _season(d, 165, 262, 9, 6),
        SUGAR_BEET: lambda d: 0.04 + 0.86 * _season(d, 150, 285, 10, 8),
        RAPESEED: lambda d: (
            0.04
            + 0.38 * _season(d, -100, 188, 5, 4)
            + 0.5 * _season(d, 70, 160, 9, 8)
            + 0.42 * _season(d, 245, 600, 9, 5)
        ),
        GRASSLAND: lambda d: _meadow(d, mown=True),
        BUILT_UP: lambda d: _meadow(d, mown=False),  # gardens, scaled by the unsealed fraction below
        DECIDUOUS_FOREST: lambda d: 0.3 + 0.6 * _season(d, 118, 292, 6, 8),
        CONIFEROUS_FOREST: lambda d: 0.72 + 0.12 * _season(d, 100, 285, 15, 15),
    }
    green = np.zeros(kind.shape, dtype=np.float64)
    for code, curve in curves.items():
        selected = kind == code
        if selected.any():
            green[selected] = curve(day[selected])
    return green


def patch_reflectance(day_of_year: float) -> np.ndarray:
    """``(PATCH_COUNT, 4)`` float32 surface reflectance x 10000 of every patch at a day of year."""
    layers = static()
    kind = layers.kind
    green = green_fraction(kind, day_of_year, layers.shift) * layers.vigour
    built = kind == BUILT_UP
    green = np.where(built, green * (1 - layers.impervious), green)
    green = np.clip(green, 0, 0.97)[:, None].astype(np.float32)
    moisture = 0.965 - 0.115 * math.cos(2 * math.pi * (day_of_year - 15) / 365)  # wet winter soil is darker
    background = np.empty((PATCH_COUNT, 4), dtype=np.float32)
    background[:] = _SOIL * (layers.brightness[:, None] * np.float32(moisture))
    forest = (kind == CONIFEROUS_FOREST) | (kind == DECIDUOUS_FOREST)
    background[forest] = _LITTER
    background[built] = _ROOF * layers.brightness[built, None]
    background[kind == ROAD] = _ASPHALT
    background[_LAKE_PATCH] = _LAKE
    background[_RIVER_PATCH] = _RIVER
    leaves = np.where((kind == CONIFEROUS_FOREST)[:, None], _NEEDLES, _LEAVES)
    green[kind == WATER] = 0
    green[kind == ROAD] = 0
    return green * leaves + (1 - green) * background


# -- dates, sun and clouds ----------------------------------------------------------------------
# Acquisition dates (every 15 days of 2023, alternating Sentinel-2A/2B like the real 5-day
# revisit) and the cloudiness of each: winter is cloudier; zero means a clear sky.
ACQUISITION_TIME = dt.time(10, 10, 21, tzinfo=dt.timezone.utc)
FIRST_ACQUISITION = dt.date(2023, 1, 3)
ACQUISITION_STEP_DAYS = 15
CLOUDINESS = (
    0.9, 0.3, 0.0, 0.7, 0.2, 0.0, 0.5, 0.1, 0.0, 0.3, 0.0, 0.2, 0.5,
    0.0, 0.1, 0.0, 0.3, 0.0, 0.2, 0.6, 0.0, 0.9, 0.4, 0.0, 0.7,
)  # fmt: skip


def acquisition_times() -> list[dt.datetime]:
    """UTC acquisition time of every date (one per entry of CLOUDINESS)."""
    return [
        dt.datetime.combine(FIRST_ACQUISITION + dt.timedelta(days=ACQUISITION_STEP_DAYS * index), ACQUISITION_TIME)
        for index in range(len(CLOUDINESS))
    ]


def day_of_year(time: dt.datetime) -> float:
    """Fractional day of year (1.0 = 1 January, 00:00)."""
    start = dt.datetime(time.year, 1, 1, tzinfo=time.tzinfo)
    return 1 + (time - start).total_seconds() / 86400


def sun_elevation(day_of_year: float) -> float:
    """Approximate sun elevation (degrees) at the scene at about 10:10 UTC (11:00 local solar time)."""
    declination = 23.44 * math.sin(2 * math.pi * (day_of_year - 80) / 365)
    latitude, hour_angle = math.radians(52.5), math.radians(-15.0)
    decl = math.radians(declination)
    sine = math.sin(latitude) * math.sin(decl) + math.cos(latitude) * math.cos(decl) * math.cos(hour_angle)
    return math.degrees(math.asin(sine))


SUN_AZIMUTH = 160.0  # degrees from north; shadows fall towards 340 (north-north-west)
_CLOUD_MARGIN = 256  # extra 20 m rows/cols south and east: clouds outside the scene cast shadows into it
_TEXTURE_SLACK = 256  # each date uses the shared cloud texture from its own random offset


def _build_cloud_texture() -> np.ndarray:
    size = CLOUD_GRID.width + _CLOUD_MARGIN + _TEXTURE_SLACK
    return _fractal_noise((size, size), (64, 24, 9, 3), np.random.default_rng(SEED + 1))


cloud_texture = _cached(_build_cloud_texture)


@dataclass(frozen=True, eq=False)
class Clouds:
    """Cloud probability (uint8 percent) and cloud shadow (bool) of one date on :data:`CLOUD_GRID`."""

    probability: np.ndarray
    shadow: np.ndarray

    @property
    def cloudy_percentage(self) -> float:
        """Exact percentage of masked pixels (each 20 m pixel covers four 10 m pixels)."""
        return 100.0 * int(np.count_nonzero(self.probability >= CLOUD_THRESHOLD)) / self.probability.size


def make_clouds(index: int, day_of_year: float, cover: float) -> Clouds | None:
    """Clouds of date ``index`` with cloudiness ``cover`` in [0, 1]; None when 0 (a clear sky).

    ``cover`` sets the number, size and density of the cloud blobs; the masked percentage
    grows with it (0.1 -> about 2 %, 0.5 -> about 25 %, 0.9 -> about 75 %).
    """
    if cover <= 0:
        return None
    rng = np.random.default_rng([SEED, index])
    height = CLOUD_GRID.height + _CLOUD_MARGIN
    axis = np.arange(height, dtype=np.float32)[:, None]
    count = 2 + int(cover * 25)
    size = 30 + 80 * cover
    centres = rng.uniform(-60, height + 60, (2, count)).astype(np.float32)
    sigmas = (rng.uniform(0.5, 1.5, (2, count)) * size).astype(np.float32)
    density = rng.uniform(0.7, 1.3, count).astype(np.float32)
    # Gaussian blobs are separable, so their sum is a product of (pixels x blobs) profile matrices.
    row_profiles = np.exp(-0.5 * ((axis - centres[0]) / sigmas[0]) ** 2) * density
    col_profiles = np.exp(-0.5 * ((axis - centres[1]) / sigmas[1]) ** 2)
    field = row_profiles @ col_profiles.T
    offset_row, offset_col = rng.integers(0, _TEXTURE_SLACK, 2)
    texture = cloud_texture()[offset_row : offset_row + height, offset_col : offset_col + height]
    field *= 0.25 + 1.5 * texture
    field *= 110
    probability = np.clip(np.rint(field, out=field), 0, 100, out=field).astype(np.uint8)
    # Shadows: the cloud a shadow length towards the sun shades a pixel (cloud tops at about 1.5 km).
    length = min(1500.0 / math.tan(math.radians(sun_elevation(day_of_year))) / 20, _CLOUD_MARGIN / 1.1)
    shift_row = int(round(-length * math.cos(math.radians(SUN_AZIMUTH))))  # towards the sun: south...
    shift_col = int(round(length * math.sin(math.radians(SUN_AZIMUTH))))  # ...and east
    size_out = CLOUD_GRID.height
    source = probability[shift_row : shift_row + size_out, shift_col : shift_col + size_out]
    visible = probability[:size_out, :size_out]
    shadow = (source >= CLOUD_THRESHOLD - 10) & (visible < CLOUD_THRESHOLD)
    return Clouds(np.ascontiguousarray(visible), shadow)


# -- pixels ---------------------------------------------------------------------------------------
def _sensor_noise(window: Window, index: int, band: int) -> np.ndarray:
    """Per-date, per-band noise in [-1, 1): an integer hash of (row, col, date, band)."""
    rows = np.arange(window.row_start, window.row_stop, dtype=np.uint32)[:, None]
    cols = np.arange(window.col_start, window.col_stop, dtype=np.uint32)[None, :]
    value = rows * np.uint32(73856093) ^ cols * np.uint32(19349663) ^ np.uint32((index * 4 + band) * 83492791 % 2**32)
    value ^= value >> np.uint32(13)
    value *= np.uint32(0x9E3779B1)
    value ^= value >> np.uint32(16)
    return (value >> np.uint32(8)).astype(np.float32) / np.float32(2**23) - 1


def _upsample(layer: np.ndarray, window: Window) -> np.ndarray:
    """A 20 m layer at the 10 m pixels of ``window`` (each 20 m pixel covers 2 x 2 pixels)."""
    rows = np.arange(window.row_start, window.row_stop) // 2
    cols = np.arange(window.col_start, window.col_stop) // 2
    return layer[rows[:, None], cols[None, :]]


def reflectance(
    band: int, window: Window, *, index: int, day_of_year: float, clouds: Clouds | None, table: np.ndarray
) -> np.ma.MaskedArray:
    """uint16 reflectance x 10000 of spectral band ``band`` (index into SPECTRAL_BANDS) in ``window``.

    ``table`` is :func:`patch_reflectance` of the date; cloudy pixels are masked.
    """
    layers = static()
    slices = window.slices()
    values = table[:, band][layers.patch[slices]] * layers.texture[slices]
    values *= 1 + np.float32(0.012) * _sensor_noise(window, index, band)
    values += np.float32(60 + 90 * math.sin(math.pi * day_of_year / 365) ** 2) * np.float32((4 - band) / 4)
    mask = np.zeros(window.shape, dtype=bool)
    if clouds is not None:
        probability = _upsample(clouds.probability, window).astype(np.float32)
        shadow = _upsample(clouds.shadow, window)
        values *= np.where(shadow, _SHADOW_FACTOR[band], np.float32(1))
        haze = np.clip((probability - 25) / (CLOUD_THRESHOLD - 25), 0, 1) * np.float32(0.4)
        values = values * (1 - haze) + haze * _CLOUD[band]
        mask = probability >= CLOUD_THRESHOLD
    # Never 0: Earth Engine encodings write masked pixels as 0, so 0 would look like missing data.
    return np.ma.MaskedArray(np.clip(np.rint(values), 1, 65535).astype(np.uint16), mask)


def landcover(window: Window) -> np.ndarray:
    """uint8 land-cover code (see LANDCOVER_CLASSES) of every pixel in ``window``."""
    layers = static()
    return layers.kind[layers.patch[window.slices()]]


def patch_ids(window: Window) -> np.ndarray:
    """uint16 patch (parcel, stand, block...) id of every pixel in ``window``."""
    return static().patch[window.slices()].astype(np.uint16)
