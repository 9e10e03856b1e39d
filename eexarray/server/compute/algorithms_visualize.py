"""``Image.visualize``: what ``ee.Image.getThumbURL`` / ``getMapId`` wrap an image in.

The rendering is getPixels' ``visualizationOptions`` rendering (``eexarray.server.visualize``):
``min``/``max`` (or ``gain``/``bias``: ``value * gain + bias`` on 0..255, the same
range), ``gamma``, ``palette``, ``opacity``. The result has uint8 bands ``vis-red``,
``vis-green``, ``vis-blue`` (``vis-gray`` for one band without a palette unless
``forceRgbOutput``); masked pixels stay masked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from eexarray.server.compute import values as v
from eexarray.server.compute.algorithms_image import IMAGE, select_positions
from eexarray.server.compute.bands import map_sources, masked
from eexarray.server.compute.pixeltype import PixelType
from eexarray.server.compute.registry import Call, algorithm, opt
from eexarray.server.errors import ApiError
from eexarray.server.visualize import VIS_BAND_IDS, VisualizationOptions, check_band_count, parse_color, visualize

UINT8 = PixelType("int", 0, 255)


def _numbers(call: Call, name: str, count: int) -> list[float] | None:
    """A number, a list of numbers or comma-separated text, as ``count`` numbers (one repeats)."""
    value = call.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = [float(part) for part in value.split(",")]
        except ValueError:
            raise call.error(f"{name} must be numbers, got {value!r}.") from None
    if not isinstance(value, list):
        value = [value]
    if not value or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        raise call.error(f"{name} must be a number or a list of numbers, got {call.get(name)!r}.")
    if len(value) not in (1, count):
        raise call.error(f"{name} has {len(value)} values for {count} bands: give 1 or {count}.")
    return [float(x) for x in value] * (count if len(value) == 1 else 1)


def _band_names(call: Call) -> list[Any] | None:
    value = call.get("bands")
    if value is None:
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(",")]
    if isinstance(value, list):
        return value
    raise call.error(f"bands must be a list of band names or comma-separated text, got {value!r}.")


def _options(call: Call, count: int) -> VisualizationOptions:
    low, high = _numbers(call, "min", count), _numbers(call, "max", count)
    gain, bias = _numbers(call, "gain", count), _numbers(call, "bias", count)
    if (gain is not None or bias is not None) and (low is not None or high is not None):
        raise call.error("Give either min/max or gain/bias, not both.")
    ranges: tuple[tuple[float, float], ...] = ()
    if gain is not None or bias is not None:
        gains, biases = gain or [1.0] * count, bias or [0.0] * count
        if any(g == 0 for g in gains):
            raise call.error("gain must not be 0.")
        ranges = tuple((-b / g, (255 - b) / g) for g, b in zip(gains, biases))  # value*gain+bias in 0..255
    elif low is not None or high is not None:
        ranges = tuple(zip(low or [0.0] * count, high or [1.0] * count))
    gammas = _numbers(call, "gamma", count)
    if gammas is not None and (len(set(gammas)) != 1 or gammas[0] <= 0):
        raise call.error(f"gamma must be one positive number for all bands here, got {gammas}.")
    palette_value = call.get("palette")
    if isinstance(palette_value, str):
        palette_value = [part.strip() for part in palette_value.split(",")]
    if palette_value is not None and not isinstance(palette_value, list):
        raise call.error(f"palette must be a list of colours or comma-separated text, got {palette_value!r}.")
    opacity = 1.0 if call.get("opacity") is None else call.finite("opacity")
    if not 0 <= opacity <= 1:
        raise call.error(f"opacity must be between 0 and 1, got {opacity}.")
    try:
        palette = tuple(parse_color(color) for color in palette_value or [])
        options = VisualizationOptions(ranges, palette, gammas[0] if gammas else 1.0, opacity)
        check_band_count(options, count)
    except ApiError as error:
        raise call.error(error.message) from None
    return options


def _channel(options: VisualizationOptions, index: int) -> Callable[..., np.ma.MaskedArray]:
    def render(*bands: np.ma.MaskedArray) -> np.ma.MaskedArray:
        channels, alpha = visualize(list(bands), options)
        return masked(channels[index], alpha == 0)

    return render


@algorithm(
    "Image.visualize",
    IMAGE,
    "An 8-bit RGB (or grey) rendering of 1 or 3 bands by min/max or gain/bias, gamma, palette and opacity.",
    ("image", IMAGE),
    opt("bands", "Object"),
    opt("gain", "Object"),
    opt("bias", "Object"),
    opt("min", "Object"),
    opt("max", "Object"),
    opt("gamma", "Object"),
    opt("opacity", "Number"),
    opt("palette", "Object"),
    opt("forceRgbOutput", "Boolean", "", False),
)
def _visualize(call: Call) -> v.Image:
    image = call.image("image")
    names = _band_names(call)
    chosen = [image.bands[i] for i in select_positions(call, image, names, "bands")] if names else list(image.bands)
    options = _options(call, len(chosen))
    sources = [band.source for band in chosen]
    grid = chosen[0].grid
    if len(chosen) == 1 and not options.palette and not call.boolean("forceRgbOutput"):
        return image.with_bands([v.Band("vis-gray", UINT8, map_sources(_channel(options, 0), *sources), grid)])
    bands = [
        v.Band(name, UINT8, map_sources(_channel(options, i), *sources), grid) for i, name in enumerate(VIS_BAND_IDS)
    ]
    return image.with_bands(bands)
