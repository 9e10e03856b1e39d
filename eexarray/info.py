"""``eexarray info ASSET``: what an asset holds, before opening it.

Bands with their dtypes and native grids, the time range, the image count,
the properties of the images (name, type, how many images have it, an example) and
the stored size, as a readable table or as JSON for scripts. Costs one ``get``
of the asset and, for a collection, one paged listing (with ``start``/``end``/
``filter`` pushed to the server), like ``open_dataset``.

On a FOLDER it lists the assets in it instead (id, type, band or image count, time
range): see :func:`list_folder`. The command first ``get``s the asset to tell which.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from eexarray.backend.metadata import dtype_of, fetch_images
from eexarray.backend.options import (
    OPEN_OPTIONS,
    add_cli_options,
    check_keywords,
    cli_option_values,
    option_values,
    parse_options,
    split_options,
)
from eexarray.backend.properties import kind_of, property_names
from eexarray.geometry import PartialGrid
from eexarray.naming import asset_name
from eexarray.transport import ConnectionConfig, EarthEngineError, RestClient
from eexarray.transport.api import LIST_PAGE_SIZE, get_asset, list_images

if TYPE_CHECKING:
    import numpy as np
    from google.auth.credentials import Credentials


@dataclass(frozen=True)
class BandSummary:
    """One band: its storage dtype and native grid."""

    id: str
    dtype: str
    crs: str
    scale: tuple[float, float] | None  # CRS units per pixel along x and y (y < 0: north-up); None: not reported
    width: int | None  # None: the grid reports no dimensions (the PixelGrid reference makes them optional)
    height: int | None
    nodata: tuple[float, ...]


@dataclass(frozen=True)
class PropertySummary:
    """One property of the images: its type (as ``properties=`` types the coordinate), how many
    listed images have it, and the value of the first that does."""

    name: str
    type: str  # int, float, bool, str or json (lists, dicts, mixed types)
    image_count: int
    example: Any


@dataclass(frozen=True)
class AssetSummary:
    """What ``eexarray info`` reports. ``image_count`` and ``crs_counts`` count the listed images."""

    name: str
    id: str
    type: str
    start_time: str | None
    end_time: str | None
    image_count: int
    size_bytes: int | None  # None when the server reports no sizeBytes
    bands: tuple[BandSummary, ...]
    crs_counts: dict[str, int] = field(default_factory=dict)
    first_image: str | None = None
    last_image: str | None = None
    properties: tuple[PropertySummary, ...] = ()  # of the images (a collection's) or of the image

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types (lists, not tuples)."""
        return json.loads(json.dumps(asdict(self)))

    def to_table(self) -> str:
        return format_summary(self)


def _band_summary(band: dict[str, Any]) -> BandSummary:
    grid = PartialGrid.from_rest(band["grid"])
    return BandSummary(
        id=band["id"],
        dtype=dtype_of(band.get("dataType", {})),
        crs=grid.crs,
        scale=(float(grid.transform.a), float(grid.transform.e)) if grid.transform is not None else None,
        width=grid.width,
        height=grid.height,
        nodata=tuple(float(v) for v in band.get("missingData", {}).get("values", [])),
    )


def _property_summaries(images: list[dict[str, Any]]) -> tuple[PropertySummary, ...]:
    per_image = [image.get("properties", {}) for image in images]
    summaries = []
    for name in property_names(per_image):
        values = [properties.get(name) for properties in per_image]
        present = [value for value in values if value is not None]
        summaries.append(PropertySummary(name, kind_of(values), len(present), present[0] if present else None))
    return tuple(summaries)


def _size(images: list[dict[str, Any]]) -> int | None:
    """Total ``sizeBytes`` (an int64 sent as a string), or None when any image lacks it."""
    sizes = [image.get("sizeBytes") for image in images]
    if not sizes or any(size is None for size in sizes):
        return None
    return sum(int(str(size)) for size in sizes)


# The open options are defined once, in eexarray.backend.options.OPEN_OPTIONS (those whose
# ``commands`` include "info"); written out here for type checkers, IDEs and the API
# reference, and checked against that definition by tests/core/test_options_definition.py.
@check_keywords("eexarray info")
def summarize_asset(
    asset: str,
    *,
    progress: bool | None = None,
    start: str | dt.date | np.datetime64 | None = None,
    end: str | dt.date | np.datetime64 | None = None,
    filter: str | None = None,
    max_images: int | None = 5000,
    endpoint: str | None = None,
    high_volume: bool = False,
    project: str | None = None,
    credentials: Credentials | None = None,
    request_timeout: float | None = None,
) -> AssetSummary:
    """Summarise an IMAGE or IMAGE_COLLECTION (``start``/``end``/``filter`` select a collection's images).

    The options mean what they mean for ``open_dataset``.

    Args:
        asset: an asset id, full asset name or ``ee://`` URI.
        progress: a bar counts the listed images once a listing outgrows one page
            (None: when stderr is a terminal; see ``eexarray.progress``).
        start: collections: keep images whose `startTime` is at or after this date (ISO 8601, e.g. `2021-06-01`)
        end: collections: keep images whose `startTime` is before this date (exclusive)
        filter: collections: an AIP-160 filter, e.g. `properties.CLOUDY_PIXEL_PERCENTAGE < 20`
        max_images: unfiltered collections: refuse to list more images than this (`None`: no limit)
        endpoint: REST endpoint URL
        high_volume: use `https://earthengine-highvolume.googleapis.com`
        project: quota project (`X-Goog-User-Project`)
        credentials: google-auth credentials
        request_timeout: seconds one attempt of one request may take, connecting and the whole response included
    """
    pixels, connection = split_options(option_values(locals(), "info"))
    name = asset_name(asset)
    options = parse_options(**pixels)
    config = ConnectionConfig.create(**connection)
    client = RestClient(config)
    meta, images = fetch_images(client, name, options, what="eexarray info", progress=progress)
    kind = meta["type"]
    first = images[0] if images else None
    if first is not None and not first.get("bands"):
        first = get_asset(client, first["name"])  # a BASIC listing: fetch one image for its bands
    bands = tuple(_band_summary(band) for band in (first or {}).get("bands", []))
    starts = [image["startTime"] for image in images if image.get("startTime")]
    ends = [
        image.get("endTime") or image["startTime"] for image in images if image.get("endTime") or image.get("startTime")
    ]
    crs_counts = Counter(PartialGrid.from_rest(image["bands"][0]["grid"]).crs for image in images if image.get("bands"))
    return AssetSummary(
        name=name,
        id=meta.get("id", name),
        type=kind,
        start_time=min(starts) if starts else None,
        end_time=max(ends) if ends else None,
        image_count=len(images),
        size_bytes=_size(images),
        bands=bands,
        crs_counts=dict(sorted(crs_counts.items(), key=lambda item: (-item[1], item[0]))),
        first_image=images[0].get("id") if kind == "IMAGE_COLLECTION" and images else None,
        last_image=images[-1].get("id") if kind == "IMAGE_COLLECTION" and images else None,
        properties=_property_summaries(images),
    )


def human_bytes(count: int | None) -> str:
    """``1536000`` -> ``1.5 MB`` (decimal units, as Earth Engine's quotas count)."""
    if count is None:
        return "unknown"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _number(value: float) -> str:
    return f"{value:g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def format_summary(summary: AssetSummary) -> str:
    """The human-readable report of ``eexarray info``."""
    facts = [["asset", summary.id], ["name", summary.name], ["type", summary.type]]
    if summary.type == "IMAGE_COLLECTION":
        facts.append(["images", str(summary.image_count)])
        if summary.first_image:
            facts.append(["first, last", f"{summary.first_image}, {summary.last_image}"])
    if summary.start_time or summary.end_time:
        facts.append(["time", f"{summary.start_time or '?'} .. {summary.end_time or '?'}"])
    facts.append(["size", human_bytes(summary.size_bytes)])
    if summary.type == "IMAGE_COLLECTION" and summary.crs_counts:
        facts.append(["CRS", ", ".join(f"{crs} ({count} images)" for crs, count in summary.crs_counts.items())])
    label = max(len(key) for key, _ in facts)
    lines = [f"{key.ljust(label)}  {value}" for key, value in facts]
    if summary.bands:
        where = "bands of the first image" if summary.type == "IMAGE_COLLECTION" else "bands"
        rows = [
            [
                band.id,
                band.dtype,
                band.crs if len(band.crs) <= 24 else band.crs[:21] + "...",
                f"{_number(band.scale[0])}, {_number(band.scale[1])}" if band.scale is not None else "not reported",
                f"{band.width} x {band.height}" if band.width is not None else "not reported",
                ", ".join(_number(v) for v in band.nodata) or "-",
            ]
            for band in summary.bands
        ]
        lines += ["", f"{len(summary.bands)} {where}:"]
        lines += _table(["band", "dtype", "CRS", "scale (x, y)", "pixels (w x h)", "nodata"], rows)
    elif summary.type == "IMAGE_COLLECTION":
        lines += ["", "no image matches"]
    if summary.properties:
        where = "of the images (open_dataset(properties=...))" if summary.type == "IMAGE_COLLECTION" else ""
        rows = [[item.name, item.type, f"{item.image_count}", _example(item.example)] for item in summary.properties]
        lines += ["", f"{len(summary.properties)} properties {where}:".replace(" :", ":")]
        lines += _table(["property", "type", "images", "example"], rows)
    return "\n".join(lines)


def _example(value: Any, width: int = 48) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


# --- Folders: ``eexarray info FOLDER`` lists what a folder holds -------------------------


@dataclass(frozen=True)
class ListedAsset:
    """One child of a folder. Counts come from one listing page: ``more`` means "at least"."""

    id: str
    name: str
    type: str
    band_count: int | None = None  # IMAGE (None when the listing omits bands)
    image_count: int | None = None  # IMAGE_COLLECTION
    asset_count: int | None = None  # FOLDER
    more: bool = False  # the collection or folder holds more than one page (LIST_PAGE_SIZE) of children
    start_time: str | None = None
    end_time: str | None = None

    def contents(self) -> str:
        """``4 bands``, ``25 images``, ``1000+ images``, ``3 assets`` or ``-``."""
        for count, unit in ((self.band_count, "band"), (self.image_count, "image"), (self.asset_count, "asset")):
            if count is not None:
                return f"{count}{'+' if self.more else ''} {unit}{'' if count == 1 and not self.more else 's'}"
        return "-"


@dataclass(frozen=True)
class FolderListing:
    """What ``eexarray info`` reports for a FOLDER: its children, in listing order."""

    name: str
    id: str
    type: str
    assets: tuple[ListedAsset, ...]

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    def to_table(self) -> str:
        return format_listing(self)


def _count_children(client: RestClient, name: str) -> tuple[int, bool]:
    """Children of a collection or folder, from one BASIC page: (count, whether more pages follow)."""
    page = client.get_json(
        f"{name}:listAssets", {"pageSize": LIST_PAGE_SIZE, "view": "BASIC"}, what=f"count the assets in {name}"
    )
    return len(page.get("assets", [])), bool(page.get("nextPageToken"))


def _listed(client: RestClient, child: dict[str, Any]) -> ListedAsset:
    kind = child.get("type", "?")
    counts: dict[str, Any] = {}
    if kind == "IMAGE" and "bands" in child:
        counts["band_count"] = len(child["bands"])
    elif kind in ("IMAGE_COLLECTION", "FOLDER"):
        count, more = _count_children(client, child["name"])
        counts = {"image_count" if kind == "IMAGE_COLLECTION" else "asset_count": count, "more": more}
    return ListedAsset(
        id=child.get("id", child["name"]),
        name=child["name"],
        type=kind,
        start_time=child.get("startTime"),
        end_time=child.get("endTime"),
        **counts,
    )


def list_folder(
    asset: str,
    *,
    endpoint: str | None = None,
    high_volume: bool = False,
    project: str | None = None,
    credentials: Credentials | None = None,
) -> FolderListing:
    """The assets in a FOLDER: id, type, and band count (images) or image count (collections).

    Costs one ``get`` of the folder, one paged ``listAssets`` of it and one ``listAssets``
    page of each collection or subfolder in it (counts stop at that page: ``more``).
    Connection arguments mean what they mean for ``open_dataset``.
    """
    name = asset_name(asset)
    client = RestClient(
        ConnectionConfig.create(endpoint, high_volume=high_volume, project=project, credentials=credentials)
    )
    return _folder_listing(client, name, get_asset(client, name))


def _folder_listing(client: RestClient, name: str, meta: dict[str, Any]) -> FolderListing:
    if meta.get("type") != "FOLDER":
        raise ValueError(f"{meta.get('id', name)!r} is a {meta.get('type')}; list_folder needs a FOLDER")
    children = list(list_images(client, name))  # the paged listAssets call, whatever the children are
    with ThreadPoolExecutor(max_workers=8) as pool:  # one small request per collection or subfolder
        listed = tuple(pool.map(lambda child: _listed(client, child), children))
    return FolderListing(name=name, id=meta.get("id", name), type="FOLDER", assets=listed)


def _dates(item: ListedAsset) -> str:
    start, end = (item.start_time or "")[:10], (item.end_time or "")[:10]
    if not (start or end):
        return "-"
    return start if start == end else f"{start or '?'} .. {end or '?'}"


def format_listing(listing: FolderListing) -> str:
    """The human-readable report of ``eexarray info FOLDER``."""
    lines = [f"asset   {listing.id}", f"name    {listing.name}", "type    FOLDER", f"assets  {len(listing.assets)}"]
    if listing.assets:
        rows = [[item.id, item.type, item.contents(), _dates(item)] for item in listing.assets]
        lines += ["", *_table(["asset", "type", "contents", "time"], rows)]
        lines += ["", "eexarray info ASSET describes one of them."]
    return "\n".join(lines)


def _run_folder(args: argparse.Namespace) -> int | None:
    """``eexarray info FOLDER``: print the listing; None when the asset is not a folder (or the
    arguments are invalid: ``run_info`` reports that as it always has)."""
    try:
        pixels, connection = split_options(cli_option_values(args, "info"))
        name = asset_name(args.asset)
        client = RestClient(ConnectionConfig.create(**connection))
    except (ValueError, TypeError):
        return None
    try:
        meta = get_asset(client, name)
        if meta.get("type") != "FOLDER":
            return None
        defaults = {spec.name: spec.default for spec in OPEN_OPTIONS}
        chosen = [key for key, value in pixels.items() if value != defaults[key]]
        if chosen:
            given = ", ".join(f"--{key.replace('_', '-')}" for key in chosen)
            kind = f"{meta.get('id', name)!r} is a FOLDER"
            print(f"eexarray info: {given} select a collection's images; {kind}", file=sys.stderr)
            return 2
        listing = _folder_listing(client, name, meta)
    except EarthEngineError as error:
        print(f"eexarray info: {error}", file=sys.stderr)
        return 1
    print(json.dumps(listing.to_json(), indent=2) if args.json else listing.to_table())
    return 0


def add_info_parser(subparsers: Any) -> None:
    """Register ``eexarray info`` on the CLI's subparsers."""
    parser = subparsers.add_parser(
        "info",
        help="describe an image or collection: bands, dtypes, grids, time range, count, size",
        description="Describe an Earth Engine IMAGE or IMAGE_COLLECTION without fetching pixels.",
    )
    parser.add_argument("asset", help="asset id, full name or ee:// URI, e.g. eexarray/demo/S2_LANDSCAPE")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bars = parser.add_mutually_exclusive_group()
    bars.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show bars")
    bars.add_argument("--no-progress", dest="progress", action="store_false", help="never show bars")
    add_cli_options(parser.add_argument_group("open options (as for open_dataset)"), "info")
    parser.set_defaults(run=run_info)


def run_info(args: argparse.Namespace) -> int:
    listed = _run_folder(args)  # a FOLDER: list its assets instead
    if listed is not None:
        return listed
    try:
        summary = summarize_asset(args.asset, progress=args.progress, **cli_option_values(args, "info"))
    except EarthEngineError as error:
        print(f"eexarray info: {error}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as error:
        print(f"eexarray info: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary.to_json(), indent=2) if args.json else summary.to_table())
    return 0
