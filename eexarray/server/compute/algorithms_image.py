"""Image algorithms that build or rearrange bands: load, constant, select, rename, addBands, masks."""

from __future__ import annotations

import re
from typing import Any, Protocol

import numpy as np

from eexarray.server.compute import values as v
from eexarray.server.compute.assets import load_image
from eexarray.server.compute.bands import ClipSource, map_sources, masked
from eexarray.server.compute.pixeltype import PixelType, union
from eexarray.server.compute.registry import Call, algorithm, constant_image, opt

IMAGE = "Image<unknown bands>"


@algorithm("Image.load", IMAGE, "Loads an image by its asset id.",
           ("id", "String", "The asset id of the image."),
           opt("version", "Long", "The version of the asset; -1 means the latest.", -1))  # fmt: skip
def _load(call: Call) -> v.Image:
    return load_image(call.evaluator.catalog, call.string("id"))


@algorithm("Image.constant", IMAGE, "An image of a constant value (or one band per value of a list).",
           ("value", "Object", "A number or a list of numbers."))  # fmt: skip
def _constant(call: Call) -> v.Image:
    value = call.get("value")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return constant_image(value)
    numbers = isinstance(value, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
    if numbers and value:
        bands = [constant_image(x, f"constant_{i}").bands[0] for i, x in enumerate(value)]
        return v.Image(tuple(bands))
    raise call.error(f"value must be a number or a non-empty list of numbers, got {v.type_name(value)} {value!r}")


class ErrorSource(Protocol):
    """Anything that makes a 400 naming its context (a Call, or an expression being parsed)."""

    def error(self, message: str) -> Exception: ...


def select_positions(call: ErrorSource, image: v.Image, selectors: list[Any], argument: str) -> list[int]:
    """Band positions chosen by names, RE2-style full-match regexes or indices, in selector order."""
    names = image.band_names
    positions: list[int] = []
    for selector in selectors:
        if isinstance(selector, (int, float)) and not isinstance(selector, bool):
            if int(selector) != selector or not 0 <= int(selector) < len(names):
                raise call.error(f"Band index {selector!r} is out of range: the image has bands {names}.")
            positions.append(int(selector))
            continue
        if not isinstance(selector, str):
            raise call.error(f"{argument} must hold band names, regexes or indices, got {v.type_name(selector)}.")
        try:
            pattern = re.compile(selector)
        except re.error as problem:
            raise call.error(f"Invalid band pattern '{selector}': {problem}") from None
        matched = [i for i, name in enumerate(names) if name == selector or pattern.fullmatch(name)]
        if not matched:
            raise call.error(f"Pattern '{selector}' did not match any bands. Available bands: {names}")
        positions.extend(matched)
    return positions


@algorithm("Image.select", IMAGE, "Selects bands by name, regex or index, optionally renaming them.",
           ("input", IMAGE, "The image to select bands from."),
           ("bandSelectors", "List<Object>", "Band names, regexes or indices."),
           opt("newNames", "List<String>", "New names for the selected bands."))  # fmt: skip
def _select(call: Call) -> v.Image:
    image = call.image("input")
    positions = select_positions(call, image, call.sequence("bandSelectors"), "bandSelectors")
    bands = [image.bands[i] for i in positions]
    new_names = call.optional_string_list("newNames")
    if new_names is not None:
        if len(new_names) != len(bands):
            raise call.error(f"newNames has {len(new_names)} names for {len(bands)} selected bands.")
        bands = [band.renamed(name) for band, name in zip(bands, new_names)]
    return image.with_bands(bands)


@algorithm("Image.rename", IMAGE, "Renames the bands of an image.",
           ("input", IMAGE, "The image whose bands to rename."),
           ("names", "List<String>", "New names, one per band."))  # fmt: skip
def _rename(call: Call) -> v.Image:
    image = call.image("input")
    names = call.string_list("names")
    if len(names) != len(image.bands):
        raise call.error(f"names has {len(names)} names for an image of {len(image.bands)} bands {image.band_names}.")
    return image.with_bands([band.renamed(name) for band, name in zip(image.bands, names)])


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name_1``, ``name_2``... (the first not taken), as Image.addBands renames."""
    if name not in taken:
        return name
    suffix = 1
    while f"{name}_{suffix}" in taken:
        suffix += 1
    return f"{name}_{suffix}"


@algorithm("Image.addBands", IMAGE, "Bands of dstImg followed by (selected) bands of srcImg.",
           ("dstImg", IMAGE, "The image to add bands to; its properties are kept."),
           ("srcImg", IMAGE, "The image to copy bands from."),
           opt("names", "List<String>", "Bands of srcImg to copy (default all)."),
           opt("overwrite", "Boolean", "Replace bands of dstImg with the same name (else rename with _1, _2...).",
               False))  # fmt: skip
def _add_bands(call: Call) -> v.Image:
    destination, source = call.image("dstImg"), call.image("srcImg")
    names = call.optional_string_list("names")
    added = list(source.bands)
    if names is not None:
        added = [source.bands[i] for i in select_positions(call, source, list(names), "names")]
    bands = list(destination.bands)
    overwrite = call.boolean("overwrite")
    for band in added:
        existing = [i for i, kept in enumerate(bands) if kept.id == band.id]
        if existing and overwrite:
            bands[existing[0]] = band  # replaced in place
        else:
            bands.append(band.renamed(unique_name(band.id, {kept.id for kept in bands})))
    return destination.with_bands(bands)


@algorithm("Image.bandNames", "List<String>", "The names of the bands of an image.", ("image", IMAGE))
def _band_names(call: Call) -> list[str]:
    return call.image("image").band_names


@algorithm("Image.bandTypes", "Dictionary<Object>", "The PixelType of each band, by band name.", ("image", IMAGE))
def _band_types(call: Call) -> dict[str, Any]:
    return {band.id: band.pixel_type for band in call.image("image").bands}


def paired(call: Call, first: v.Image, second: v.Image, what: str) -> list[tuple[v.Band, v.Band]]:
    """Band pairs of two images: one band against all, or pairwise when the counts are equal."""
    if len(second.bands) == 1:
        return [(band, second.bands[0]) for band in first.bands]
    if len(first.bands) == 1:
        return [(first.bands[0], band) for band in second.bands]
    if len(first.bands) == len(second.bands):
        return list(zip(first.bands, second.bands))
    raise call.error(
        f"{what} must have 1 band or as many bands as the image ({len(first.bands)}); got {len(second.bands)}."
    )


def applied(call: Call, image: v.Image, other: v.Image, what: str) -> list[tuple[v.Band, v.Band]]:
    """Each band of ``image`` with its band of ``other``: a 1-band ``other`` applies to all bands."""
    if len(other.bands) == 1:
        return [(band, other.bands[0]) for band in image.bands]
    if len(other.bands) == len(image.bands):
        return list(zip(image.bands, other.bands))
    raise call.error(f"{what} must have 1 band or as many as the image ({len(image.bands)}); got {len(other.bands)}.")


def _update_mask(image: np.ma.MaskedArray, mask: np.ma.MaskedArray) -> np.ma.MaskedArray:
    invalid = np.ma.getmaskarray(image) | np.ma.getmaskarray(mask) | (np.ma.getdata(mask) == 0)
    return masked(np.ma.getdata(image), invalid)


def _replace_mask(image: np.ma.MaskedArray, mask: np.ma.MaskedArray) -> np.ma.MaskedArray:
    return masked(np.ma.getdata(image), np.ma.getmaskarray(mask) | (np.ma.getdata(mask) == 0))


@algorithm("Image.updateMask", IMAGE, "Masks pixels where the mask image is 0 or masked; keeps existing masks.",
           ("image", IMAGE), ("mask", IMAGE, "One band for all bands, or one per band."))  # fmt: skip
def _update_mask_algorithm(call: Call) -> v.Image:
    image = call.image("image")
    pairs = applied(call, image, call.image("mask"), "The mask")
    return image.with_bands(
        [v.Band(b.id, b.pixel_type, map_sources(_update_mask, b.source, m.source), b.grid) for b, m in pairs]
    )


def _mask_of(band: np.ma.MaskedArray) -> np.ma.MaskedArray:
    return masked((~np.ma.getmaskarray(band)).astype("uint8"))


@algorithm("Image.mask", IMAGE, "Without mask: the mask of the image (1 valid, 0 masked). With mask: sets it.",
           ("image", IMAGE), opt("mask", IMAGE))  # fmt: skip
def _mask(call: Call) -> v.Image:
    image = call.image("image")
    if call.get("mask") is None:
        return image.with_bands([v.Band(b.id, PixelType("int", 0, 1), map_sources(_mask_of, b.source), b.grid)
                                 for b in image.bands])  # fmt: skip
    pairs = applied(call, image, call.image("mask"), "The mask")
    return image.with_bands(
        [v.Band(b.id, b.pixel_type, map_sources(_replace_mask, b.source, m.source), b.grid) for b, m in pairs]
    )


def _unmasker(dtype: np.dtype) -> Any:
    def fill(image: np.ma.MaskedArray, value: np.ma.MaskedArray) -> np.ma.MaskedArray:
        missing = np.ma.getmaskarray(image)
        values = np.where(missing, np.ma.getdata(value).astype(dtype), np.ma.getdata(image).astype(dtype))
        mask = missing & np.ma.getmaskarray(value)
        return masked(values, mask)

    return fill


@algorithm("Image.unmask", IMAGE, "Fills masked pixels with the value image (default 0).",
           ("input", IMAGE), opt("value", IMAGE, "The fill (an image or a number); default 0."),
           opt("sameFootprint", "Boolean", "Keep pixels outside the input's footprint masked.", True))  # fmt: skip
def _unmask(call: Call) -> v.Image:
    image = call.image("input")
    value = constant_image(0) if call.get("value") is None else call.image("value")
    same_footprint = call.boolean("sameFootprint")
    bands = []
    for band, fill in applied(call, image, value, "The value image"):
        pixel_type = union(band.pixel_type, fill.pixel_type)
        source: Any = map_sources(_unmasker(pixel_type.dtype), band.source, fill.source)
        if same_footprint and band.grid is not None:
            source = ClipSource(source, band.grid)
        bands.append(v.Band(band.id, pixel_type, source, band.grid))
    return image.with_bands(bands)


@algorithm("Image.normalizedDifference", IMAGE,
           "(first - second) / (first + second) as float32 band 'nd'; negative inputs are masked.",
           ("input", IMAGE),
           opt("bandNames", "List<String>", "Two band names; default the first two bands."))  # fmt: skip
def _normalized_difference(call: Call) -> v.Image:
    image = call.image("input")
    names = call.optional_string_list("bandNames")
    if names is None:
        if len(image.bands) < 2:
            raise call.error(f"The image needs at least 2 bands, got {image.band_names}.")
        first, second = image.bands[0], image.bands[1]
    else:
        if len(names) != 2:
            raise call.error(f"bandNames must name exactly 2 bands, got {names}.")
        first, second = (image.bands[select_positions(call, image, [name], "bandNames")[0]] for name in names)
    return v.Image((v.Band("nd", PixelType("float"), map_sources(_nd, first.source, second.source), first.grid),))


def _nd(first: np.ma.MaskedArray, second: np.ma.MaskedArray) -> np.ma.MaskedArray:
    a = np.ma.getdata(first).astype("float64")
    b = np.ma.getdata(second).astype("float64")
    total = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.where(total == 0, 0.0, (a - b) / np.where(total == 0, 1.0, total))
    mask = np.ma.getmaskarray(first) | np.ma.getmaskarray(second) | (a < 0) | (b < 0)
    return masked(result.astype("float32"), mask)
