"""``eexarray info ASSET``: what an asset holds, before opening it.

Bands with their dtypes and native grids, the time range, the image count and
the stored size, as a readable table or as JSON for scripts. Costs one ``get``
of the asset and, for a collection, one paged listing (with ``start``/``end``/
``filter`` pushed to the server), like ``open_dataset``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from eexarray.backend.metadata import dtype_of, fetch_images
from eexarray.backend.options import parse_options
from eexarray.geometry import PixelGrid
from eexarray.naming import asset_name
from eexarray.transport import ConnectionConfig, EarthEngineError, RestClient
from eexarray.transport.api import get_asset


@dataclass(frozen=True)
class BandSummary:
    """One band: its storage dtype and native grid."""

    id: str
    dtype: str
    crs: str
    scale: tuple[float, float]  # CRS units per pixel along x and y (y < 0: north-up)
    width: int
    height: int
    nodata: tuple[float, ...]


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

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types (lists, not tuples)."""
        return json.loads(json.dumps(asdict(self)))

    def to_table(self) -> str:
        return format_summary(self)


def _band_summary(band: dict[str, Any]) -> BandSummary:
    grid = PixelGrid.from_rest(band["grid"])
    return BandSummary(
        id=band["id"],
        dtype=dtype_of(band.get("dataType", {})),
        crs=grid.crs,
        scale=(float(grid.transform.a), float(grid.transform.e)),
        width=grid.width,
        height=grid.height,
        nodata=tuple(float(v) for v in band.get("missingData", {}).get("values", [])),
    )


def _size(images: list[dict[str, Any]]) -> int | None:
    """Total ``sizeBytes`` (an int64 sent as a string), or None when any image lacks it."""
    sizes = [image.get("sizeBytes") for image in images]
    if not sizes or any(size is None for size in sizes):
        return None
    return sum(int(str(size)) for size in sizes)


def summarize_asset(
    asset: str,
    *,
    endpoint: str | None = None,
    project: str | None = None,
    high_volume: bool = False,
    credentials: Any = None,
    start: Any = None,
    end: Any = None,
    filter: str | None = None,
    progress: bool | None = None,
) -> AssetSummary:
    """Summarise an IMAGE or IMAGE_COLLECTION (``start``/``end``/``filter`` select a collection's images).

    Connection arguments mean what they mean for ``open_dataset``. A bar counts the
    listed images once a listing outgrows one page (see ``eexarray.progress``).
    """
    name = asset_name(asset)
    options = parse_options(start=start, end=end, filter=filter)
    config = ConnectionConfig.create(endpoint, high_volume=high_volume, project=project, credentials=credentials)
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
    crs_counts = Counter(PixelGrid.from_rest(image["bands"][0]["grid"]).crs for image in images if image.get("bands"))
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
                f"{_number(band.scale[0])}, {_number(band.scale[1])}",
                f"{band.width} x {band.height}",
                ", ".join(_number(v) for v in band.nodata) or "-",
            ]
            for band in summary.bands
        ]
        lines += ["", f"{len(summary.bands)} {where}:"]
        lines += _table(["band", "dtype", "CRS", "scale (x, y)", "pixels (w x h)", "nodata"], rows)
    elif summary.type == "IMAGE_COLLECTION":
        lines += ["", "no image matches"]
    return "\n".join(lines)


def add_info_parser(subparsers: Any) -> None:
    """Register ``eexarray info`` on the CLI's subparsers."""
    parser = subparsers.add_parser(
        "info",
        help="describe an image or collection: bands, dtypes, grids, time range, count, size",
        description="Describe an Earth Engine IMAGE or IMAGE_COLLECTION without fetching pixels.",
    )
    parser.add_argument("asset", help="asset id, full name or ee:// URI, e.g. eexarray/demo/S2_LANDSCAPE")
    parser.add_argument(
        "--endpoint", default=None, help="REST endpoint URL (default: EEXARRAY_ENDPOINT, else Google's)"
    )
    parser.add_argument("--project", default=None, help="quota project (default: EEXARRAY_PROJECT)")
    parser.add_argument("--high-volume", action="store_true", help="use the high-volume endpoint")
    parser.add_argument("--start", default=None, help="collections: images starting at or after this date")
    parser.add_argument("--end", default=None, help="collections: images starting before this date")
    parser.add_argument("--filter", default=None, help="collections: AIP-160 filter, e.g. 'properties.CLOUDY < 20'")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bars = parser.add_mutually_exclusive_group()
    bars.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show bars")
    bars.add_argument("--no-progress", dest="progress", action="store_false", help="never show bars")
    parser.set_defaults(run=run_info)


def run_info(args: argparse.Namespace) -> int:
    try:
        summary = summarize_asset(
            args.asset,
            endpoint=args.endpoint,
            project=args.project,
            high_volume=args.high_volume,
            start=args.start,
            end=args.end,
            filter=args.filter,
            progress=args.progress,
        )
    except EarthEngineError as error:
        print(f"eexarray info: {error}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as error:
        print(f"eexarray info: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary.to_json(), indent=2) if args.json else summary.to_table())
    return 0
