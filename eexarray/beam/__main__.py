"""``python -m eexarray.beam ASSET --output out.zarr [--runner DirectRunner] [open options]``.

Writes an asset (or an expression graph in a .json file) to a Zarr store with an Apache
Beam pipeline: ``ReadPixels | xarray_beam.ChunksToZarr``. The open options' flags are
``eexarray download``'s; every argument this command does not know (``--runner``,
``--temp_location``, ``--max_num_workers``, ...) goes to Beam's ``PipelineOptions``, and
so does everything after ``--`` (where Beam's own ``--region`` - a Dataflow region, not
an area - goes). ``--project`` names the quota project and, unless Beam's arguments name
one, the project of the pipeline too. See docs/beam.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from eexarray.backend.options import add_cli_options, cli_option_values

PROG = "python -m eexarray.beam"


def chunks_from_text(text: str | None) -> Any:
    """``--chunks time=1,y=512,x=512`` (a dim left out: request-sized tiles, one time step)."""
    if text is None:
        return {}
    chunks: dict[str, int] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip().lstrip("-").isdigit():
            raise ValueError(f"--chunks {text!r} must be written DIM=SIZE,..., e.g. time=1,y=512,x=512")
        chunks[name.strip()] = int(value)
    return chunks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        allow_abbrev=False,  # Beam's flags are not abbreviations of ours
        description="Write an Earth Engine asset to a Zarr store with an Apache Beam pipeline "
        "(eexarray.beam.ReadPixels | xarray_beam.ChunksToZarr). Arguments not listed here, and all after --, "
        "go to Beam's PipelineOptions, e.g. --runner DataflowRunner --temp_location gs://... -- --region us-central1",
    )
    parser.add_argument(
        "source",
        metavar="ASSET_OR_EXPRESSION_FILE",
        help="an asset id (e.g. COPERNICUS/S2_SR_HARMONIZED), or a .json file holding an expression graph",
    )
    parser.add_argument("-o", "--output", required=True, help="the Zarr store: a path or a URL (gs://...)")
    parser.add_argument(
        "--chunks",
        help="chunks of the store, e.g. time=1,y=512,x=512 (default: request-sized tiles, one time step each)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store")
    add_cli_options(parser.add_argument_group("open options (as for open_dataset)"), "download")
    return parser


def _exists(output: str) -> bool:
    """Whether ``output`` holds anything (a local path, or a store on a filesystem Beam knows: gs://...)."""
    from apache_beam.io.filesystems import FileSystems

    return any(FileSystems.exists(path) for path in (output, f"{output}/zarr.json", f"{output}/.zgroup"))


def _beam_arguments(beam_args: list[str], project: str | None) -> list[str]:
    named = any(arg == "--project" or arg.startswith("--project=") for arg in beam_args)
    return [*beam_args, f"--project={project}"] if project and not named else beam_args


def run(argv: Sequence[str] | None = None) -> tuple[str, dict[str, int]]:
    """Parse ``argv``, run the pipeline; the store and what it fetched (``ChunkReader.summary``)."""
    from eexarray._optional import require
    from eexarray.download.command import parse_source

    argv = list(sys.argv[1:] if argv is None else argv)
    ours, after = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    args, beam_args = build_parser().parse_known_args(ours)
    beam_args += after
    beam = require("apache_beam", "beam", PROG)
    xbeam = require("xarray_beam", "beam", PROG)
    from apache_beam.options.pipeline_options import PipelineOptions

    from eexarray.beam import ReadPixels

    if not args.overwrite and _exists(args.output):
        raise FileExistsError(f"{args.output} exists: pass --overwrite to replace it")
    try:
        options = cli_option_values(args, "download")
    except ValueError as error:
        if "--region" in str(error):
            raise ValueError(f"{error} (a Dataflow region goes after --: ... -- --region us-central1)") from None
        raise
    read = ReadPixels(parse_source(args.source), chunks=chunks_from_text(args.chunks), **options)
    pipeline_options = PipelineOptions(_beam_arguments(beam_args, options.get("project")))
    with beam.Pipeline(options=pipeline_options) as pipeline:
        _ = pipeline | read | xbeam.ChunksToZarr(args.output, read.template)
    return args.output, read.reader.summary()


def main(argv: Sequence[str] | None = None) -> int:
    from eexarray.transport import EarthEngineError

    try:
        output, summary = run(argv)
    except (ValueError, TypeError, OSError, ImportError, NotImplementedError, EarthEngineError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    print(f"{output}: {summary['chunks']} chunks from {summary['reads']} reads ({summary['requests']} requests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
