"""The values an expression evaluates to.

Plain JSON values (numbers, strings, booleans, None, lists, dicts) stand for
themselves. Everything else is one of the frozen classes below. Images and
collections are metadata plus lazy band sources (``bands.BandSource``): evaluating
an expression never reads pixels; computePixels does, on the grid it is asked for.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eexarray.geometry import PixelGrid
from eexarray.server.compute.bands import BandSource
from eexarray.server.compute.pixeltype import PixelType
from eexarray.server.errors import invalid_argument

SYSTEM_PREFIX = "system:"


@dataclass(frozen=True, eq=False)
class Band:
    """One band: id, pixel type, lazy pixels and its default grid.

    ``grid`` is the band's native grid (its default projection and footprint); None
    for composites and constants, which, as in Earth Engine, have no fixed grid
    (their getInfo reports EPSG:4326 at 1 degree).
    """

    id: str
    pixel_type: PixelType
    source: BandSource
    grid: PixelGrid | None
    # The default projection when its transform is not the grid's (Image.reproject with a
    # crsTransform whose origin lies outside the footprint): Image.projection reports it.
    projection: Projection | None = None

    def renamed(self, name: str) -> Band:
        return Band(name, self.pixel_type, self.source, self.grid, self.projection)


@dataclass(frozen=True, eq=False)
class Image:
    bands: tuple[Band, ...]
    properties: Mapping[str, Any] = field(default_factory=dict)
    asset_id: str | None = None  # short id of a stored image ("id" in getInfo)
    version: int | None = None

    def __post_init__(self) -> None:
        names = [band.id for band in self.bands]
        if len(set(names)) != len(names):
            duplicates = sorted(name for name, count in collections.Counter(names).items() if count > 1)
            raise invalid_argument(f"Image band names must be unique; {duplicates} appear more than once in {names}")

    @property
    def band_names(self) -> list[str]:
        return [band.id for band in self.bands]

    def with_bands(self, bands: list[Band] | tuple[Band, ...], keep_properties: bool = True) -> Image:
        if keep_properties:
            return Image(tuple(bands), self.properties, self.asset_id, self.version)
        return Image(tuple(bands))

    def with_properties(self, properties: Mapping[str, Any]) -> Image:
        return Image(self.bands, properties, self.asset_id, self.version)


@dataclass(frozen=True, eq=False)
class Collection:
    images: tuple[Image, ...]
    properties: Mapping[str, Any] = field(default_factory=dict)
    asset_id: str | None = None
    version: int | None = None

    def with_images(self, images: list[Image] | tuple[Image, ...]) -> Collection:
        return Collection(tuple(images), self.properties, self.asset_id, self.version)

    @property
    def elements(self) -> tuple[Image, ...]:
        return self.images

    def with_elements(self, elements: Any) -> Collection:
        return self.with_images(elements)


@dataclass(frozen=True)
class Date:
    millis: int

    @property
    def datetime(self) -> dt.datetime:
        return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=self.millis)


@dataclass(frozen=True)
class DateRange:
    start: int  # milliseconds, inclusive
    end: int  # milliseconds, exclusive


@dataclass(frozen=True, eq=False)
class Geometry:
    geojson: dict[str, Any]  # EPSG:4326
    # (crs, GeoJSON in that CRS's units) when built in another projection: kept so that
    # a rectangle in a grid's projection (what getDownloadId builds) stays exact there.
    native: tuple[str, dict[str, Any]] | None = None


@dataclass(frozen=True, eq=False)
class Feature:
    geometry: Geometry | None
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class FeatureCollection:
    """Features (what Image.sample returns); the generic Collection.* algorithms accept it."""

    features: tuple[Feature, ...]
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def elements(self) -> tuple[Feature, ...]:
        return self.features

    def with_elements(self, elements: Any) -> FeatureCollection:
        return FeatureCollection(tuple(elements), self.properties)


@dataclass(frozen=True)
class Projection:
    crs: str
    transform: tuple[float, float, float, float, float, float]


@dataclass(frozen=True, eq=False)
class Filter:
    """A predicate over collection elements (images), with a description for messages."""

    test: Callable[[Any], bool]
    description: str


@dataclass(frozen=True)
class Reducer:
    """A reducer: ``kind`` (toList, mean, median, min, max, sum, count), repeated ``copies`` times."""

    kind: str
    tuple_size: int | None = None  # toList only
    copies: int | None = None  # set by Reducer.repeat

    @property
    def inputs(self) -> int:
        single = self.tuple_size if self.kind == "toList" and self.tuple_size else 1
        return single * (self.copies or 1)

    @property
    def output(self) -> str:
        return "list" if self.kind == "toList" else self.kind


@dataclass(frozen=True, eq=False)
class Function:
    """A functionDefinitionValue closed over the arguments in scope where it was defined."""

    argument_names: tuple[str, ...]
    body: Any  # graph.Node
    environment: Mapping[str, Any]


@dataclass(frozen=True, eq=False)
class NativeFunction:
    """A function an algorithm returns (Image.parseExpression): Python code, called with named arguments."""

    argument_names: tuple[str, ...]
    implementation: Callable[[Any, Mapping[str, Any]], Any]  # (evaluator, arguments) -> value


def type_name(value: Any) -> str:
    """Earth Engine's name for the type of ``value`` (used in error messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, str):
        return "String"
    if isinstance(value, bytes):
        return "Bytes"
    if isinstance(value, (list, tuple)):
        return "List"
    if isinstance(value, dict):
        return "Dictionary"
    if isinstance(value, Collection):
        return "ImageCollection"
    if isinstance(value, FeatureCollection):
        return "FeatureCollection"
    return type(value).__name__


def system_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in properties.items() if key.startswith(SYSTEM_PREFIX)}


def user_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in properties.items() if not key.startswith(SYSTEM_PREFIX)}
