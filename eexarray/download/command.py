"""``eexarray download``: the command-line arguments and how they become ``download(...)``'s.

Kept here so eexarray/cli.py only registers the subcommand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from eexarray.download.options import FORMATS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        metavar="ASSET_OR_EXPRESSION_FILE",
        help="an asset id (e.g. COPERNICUS/S2_SR_HARMONIZED), or a .json file holding an expression graph",
    )
    parser.add_argument("-o", "--output", required=True, help="output file (or folder, for ZARR)")
    parser.add_argument("--format", choices=FORMATS, default=None, help="output format (default GEO_TIFF)")
    parser.add_argument("--crs", help="output CRS, e.g. EPSG:32610 (default: native)")
    parser.add_argument("--scale", help="CRS units per pixel: one number, or 'x,y' (default: native)")
    parser.add_argument(
        "--region", help="WEST,SOUTH,EAST,NORTH in degrees, or a GeoJSON geometry (inline or a .json/.geojson file)"
    )
    parser.add_argument("--bands", action="append", help="band ids, comma-separated (repeatable; default: all)")
    parser.add_argument("--start", help="collections: first image date (inclusive), e.g. 2021-06-01")
    parser.add_argument("--end", help="collections: end date (exclusive)")
    parser.add_argument("--filter", help="collections: an AIP-160 filter, e.g. 'properties.CLOUD < 20'")
    parser.add_argument("--name", help="base name of the files inside a ZIPPED_* archive (default: the image id)")
    parser.add_argument(
        "--file-per-band",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="as getDownloadId's filePerBand: chooses ZIPPED_GEO_TIFF_PER_BAND (or, with --no-file-per-band, "
        "ZIPPED_GEO_TIFF) when --format is not given",
    )
    parser.add_argument("--endpoint", help="REST endpoint URL (default: EEXARRAY_ENDPOINT, else Earth Engine)")
    parser.add_argument("--project", help="quota project (default: EEXARRAY_PROJECT)")
    parser.add_argument("--high-volume", action="store_true", help="use the high-volume endpoint")
    parser.add_argument("--max-concurrency", type=int, help="requests in flight (default 40)")
    parser.add_argument("--memory-limit", help="memory the download may hold, e.g. 256MB (default 1GiB)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _numbers(text: str, what: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a comma-separated list of numbers") from None


def parse_source(text: str) -> Any:
    """An asset id, or the expression graph in a JSON file."""
    path = Path(text)
    if path.suffix.lower() == ".json" or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"expression file {text!r} does not exist")
        try:
            return json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"expression file {text!r} is not JSON: {error}") from None
    return text


def parse_region(text: str | None) -> Any:
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


def parse_scale(text: str | None) -> Any:
    if text is None:
        return None
    values = _numbers(text, "--scale")
    if len(values) not in (1, 2):
        raise ValueError(f"--scale {text!r} needs one number or two (x,y)")
    return values[0] if len(values) == 1 else tuple(values)


def parse_bands(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [band.strip() for value in values for band in value.split(",") if band.strip()]


def download_arguments(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """``download``'s positional input and keyword arguments from parsed command-line arguments."""
    memory = args.memory_limit
    if memory is not None and memory.strip().isdigit():
        memory = int(memory)
    return parse_source(args.source), {
        "output": args.output,
        "format": args.format,
        "crs": args.crs,
        "scale": parse_scale(args.scale),
        "region": parse_region(args.region),
        "bands": parse_bands(args.bands),
        "start": args.start,
        "end": args.end,
        "filter": args.filter,
        "name": args.name,
        "file_per_band": args.file_per_band,
        "endpoint": args.endpoint,
        "project": args.project,
        "high_volume": args.high_volume,
        "max_concurrency": args.max_concurrency,
        "memory_limit": memory,
        "overwrite": args.overwrite,
        "progress": args.progress,
    }
