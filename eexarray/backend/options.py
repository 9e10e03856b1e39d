"""Every keyword option of ``open_dataset``, defined once, and their validation before any request.

``OPEN_OPTIONS`` is the single definition: for each option its name, type annotation,
default, one-line doc, the documented default, which commands take it and, where the
command line exposes it, its flag. From it come the backend's
``open_dataset_parameters``, the flags of ``eexarray download`` and ``eexarray info``,
docs/api.md's options table (``python -m eexarray.backend.options`` prints it) and the
values forwarded by ``eexarray.open_dataset``, ``eexarray.download`` and
``eexarray.info.summarize_asset``.

Those public functions write their signatures and ``Args:`` docstrings out instead of
generating them from ``OPEN_OPTIONS`` (a generated ``__signature__``/``__doc__`` exists
only at run time: type checkers, IDE completion and the static API reference read the
source and would see nothing). tests/core/test_options_definition.py checks every one of
them against ``OPEN_OPTIONS`` (same names, annotations, defaults and order; each doc
line), so adding an option is one ``OptionSpec`` here, plus whatever that test then asks
for.

Every bad value raises here with a message naming it and what would be valid,
so no request is made for an open that cannot succeed.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import inspect
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, Protocol, TypeVar

import numpy as np

from eexarray.geometry import PixelGrid, normalize_crs
from eexarray.geometry.grid import InvalidGridError, _scale_pair
from eexarray.planning import MAX_BANDS
from eexarray.transport.cache import RequestCache, resolve_request_cache

if TYPE_CHECKING:
    import argparse

FILE_FORMATS = ("NPY", "GEO_TIFF")
# The largest output grid side opened by default (2^20 px: 8 MiB of coordinates per axis). A
# typo in scale (1e-5 instead of 10) otherwise asks for billions of pixels a side and fails
# much later, out of memory; the cap refuses it at open with the numbers.
MAX_PIXELS_PER_SIDE = 2**20
GROUPBY_MODES = ("solar_day",)
RESAMPLING_MODES = ("nearest", "bilinear", "bicubic")
# A collection listed without any filter stops past this many images (Sentinel-2 has millions).
DEFAULT_MAX_IMAGES = 5000
Bounds = tuple[float, float, float, float]
P = ParamSpec("P")
R = TypeVar("R")


class GeometryLike(Protocol):
    """A shapely geometry, or anything else with its ``bounds``, ``geom_type`` and ``is_empty``."""

    @property
    def bounds(self) -> tuple[float, ...]: ...

    @property
    def geom_type(self) -> str: ...

    @property
    def is_empty(self) -> bool: ...


# -- command-line text -> option values (the ``parse`` of a CliFlag) ----------------------------------


def _numbers(text: str, what: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a comma-separated list of numbers") from None


def region_from_text(text: str | None) -> Any:
    """``--region``: WEST,SOUTH,EAST,NORTH, inline GeoJSON, or a .json/.geojson file."""
    if text is None:
        return None
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            return json.loads(stripped)
        except ValueError as error:
            raise ValueError(f"--region {text!r} is not valid GeoJSON: {error}") from None
    path = Path(stripped)
    if path.suffix.lower() in (".json", ".geojson"):
        if not path.is_file():
            raise FileNotFoundError(f"--region file {text!r} does not exist")
        return json.loads(path.read_text())
    values = _numbers(stripped, "--region")
    if len(values) != 4:
        raise ValueError(f"--region {text!r} needs four numbers WEST,SOUTH,EAST,NORTH, got {len(values)}")
    return tuple(values)


def scale_from_text(text: str | None, flag: str = "--scale") -> Any:
    """``--scale`` (or ``--resolution``): one number, or X,Y."""
    if text is None:
        return None
    values = _numbers(text, flag)
    if len(values) not in (1, 2):
        raise ValueError(f"{flag} {text!r} needs one number or two (x,y)")
    return values[0] if len(values) == 1 else tuple(values)


def resolution_from_text(text: str | None) -> Any:
    """``--resolution``: one number, or X,Y."""
    return scale_from_text(text, "--resolution")


def bands_from_text(values: list[str] | None) -> list[str] | None:
    """``--bands`` (repeatable, each comma-separated)."""
    if not values:
        return None
    return [band.strip() for value in values for band in value.split(",") if band.strip()]


def max_images_from_text(text: str | None) -> Any:
    """``--max-images``: a positive integer, or ``none`` for no limit; not given: the default."""
    if text is None:
        return DEFAULT_MAX_IMAGES
    if text.strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--max-images {text!r} is not a number of images (or 'none' for no limit)") from None


def resampling_from_text(text: str | None) -> str:
    """``--resampling``: nearest, bilinear or bicubic; not given: nearest (validated by parse_options)."""
    return "nearest" if text is None else text.strip().lower()


# -- the definition -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliFlag:
    """How the commands that take an option spell and parse it; the flag is ``--`` + the name, dashed."""

    help: str = ""  # the flag's --help text; "" means the option's doc
    metavar: str | None = None
    action: Literal["store_true", "append"] | None = None
    type: Callable[[str], Any] | None = None  # argparse's conversion (a failure is a usage error)
    parse: Callable[[Any], Any] | None = None  # then: argparse's value -> the option's Python value


@dataclass(frozen=True)
class OptionSpec:
    """One keyword option of ``open_dataset``."""

    name: str
    annotation: str  # exactly as the signatures spell it (checked by a test)
    default: Any
    doc: str  # one line, Markdown; the Args: entry of each docstring and docs/api.md's "meaning"
    default_doc: str  # what the default means (docs/api.md's "default"; CLI --help)
    group: Literal["pixels", "connection"]  # pixels: -> OpenOptions; connection: -> ConnectionConfig.create
    commands: tuple[str, ...] = ("download",)  # besides open_dataset: download() and/or summarize_asset() ("info")
    cli: CliFlag | None = None  # the flag of each command in ``commands``; None: Python only

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPEN_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "bands",
        "str | Sequence[str] | None",
        None,
        "band ids to open, in this order",
        "all bands",
        "pixels",
        cli=CliFlag("band ids, comma-separated (repeatable)", metavar="BANDS", action="append", parse=bands_from_text),
    ),
    OptionSpec(
        "crs",
        "str | CRS | None",
        None,
        'output CRS: `"EPSG:32610"`, WKT, or a `pyproj.CRS`',
        "native CRS",
        "pixels",
        cli=CliFlag("output CRS, e.g. EPSG:32610, or WKT"),
    ),
    OptionSpec(
        "scale",
        "float | tuple[float, float] | None",
        None,
        "metres per pixel, or `(x, y)`, as in Earth Engine (in a geographic CRS, degrees = metres / 111319.49)",
        "native scale (`scale` or `resolution` is required when `crs` differs from the native CRS)",
        "pixels",
        cli=CliFlag("metres per pixel, as in Earth Engine: one number, or X,Y", parse=scale_from_text),
    ),
    OptionSpec(
        "resolution",
        "float | tuple[float, float] | None",
        None,
        "CRS units per pixel (degrees in EPSG:4326), or `(x, y)`; exclusive with `scale`",
        "native resolution",
        "pixels",
        cli=CliFlag("CRS units per pixel: one number, or X,Y", parse=resolution_from_text),
    ),
    OptionSpec(
        "region",
        "Sequence[float] | dict[str, Any] | GeometryLike | None",
        None,
        "GeoJSON geometry dict, shapely geometry, or `(west, south, east, north)`, in EPSG:4326",
        "the asset's footprint",
        "pixels",
        cli=CliFlag(
            "WEST,SOUTH,EAST,NORTH in degrees, or a GeoJSON geometry (inline or a .json/.geojson file)",
            parse=region_from_text,
        ),
    ),
    OptionSpec(
        "grid",
        "PixelGrid | dict[str, Any] | None",
        None,
        "a `PixelGrid` or a REST PixelGrid dict; exclusive with `crs`/`scale`/`resolution`/`region`",
        "from `crs`, `scale` (or `resolution`) and `region`",
        "pixels",
    ),
    OptionSpec(
        "max_pixels_per_side",
        "int | None",
        None,
        "largest output grid side in pixels; also caps tiles per band at 10^6 x (this / 2^20)^2",
        "`1048576` (2^20)",
        "pixels",
        cli=CliFlag(type=int, metavar="N"),
    ),
    OptionSpec(
        "resampling",
        'Literal["nearest", "bilinear", "bicubic"]',
        "nearest",
        "`bilinear`/`bicubic`: interpolated by the service off the native grid (`Image.resample`)",
        '`"nearest"` (native-aligned reads are never resampled)',
        "pixels",
        cli=CliFlag(
            "nearest, bilinear or bicubic, for grids other than the native one",
            metavar="MODE",
            parse=resampling_from_text,
        ),
    ),
    OptionSpec(
        "start",
        "str | dt.date | np.datetime64 | None",
        None,
        "collections: keep images whose `startTime` is at or after this date (ISO 8601, e.g. `2021-06-01`)",
        "no lower bound",
        "pixels",
        commands=("download", "info"),
        cli=CliFlag(),
    ),
    OptionSpec(
        "end",
        "str | dt.date | np.datetime64 | None",
        None,
        "collections: keep images whose `startTime` is before this date (exclusive)",
        "no upper bound",
        "pixels",
        commands=("download", "info"),
        cli=CliFlag(),
    ),
    OptionSpec(
        "filter",
        "str | None",
        None,
        "collections: an AIP-160 filter, e.g. `properties.CLOUDY_PIXEL_PERCENTAGE < 20`",
        "none",
        "pixels",
        commands=("download", "info"),
        cli=CliFlag(),
    ),
    OptionSpec(
        "properties",
        "bool | Sequence[str]",
        False,
        "collections: per-image properties as coordinates along `time`: `True` (all) or a list of names",
        "`False` (none)",
        "pixels",
        commands=(),
    ),
    OptionSpec(
        "groupby",
        'Literal["solar_day"] | None',
        None,
        'collections: `"solar_day"`: one time step per local solar day, mosaicked on the server',
        "`None` (one time step per image)",
        "pixels",
        commands=(),
    ),
    OptionSpec(
        "max_images",
        "int | None",
        DEFAULT_MAX_IMAGES,
        "unfiltered collections: refuse to list more images than this (`None`: no limit)",
        f"{DEFAULT_MAX_IMAGES:,}",
        "pixels",
        commands=("download", "info"),
        cli=CliFlag(
            "refuse to list more images than N when no filter option narrows the collection ('none': no limit)",
            metavar="N",
            parse=max_images_from_text,
        ),
    ),
    OptionSpec(
        "endpoint",
        "str | None",
        None,
        "REST endpoint URL",
        "`EEXARRAY_ENDPOINT`, else `https://earthengine.googleapis.com`",
        "connection",
        commands=("download", "info"),
        cli=CliFlag(),
    ),
    OptionSpec(
        "high_volume",
        "bool",
        False,
        "use `https://earthengine-highvolume.googleapis.com`",
        "`False`",
        "connection",
        commands=("download", "info"),
        cli=CliFlag("use the high-volume endpoint", action="store_true"),
    ),
    OptionSpec(
        "project",
        "str | None",
        None,
        "quota project (`X-Goog-User-Project`)",
        "`EEXARRAY_PROJECT`, else the credentials' quota project",
        "connection",
        commands=("download", "info"),
        cli=CliFlag(),
    ),
    OptionSpec(
        "credentials",
        "Credentials | None",
        None,
        "google-auth credentials",
        "for Google endpoints Earth Engine's stored credentials (`earthengine authenticate`), else "
        "Application Default Credentials; none for a local server (`EEXARRAY_TOKEN` sends a static bearer token)",
        "connection",
        commands=("download", "info"),
    ),
    OptionSpec(
        "max_concurrency",
        "int | None",
        None,
        "requests in flight: per process, and across a dask.distributed cluster",
        "40",
        "connection",
        cli=CliFlag(type=int, metavar="N"),
    ),
    OptionSpec(
        "request_timeout",
        "float | None",
        None,
        "seconds one attempt of one request may take, connecting and the whole response included",
        "`300` (48 MiB, the largest response, at ~1.3 Mbit/s)",
        "connection",
        commands=("download", "info"),
        cli=CliFlag(type=float, metavar="SECONDS"),
    ),
    OptionSpec(
        "mask_and_scale",
        "bool",
        True,
        "floats, NaN exactly where masked (masks fetched with pixels); `False`: native values",
        "`True` (see docs/masks.md for what each costs)",
        "pixels",
        commands=(),  # a download writes native values
    ),
    OptionSpec(
        "file_format",
        'Literal["NPY", "GEO_TIFF"]',
        "NPY",
        'pixel encoding on the wire: `"NPY"` or `"GEO_TIFF"`',
        '`"NPY"`',
        "pixels",
        commands=(),
    ),
    OptionSpec(
        "request_cache",
        "str | os.PathLike[str] | RequestCache | Literal[False] | None",
        None,
        "a directory caching pixel responses: a rerun makes no request (docs/costs.md); `False`: off",
        "`EEXARRAY_REQUEST_CACHE`, else none; a path holds up to 10 GiB (`RequestCache(path, max_bytes)`: any)",
        "pixels",
        commands=(),  # open_dataset only for now (a download writes each block once)
    ),
)
OPEN_OPTION_NAMES: tuple[str, ...] = tuple(spec.name for spec in OPEN_OPTIONS)


def options_for(command: str | None = None) -> tuple[OptionSpec, ...]:
    """The options ``open_dataset`` (None), ``download`` or ``info`` takes, in definition order."""
    return tuple(spec for spec in OPEN_OPTIONS if command is None or command in spec.commands)


def option_values(namespace: Mapping[str, Any], command: str | None = None) -> dict[str, Any]:
    """The open options in ``namespace`` (a function's ``locals()``): forwards every one, none forgotten."""
    return {spec.name: namespace[spec.name] for spec in options_for(command) if spec.name in namespace}


def split_options(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``values`` as (keywords of ``parse_options``, keywords of ``ConnectionConfig.create``)."""
    groups: dict[str, dict[str, Any]] = {"pixels": {}, "connection": {}}
    for spec in OPEN_OPTIONS:
        if spec.name in values:
            groups[spec.group][spec.name] = values[spec.name]
    return groups["pixels"], groups["connection"]


def _plain(text: str) -> str:
    """Markdown -> --help text: no backticks, and '%' escaped for argparse."""
    return text.replace("`", "").replace("%", "%%")


def add_cli_options(parser: argparse._ActionsContainer, command: str) -> None:
    """Add the flags of the open options ``command`` takes and the CLI exposes."""
    for spec in options_for(command):
        if spec.cli is None:
            continue
        text = _plain(spec.cli.help or spec.doc)
        kwargs: dict[str, Any] = {"dest": spec.name}
        if spec.cli.action == "store_true":
            parser.add_argument(spec.flag, action="store_true", help=text, **kwargs)
            continue
        if spec.cli.action is not None:
            kwargs["action"] = spec.cli.action
        if spec.cli.type is not None:
            kwargs["type"] = spec.cli.type
        if spec.cli.metavar is not None:
            kwargs["metavar"] = spec.cli.metavar
        parser.add_argument(spec.flag, default=None, help=f"{text} (default: {_plain(spec.default_doc)})", **kwargs)


def cli_option_values(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The open options' Python values from the flags ``add_cli_options`` added (may raise ValueError)."""
    values = {}
    for spec in options_for(command):
        if spec.cli is not None:
            value = getattr(args, spec.name)
            values[spec.name] = spec.cli.parse(value) if spec.cli.parse is not None else value
    return values


def options_table() -> str:
    """docs/api.md's table of the options (tests/core/test_options_definition.py keeps it equal)."""
    lines = ["| option | meaning | default |", "| --- | --- | --- |"]
    lines += [f"| `{spec.name}` | {spec.doc} | {spec.default_doc} |" for spec in OPEN_OPTIONS]
    return "\n".join(lines)


def check_keywords(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Refuse an unknown keyword with the list of valid ones (Python's own error names no alternative).

    The decorated function keeps its signature and docstring for ``help()`` and IDEs.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        parameters = inspect.signature(function).parameters
        valid = [name for name, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]

        @functools.wraps(function)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            unknown = sorted(set(kwargs) - set(parameters))
            if unknown:
                close = difflib.get_close_matches(unknown[0], valid, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TypeError(f"Unknown {what} option(s) {unknown}{hint}; valid options are {valid}")
            return function(*args, **kwargs)

        return checked

    return decorate


# -- validation ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenOptions:
    """The ``pixels`` options, validated and normalised (same names, same order as ``OPEN_OPTIONS``)."""

    bands: tuple[str, ...] | None = None
    crs: str | None = None
    scale: tuple[float, float] | None = None  # metres per pixel (Earth Engine's scale), x and y
    resolution: tuple[float, float] | None = None  # CRS units per pixel, x and y
    region: Bounds | None = None  # west, south, east, north in EPSG:4326
    grid: PixelGrid | None = None
    max_pixels_per_side: int | None = None  # None: MAX_PIXELS_PER_SIDE (see side_limit)
    resampling: str = "nearest"  # one of RESAMPLING_MODES
    start: str | None = None  # RFC 3339, inclusive
    end: str | None = None  # RFC 3339, exclusive
    filter: str | None = None
    properties: bool | tuple[str, ...] = False  # True: all; a tuple: those names
    groupby: str | None = None  # None or one of GROUPBY_MODES
    max_images: int | None = DEFAULT_MAX_IMAGES  # applies to unfiltered listings only
    mask_and_scale: bool = True
    file_format: str = "NPY"
    request_cache: RequestCache | None = None

    @property
    def side_limit(self) -> int:
        """The largest output grid side accepted, in pixels."""
        return self.max_pixels_per_side if self.max_pixels_per_side is not None else MAX_PIXELS_PER_SIDE


def parse_bands(bands: Any) -> tuple[str, ...] | None:
    if bands is None:
        return None
    if isinstance(bands, str):
        bands = [bands]
    if not isinstance(bands, Sequence) or not all(isinstance(b, str) and b for b in bands):
        raise TypeError(f"bands must be a list of band ids (strings), got {bands!r}")
    if not bands:
        raise ValueError("bands is empty: select at least one band, or pass None for all bands")
    duplicates = sorted({b for b in bands if list(bands).count(b) > 1})
    if duplicates:
        raise ValueError(f"bands lists {duplicates} more than once; each band may be selected once")
    if len(bands) > MAX_BANDS * 64:
        raise ValueError(f"{len(bands)} bands selected; that is more than any image has")
    return tuple(bands)


def parse_properties(properties: Any) -> bool | tuple[str, ...]:
    """``True``/``False``, or the property names (a string or a list of non-empty strings)."""
    if isinstance(properties, bool):
        return properties
    if isinstance(properties, str):
        properties = [properties]
    if not isinstance(properties, Sequence) or not all(isinstance(p, str) and p for p in properties):
        raise TypeError(f"properties must be True, False or a list of property names (strings), got {properties!r}")
    if not properties:
        raise ValueError("properties is empty: name at least one property, or pass True for all, False for none")
    duplicates = sorted({p for p in properties if list(properties).count(p) > 1})
    if duplicates:
        raise ValueError(f"properties lists {duplicates} more than once; name each property once")
    return tuple(properties)


def parse_region(region: Any) -> Bounds:
    """(west, south, east, north) in EPSG:4326 from a GeoJSON dict, a shapely geometry or a 4-tuple.

    A region that crosses the antimeridian is refused: its bounding box in longitude
    would be the rest of the globe instead (see ``_refuse_antimeridian``).
    """
    if hasattr(region, "bounds") and hasattr(region, "geom_type"):  # shapely, without importing it
        if region.is_empty:
            raise ValueError(f"region {region!r} is an empty geometry")
        bounds = tuple(float(v) for v in region.bounds)
        mapping = getattr(region, "__geo_interface__", None)
        if isinstance(mapping, dict):
            _refuse_antimeridian(mapping)
    elif isinstance(region, dict):
        bounds = _geojson_bounds(region)
        _refuse_antimeridian(region)
    elif isinstance(region, (tuple, list)) and len(region) == 4:
        if not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in region):
            raise TypeError(f"region bounds must be four numbers (west, south, east, north), got {region!r}")
        bounds = tuple(float(v) for v in region)
    else:
        raise TypeError(
            "region must be a GeoJSON geometry dict, a shapely geometry or (west, south, east, north) "
            f"in EPSG:4326 degrees, got {type(region).__name__}: {region!r}"
        )
    west, south, east, north = bounds
    if not all(math.isfinite(v) for v in bounds):
        raise ValueError(f"region bounds {bounds} are not finite")
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90):
        raise ValueError(
            f"region bounds {bounds} are outside longitude [-180, 180] / latitude [-90, 90]; "
            "regions are given in EPSG:4326 degrees"
        )
    if west > east and isinstance(region, (tuple, list)):
        raise ValueError(
            f"region bounds {bounds} are empty or inverted: expected west < east and south < north; if the box "
            f"is meant to cross the antimeridian (longitude 180), that is not supported: open ({west:g}, {south:g}, "
            f"180, {north:g}) and (-180, {south:g}, {east:g}, {north:g}) separately and concatenate them"
        )
    if west >= east or south >= north:
        raise ValueError(f"region bounds {bounds} are empty or inverted: expected west < east and south < north")
    return bounds  # type: ignore[return-value]


def _refuse_antimeridian(geometry: dict[str, Any]) -> None:
    """Refuse a GeoJSON region that crosses the antimeridian, or is one area split there.

    Its longitudes' bounding box would be the complement of what was meant: a polygon
    from 170 to -170 would give a grid from -170 to 170, 17 times wider. Earth Engine
    reads an edge as the shorter way round the globe, so an edge spanning more than 180
    degrees of longitude crosses 180. RFC 7946 instead splits such geometries into parts
    touching +180 and -180, whose union box is just as wrong.
    """
    edges = list(_geojson_edges(geometry))
    for (lon1, _), (lon2, _) in edges:
        # An edge from -180 to 180 joins two names of one meridian (a world box's pole edge): no crossing.
        if abs(lon2 - lon1) > 180 and not (abs(lon1) == 180 and abs(lon2) == 180):
            raise ValueError(
                f"region crosses the antimeridian (longitude 180): its edge from longitude {lon1:g} to {lon2:g} "
                "goes the short way across 180, and the region's bounding box in longitude would be the other "
                f"{abs(lon2 - lon1):g} degrees of the globe instead. Split it at 180 into one region per side"
                f"{_split_example(edges)}, open each and concatenate them"
            )
    spans = sorted(_part_longitude_spans(geometry))
    if len(spans) > 1 and spans[0][0] <= -180 and max(span[1] for span in spans) >= 180:
        covered_to = spans[0][1]
        for low, high in spans[1:]:
            if low > covered_to:
                raise ValueError(
                    "region's parts touch both longitude -180 and 180 with a gap between them (from "
                    f"{covered_to:g} to {low:g}): it is one area split at the antimeridian, and its bounding box "
                    "would span the whole globe in longitude. Open each side as its own region and concatenate them"
                )
            covered_to = max(covered_to, high)


def _split_example(edges: list[tuple[tuple[float, float], tuple[float, float]]]) -> str:
    """`` (e.g. (170, -10, 180, 10) and (-180, -10, -170, 10))``: the two sides' boxes."""
    points = [point for edge in edges for point in edge]
    east_of_0 = [lon for lon, _ in points if lon >= 0]
    west_of_0 = [lon for lon, _ in points if lon < 0]
    if not east_of_0 or not west_of_0:
        return ""
    south, north = min(lat for _, lat in points), max(lat for _, lat in points)
    return (
        f" (e.g. ({min(east_of_0):g}, {south:g}, 180, {north:g}) and (-180, {south:g}, {max(west_of_0):g}, {north:g}))"
    )


def _geojson_edges(geometry: dict[str, Any]) -> Iterator[tuple[tuple[float, float], tuple[float, float]]]:
    """Consecutive position pairs of every line and ring of a GeoJSON geometry (positions already checked)."""
    kind = geometry.get("type")
    if kind == "Feature":
        yield from _geojson_edges(geometry.get("geometry") or {})
    elif kind == "GeometryCollection":
        for part in geometry.get("geometries", []):
            yield from _geojson_edges(part)
    elif kind in ("LineString", "MultiLineString", "Polygon", "MultiPolygon"):
        depth = {"LineString": 0, "MultiLineString": 1, "Polygon": 1, "MultiPolygon": 2}[kind]
        expected = {0: "positions", 1: "lists of positions", 2: "lists of lists of positions"}[depth]
        lines = [geometry.get("coordinates") or []]
        for _ in range(depth):
            lines = [line for group in lines for line in group]
        for line in lines:
            if not isinstance(line, (list, tuple)) or not all(_is_position(p) for p in line):
                raise ValueError(
                    f"region GeoJSON {kind} coordinates are nested wrongly: a {kind} holds {expected} "
                    f"([longitude, latitude]), got {line!r} at that level"
                )
            points = [(float(p[0]), float(p[1])) for p in line]
            yield from zip(points, points[1:])


def _is_position(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) >= 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value[:2])
    )


def _part_longitude_spans(geometry: dict[str, Any]) -> Iterator[tuple[float, float]]:
    """(min, max) longitude of each part: polygons of a MultiPolygon, members of a collection..."""
    kind = geometry.get("type")
    if kind == "Feature":
        yield from _part_longitude_spans(geometry.get("geometry") or {})
    elif kind == "GeometryCollection":
        for part in geometry.get("geometries", []):
            yield from _part_longitude_spans(part)
    elif kind in ("MultiPolygon", "MultiLineString", "MultiPoint"):
        for coordinates in geometry.get("coordinates") or []:
            points = _flatten_positions(coordinates)
            if points:
                yield (min(p[0] for p in points), max(p[0] for p in points))
    elif kind in ("Point", "LineString", "Polygon"):
        points = _flatten_positions(geometry.get("coordinates"))
        if points:
            yield (min(p[0] for p in points), max(p[0] for p in points))


def _geojson_bounds(geometry: dict[str, Any]) -> Bounds:
    kind = geometry.get("type")
    if kind == "Feature":
        return _geojson_bounds(geometry.get("geometry") or {})
    if kind == "GeometryCollection":
        parts = [_geojson_bounds(g) for g in geometry.get("geometries", [])]
        if not parts:
            raise ValueError("region is an empty GeometryCollection")
        return (min(p[0] for p in parts), min(p[1] for p in parts), max(p[2] for p in parts), max(p[3] for p in parts))
    if kind not in ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"):
        raise ValueError(f"region GeoJSON type {kind!r} is not a geometry type (Polygon, MultiPolygon, Point, ...)")
    points = np.asarray(_flatten_positions(geometry.get("coordinates")), dtype="float64")
    if points.size == 0:
        raise ValueError(f"region GeoJSON {kind} has no coordinates")
    return (points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max())


def _flatten_positions(coordinates: Any) -> list[list[float]]:
    if not isinstance(coordinates, (list, tuple)):
        raise ValueError(f"region GeoJSON coordinates are malformed: {coordinates!r}")
    if coordinates and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in coordinates):
        if len(coordinates) < 2:
            raise ValueError(f"region GeoJSON position {coordinates!r} needs longitude and latitude")
        return [list(coordinates[:2])]
    positions: list[list[float]] = []
    for part in coordinates:
        positions.extend(_flatten_positions(part))
    return positions


# Earth Engine dates are RFC 3339: years 0001-9999, always written with four digits.
_SHORT_YEAR = re.compile(r"^\s*(?:-|0000-|[0-9]{1,3}-)")  # a year RFC 3339 cannot write
_DATE_RANGE = "dates run from 0001-01-01 to 9999-12-31 UTC, years written with four digits"


def rfc3339(moment: dt.datetime) -> str:
    """``0999-06-01T00:00:00.000000Z``: UTC, microseconds, a four-digit year (``strftime("%Y")``
    writes ``999``, which no RFC 3339 reader accepts)."""
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(value: Any, name: str) -> str | None:
    """An RFC 3339 UTC string from a string, datetime, date or numpy/pandas timestamp."""
    if value is None:
        return None
    original = value
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValueError(f"{name}=NaT is not a date")
        converted = value.astype("datetime64[us]").astype(dt.datetime)
        # numpy gives an int (not a datetime) outside Python's years 1-9999.
        if not isinstance(converted, dt.datetime):
            raise ValueError(f"{name}={original!r} is out of range: {_DATE_RANGE}")
        value = converted
    elif hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            hint = f" ({_DATE_RANGE}, e.g. '0999-06-01')" if _SHORT_YEAR.match(text) else ""
            raise ValueError(
                f"{name}={original!r} is not a date: expected ISO 8601 such as '2021-06-01' or "
                f"'2021-06-01T12:00:00Z'{hint}"
            ) from None
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} must be a date string, datetime or numpy.datetime64, got {type(original).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    try:
        return rfc3339(value)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC
        raise ValueError(f"{name}={original!r} is out of range in UTC: {_DATE_RANGE}") from None


def parse_options(**values: Any) -> OpenOptions:
    """Validate and normalise the ``pixels`` options given (the others take their defaults)."""
    given = {spec.name: values.get(spec.name, spec.default) for spec in OPEN_OPTIONS if spec.group == "pixels"}
    unknown = sorted(set(values) - set(given))
    if unknown:
        raise TypeError(f"Unknown eexarray option(s) {unknown}; parse_options takes {list(given)}")
    bands, crs, scale, region, grid = given["bands"], given["crs"], given["scale"], given["region"], given["grid"]
    resolution, max_pixels_per_side = given["resolution"], given["max_pixels_per_side"]
    start, end, filter = given["start"], given["end"], given["filter"]
    mask_and_scale, file_format = given["mask_and_scale"], given["file_format"]
    properties, groupby, max_images = given["properties"], given["groupby"], given["max_images"]
    resampling = given["resampling"]
    if not isinstance(resampling, str) or resampling not in RESAMPLING_MODES:
        raise ValueError(
            f"resampling={resampling!r} is not supported; use one of {list(RESAMPLING_MODES)} "
            "(Earth Engine's Image.resample modes, and nearest neighbour, its default)"
        )
    if grid is not None and any(v is not None for v in (crs, scale, resolution, region)):
        raise ValueError(
            "grid is exclusive with crs/scale/resolution/region: pass either a full grid or crs/scale/region"
        )
    if scale is not None and resolution is not None:
        raise ValueError(
            f"scale={scale!r} and resolution={resolution!r} both give the pixel size: pass one, scale in metres "
            "(Earth Engine's meaning) or resolution in CRS units"
        )
    if max_pixels_per_side is not None and (
        isinstance(max_pixels_per_side, bool)
        or not isinstance(max_pixels_per_side, (int, np.integer))
        or max_pixels_per_side < 1
    ):
        raise ValueError(f"max_pixels_per_side must be a positive integer, got {max_pixels_per_side!r}")
    parsed_grid = None
    if grid is not None:
        if isinstance(grid, PixelGrid):
            parsed_grid = grid
        elif isinstance(grid, dict):
            parsed_grid = PixelGrid.from_rest(grid)
        else:
            raise TypeError(
                "grid must be a PixelGrid or a REST PixelGrid dict (dimensions, affineTransform, crsCode), "
                f"got {grid!r}"
            )
    try:
        scale_pair = _scale_pair(scale, "scale", "metres") if scale is not None else None
        resolution_pair = _scale_pair(resolution, "resolution", "CRS units") if resolution is not None else None
    except InvalidGridError as error:
        raise ValueError(str(error)) from None
    start_text, end_text = parse_time(start, "start"), parse_time(end, "end")
    if start_text and end_text and start_text >= end_text:
        raise ValueError(f"start={start!r} is not before end={end!r}: the time range is empty")
    if filter is not None and (not isinstance(filter, str) or not filter.strip()):
        raise ValueError(f"filter must be a non-empty AIP-160 filter string, got {filter!r}")
    if not isinstance(mask_and_scale, bool):
        raise TypeError(f"mask_and_scale must be True or False, got {mask_and_scale!r}")
    if file_format not in FILE_FORMATS:
        raise ValueError(f"file_format={file_format!r} is not supported; use one of {FILE_FORMATS}")
    if groupby is not None and groupby not in GROUPBY_MODES:
        raise ValueError(f"groupby={groupby!r} is not supported; use one of {list(GROUPBY_MODES)} or None")
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, (int, np.integer))):
        raise TypeError(f"max_images must be a positive integer or None (no limit), got {max_images!r}")
    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images={max_images} must be at least 1 (or None for no limit)")
    bands_tuple = parse_bands(bands)
    parsed_region = parse_region(region) if region is not None else None
    parsed_crs = normalize_crs(crs) if crs is not None else None
    request_cache = resolve_request_cache(given["request_cache"])  # last: it creates the directory
    return OpenOptions(
        bands=bands_tuple,
        crs=parsed_crs,
        scale=scale_pair,
        resolution=resolution_pair,
        region=parsed_region,
        grid=parsed_grid,
        max_pixels_per_side=int(max_pixels_per_side) if max_pixels_per_side is not None else None,
        resampling=resampling,
        start=start_text,
        end=end_text,
        filter=filter,
        properties=parse_properties(properties),
        groupby=groupby,
        max_images=int(max_images) if max_images is not None else None,
        mask_and_scale=mask_and_scale,
        file_format=file_format,
        request_cache=request_cache,
    )


if __name__ == "__main__":
    print(options_table())
