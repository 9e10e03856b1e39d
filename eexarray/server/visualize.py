"""VisualizationOptions: band values -> 8-bit RGB(A), the way Earth Engine renders them.

For each band ``v -> clip((v - min) / (max - min), 0, 1) ** (1 / gamma)``; one range
applies to every band, or one range per band. Without ranges the range is the
band type's (0..1 for floats). With ``paletteColors`` (one band only) the normalised
value picks a colour, interpolating linearly between neighbours; otherwise one band
is grey and three bands are red, green and blue. Output = ``round(255 * value)``.
Masked pixels get alpha 0 (PNG) and colour 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eexarray.server.errors import invalid_argument

VIS_KEYS = ("ranges", "paletteColors", "gamma", "opacity")
VIS_BAND_IDS = ("vis-red", "vis-green", "vis-blue")

_NAMED_COLORS = {
    "black": "000000", "white": "ffffff", "red": "ff0000", "green": "008000", "lime": "00ff00",
    "blue": "0000ff", "yellow": "ffff00", "cyan": "00ffff", "magenta": "ff00ff", "gray": "808080",
    "grey": "808080", "orange": "ffa500", "purple": "800080", "brown": "a52a2a", "darkgreen": "006400",
}  # fmt: skip


@dataclass(frozen=True)
class VisualizationOptions:
    ranges: tuple[tuple[float, float], ...] = ()
    palette: tuple[tuple[int, int, int], ...] = ()
    gamma: float = 1.0
    opacity: float = 1.0


def _number(value: Any, what: str) -> float:
    if isinstance(value, dict) and set(value) <= {"value", "constant"} and len(value) == 1:
        value = next(iter(value.values()))
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise invalid_argument(f"visualizationOptions.{what} must be a finite number, got {value!r}")
    return float(value)


def parse_color(text: Any) -> tuple[int, int, int]:
    if not isinstance(text, str):
        raise invalid_argument(f"A palette color must be a string such as 'ff0000', got {text!r}")
    value = _NAMED_COLORS.get(text.strip().lower(), text.strip().lstrip("#"))
    if len(value) == 3:
        value = "".join(character * 2 for character in value)
    if len(value) == 8:  # RRGGBBAA: the alpha is ignored
        value = value[:6]
    try:
        if len(value) != 6:
            raise ValueError
        return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))
    except ValueError:
        raise invalid_argument(
            f"Invalid palette color {text!r}: expected RGB hex such as 'ff0000' or a CSS color name"
        ) from None


def parse_visualization(value: Any) -> VisualizationOptions:
    if not isinstance(value, dict):
        raise invalid_argument(f"visualizationOptions must be an object with keys {VIS_KEYS}, got {value!r}")
    unknown = set(value) - set(VIS_KEYS)
    if unknown:
        raise invalid_argument(
            f"Invalid JSON payload received. Unknown name \"{min(unknown)}\" at 'visualization_options': "
            "Cannot find field."
        )
    ranges = []
    raw_ranges = value.get("ranges", [])
    if not isinstance(raw_ranges, list):
        raise invalid_argument(f"visualizationOptions.ranges must be a list of {{min, max}}, got {raw_ranges!r}")
    for index, item in enumerate(raw_ranges):
        if not isinstance(item, dict) or set(item) - {"min", "max"}:
            raise invalid_argument(f"visualizationOptions.ranges[{index}] must be {{'min': x, 'max': y}}, got {item!r}")
        ranges.append(
            (_number(item.get("min", 0), f"ranges[{index}].min"), _number(item.get("max", 0), f"ranges[{index}].max"))
        )
    palette = value.get("paletteColors", [])
    if not isinstance(palette, list):
        raise invalid_argument(f"visualizationOptions.paletteColors must be a list of colors, got {palette!r}")
    gamma = _number(value.get("gamma", 1.0), "gamma")
    if gamma <= 0:
        raise invalid_argument(f"visualizationOptions.gamma must be positive, got {gamma}")
    opacity = _number(value.get("opacity", 1.0), "opacity")
    if not 0 <= opacity <= 1:
        raise invalid_argument(f"visualizationOptions.opacity must be between 0 and 1, got {opacity}")
    return VisualizationOptions(tuple(ranges), tuple(parse_color(color) for color in palette), gamma, opacity)


def check_band_count(options: VisualizationOptions, count: int) -> None:
    if options.palette and count != 1:
        raise invalid_argument(f"paletteColors can only be used with a single band, got {count} bands")
    if count not in (1, 3):
        raise invalid_argument(f"A visualization needs 1 or 3 bands, got {count}: select bands with bandIds")
    if options.ranges and len(options.ranges) not in (1, count):
        raise invalid_argument(
            f"visualizationOptions.ranges has {len(options.ranges)} ranges for {count} bands: give 1 or {count}"
        )


def _default_range(dtype: np.dtype) -> tuple[float, float]:
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return (float(info.min), float(info.max))
    return (0.0, 1.0)


def visualize(bands: Sequence[np.ma.MaskedArray], options: VisualizationOptions) -> tuple[list[np.ndarray], np.ndarray]:
    """``([red, green, blue] uint8 arrays, alpha uint8 array)`` of 1 or 3 bands."""
    check_band_count(options, len(bands))
    normalised = []
    for index, band in enumerate(bands):
        low, high = (
            options.ranges[index if len(options.ranges) > 1 else 0] if options.ranges else _default_range(band.dtype)
        )
        values = np.ma.getdata(band).astype("float64")
        span = high - low
        scaled = (values - low) / span if span != 0 else (values >= high).astype("float64")
        scaled = np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 1.0)
        if options.gamma != 1.0:
            scaled = scaled ** (1.0 / options.gamma)
        normalised.append(scaled)
    mask = np.zeros(bands[0].shape, dtype=bool)
    for band in bands:
        mask |= np.ma.getmaskarray(band)
    if options.palette:
        channels = _apply_palette(normalised[0], options.palette)
    elif len(normalised) == 1:
        grey = np.rint(normalised[0] * 255).astype("uint8")
        channels = [grey, grey.copy(), grey.copy()]
    else:
        channels = [np.rint(channel * 255).astype("uint8") for channel in normalised]
    for channel in channels:
        channel[mask] = 0
    alpha = np.where(mask, 0, round(255 * options.opacity)).astype("uint8")
    return channels, alpha


def _apply_palette(values: np.ndarray, palette: Sequence[tuple[int, int, int]]) -> list[np.ndarray]:
    colors = np.asarray(palette, dtype="float64")
    if len(colors) == 1:
        return [np.full(values.shape, int(colors[0, c]), dtype="uint8") for c in range(3)]
    position = values * (len(colors) - 1)
    lower = np.minimum(np.floor(position).astype("int64"), len(colors) - 2)
    fraction = position - lower
    return [
        np.rint(colors[lower, c] * (1 - fraction) + colors[lower + 1, c] * fraction).astype("uint8") for c in range(3)
    ]
