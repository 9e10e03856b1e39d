"""The ``eexarray`` command line: thin wrappers over the public Python API.

* ``eexarray serve``: run the local Earth Engine-compatible server.
* ``eexarray demo``: the demo on the embedded local server.
* ``eexarray info ASSET``: bands, dtypes, native grids, time range, image count and size.
* ``eexarray download ASSET_OR_EXPRESSION_FILE -o OUT``: any region to a file (docs/downloads.md).
* ``eexarray plan ASSET``: the requests, bytes and time a compute would cost, no pixel fetched (docs/costs.md).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import Any

DEFAULT_PORT = 8765


def _add_serve(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run a local Earth Engine-compatible server",
        description="Serve a GeoTIFF directory (or the built-in demo catalog) through the Earth Engine REST API.",
    )
    parser.add_argument("--root", help="directory of GeoTIFF assets (default: the built-in demo catalog)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, local only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request, in milliseconds")
    parser.add_argument(
        "--latency-ms-per-mb", type=float, default=0.0, help="added per 1,000,000 response bytes, in milliseconds"
    )
    parser.add_argument("--faults", default=None, help="e.g. 429=0.2,503=0.1,reset=0.05,truncate=0.02")
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault draws (reproducible faults)")
    parser.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' (else 401)")
    parser.add_argument("--max-concurrency", type=int, default=None, help="answer 429 beyond this many in flight")
    parser.add_argument("--max-body-bytes", type=int, default=None, help="largest accepted request body")
    parser.add_argument(
        "--compute-budget",
        type=int,
        default=None,
        help="answer computePixels 400 'User memory limit exceeded.' beyond this many output pixels x images",
    )
    parser.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from eexarray.server import serve
    from eexarray.server.options import DEFAULT_MAX_BODY_BYTES

    try:
        server = serve(
            args.root,
            host=args.host,
            port=args.port,
            latency_ms=args.latency_ms,
            latency_ms_per_mb=args.latency_ms_per_mb,
            faults=args.faults,
            seed=args.seed,
            token=args.token,
            max_concurrency=args.max_concurrency,
            max_body_bytes=DEFAULT_MAX_BODY_BYTES if args.max_body_bytes is None else args.max_body_bytes,
            compute_budget=args.compute_budget,
        )
    except (ValueError, OSError) as error:
        print(f"eexarray serve: {error}", file=sys.stderr)
        return 2

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(server.url, flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _add_demo(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the demo on the embedded local server",
        description="Open a year of Sentinel-2-like imagery lazily, compute an NDVI time series and a median "
        "composite, write a PNG figure and a GeoTIFF, and report what was fetched.",
    )
    parser.add_argument("--output", default="demo-output", help="folder for the figure, GeoTIFF and summary")
    parser.add_argument("--endpoint", default=None, help="use a running server instead of starting one")
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from eexarray.demo import run_demo

    run_demo(args.output, endpoint=args.endpoint)
    return 0


def _add_download(subparsers: Any) -> None:
    from eexarray.download.command import add_arguments

    parser = subparsers.add_parser(
        "download",
        help="download an image or collection, of any size, to GeoTIFF, zipped GeoTIFF, NPY, Zarr or netCDF",
        description="Stream an asset (or an expression graph in a JSON file) to a file, block by block, with "
        "bounded memory; Zarr downloads resume after an interruption. See docs/downloads.md.",
    )
    add_arguments(parser)
    parser.set_defaults(run=_run_download)


def _run_download(args: argparse.Namespace) -> int:
    from eexarray.download import download
    from eexarray.download.command import download_arguments
    from eexarray.download.writer import OutputWriteError
    from eexarray.transport import EarthEngineError

    try:
        source, kwargs = download_arguments(args)
        output = download(source, **kwargs)
    except OutputWriteError as error:  # the arguments were fine: the write failed (a full disk...)
        print(f"eexarray download: {error}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError, ImportError, NotImplementedError, EarthEngineError) as error:
        print(f"eexarray download: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eexarray download: interrupted", file=sys.stderr)
        return 130
    print(output)
    return 0


def _add_plan(subparsers: Any) -> None:
    from eexarray.backend.options import add_cli_options
    from eexarray.engine.cost import DEFAULT_BANDWIDTH, DEFAULT_LATENCY

    parser = subparsers.add_parser(
        "plan",
        help="count the requests, bytes and time a compute of an asset would cost, without fetching pixels",
        description="Open the asset lazily (metadata calls only) and print what computing it - or a selection "
        "of it - would cost: requests by method, pixel bytes, the largest request against the 48 MiB limit, "
        "and a wall-time estimate. See docs/costs.md.",
    )
    parser.add_argument("asset", help="asset id, full name or ee:// URI")
    parser.add_argument(
        "--chunks", default=None, help="dask chunks, e.g. y=2048,x=2048,time=1, or 'auto' (default: request-sized)"
    )
    parser.add_argument(
        "--isel",
        default=None,
        help="a selection by position, e.g. x=0:512,y=100:612,time=0:10 (START:STOP[:STEP], or one index)",
    )
    parser.add_argument(
        "--latency", type=float, default=DEFAULT_LATENCY, help=f"seconds per request (default {DEFAULT_LATENCY})"
    )
    parser.add_argument(
        "--bandwidth",
        type=float,
        default=DEFAULT_BANDWIDTH,
        help=f"bytes per second of the download (default {DEFAULT_BANDWIDTH:g})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_cli_options(parser.add_argument_group("open options (as for open_dataset)"), "download")
    parser.set_defaults(run=_run_plan)


def _chunks_from_text(text: str | None) -> Any:
    if text is None:
        return {}
    if text.strip() == "auto":
        return "auto"
    chunks = {}
    for part in text.split(","):
        dim, _, size = part.partition("=")
        if not dim.strip() or not size.strip().isdigit() or int(size) < 1:
            raise ValueError(f"--chunks {text!r}: {part!r} is not DIM=SIZE with a positive SIZE, e.g. y=2048")
        chunks[dim.strip()] = int(size)
    return chunks


def _isel_from_text(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    selection: dict[str, Any] = {}
    for part in text.split(","):
        dim, _, value = part.partition("=")
        fields = value.split(":")
        try:
            numbers = [int(f) if f.strip() else None for f in fields]
        except ValueError:
            numbers = []
        if not dim.strip() or not 1 <= len(numbers) <= 3 or (len(numbers) == 1 and numbers[0] is None):
            raise ValueError(f"--isel {text!r}: {part!r} is not DIM=INDEX or DIM=START:STOP[:STEP], e.g. x=0:512")
        selection[dim.strip()] = numbers[0] if len(numbers) == 1 else slice(*numbers)
    return selection


def _run_plan(args: argparse.Namespace) -> int:
    import json

    from eexarray import open_dataset
    from eexarray.backend.options import cli_option_values
    from eexarray.transport import EarthEngineError

    try:
        chunks, selection = _chunks_from_text(args.chunks), _isel_from_text(args.isel)
        ds = open_dataset(args.asset, chunks=chunks, **cli_option_values(args, "download"))
        unknown = sorted(set(selection) - set(ds.dims))
        if unknown:
            raise ValueError(f"--isel names {unknown}, not dimensions of {args.asset!r}: {list(ds.dims)}")
        plan = ds.isel(selection).eexarray.plan(latency=args.latency, bandwidth=args.bandwidth)
    except EarthEngineError as error:
        print(f"eexarray plan: {error}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, IndexError) as error:
        print(f"eexarray plan: {error}", file=sys.stderr)
        return 2
    print(json.dumps(plan.to_dict(), indent=2) if args.json else plan)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from eexarray import __version__

    parser = argparse.ArgumentParser(prog="eexarray", description="Earth Engine imagery as lazy xarray Datasets.")
    parser.add_argument("--version", action="version", version=f"eexarray {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(subparsers)
    _add_demo(subparsers)
    from eexarray.info import add_info_parser

    add_info_parser(subparsers)
    _add_download(subparsers)
    _add_plan(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ModuleNotFoundError as error:
        if "pip install 'eexarray[" not in str(error):
            raise  # not a missing extra: a real bug, keep the traceback
        print(f"eexarray: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
