"""``eexarray download``: the command-line arguments and how they become ``download(...)``'s.

Kept here so eexarray/cli.py only registers the subcommand. The open options' flags
(``--bands``, ``--crs``, ``--endpoint``, ...) come from their single definition,
``eexarray.backend.options.OPEN_OPTIONS``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from eexarray.backend.options import add_cli_options, cli_option_values
from eexarray.backend.options import bands_from_text as parse_bands
from eexarray.backend.options import region_from_text as parse_region
from eexarray.backend.options import scale_from_text as parse_scale
from eexarray.download.options import FORMATS

__all__ = ["add_arguments", "download_arguments", "parse_bands", "parse_region", "parse_scale", "parse_source"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        metavar="ASSET_OR_EXPRESSION_FILE",
        help="an asset id (e.g. COPERNICUS/S2_SR_HARMONIZED), or a .json file holding an expression graph",
    )
    parser.add_argument("-o", "--output", required=True, help="output file (or folder, for ZARR)")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="output format (default: from the output's extension: .tif/.tiff GEO_TIFF, .zip ZIPPED_GEO_TIFF, "
        ".npy NPY, .zarr ZARR, .nc NETCDF; GEO_TIFF without an extension)",
    )
    parser.add_argument("--name", help="base name of the files inside a ZIPPED_* archive (default: the image id)")
    parser.add_argument(
        "--file-per-band",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="as getDownloadId's filePerBand: chooses ZIPPED_GEO_TIFF_PER_BAND (or, with --no-file-per-band, "
        "ZIPPED_GEO_TIFF) when --format is not given",
    )
    parser.add_argument("--memory-limit", help="memory the download may hold, e.g. 256MB (default 1GiB)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_cli_options(parser.add_argument_group("open options (as for open_dataset)"), "download")


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


def download_arguments(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """``download``'s positional input and keyword arguments from parsed command-line arguments."""
    memory = args.memory_limit
    if memory is not None and memory.strip().isdigit():
        memory = int(memory)
    return parse_source(args.source), {
        "output": args.output,
        "format": args.format,
        "name": args.name,
        "file_per_band": args.file_per_band,
        "memory_limit": memory,
        "overwrite": args.overwrite,
        "progress": args.progress,
        **cli_option_values(args, "download"),
    }
