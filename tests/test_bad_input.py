"""Bad input, refused early and clearly: each case asserts the exception type, a message naming the
bad value and what would be valid, and that no pixel request reached the server (``/_stats``).

Cases cover ``eexarray.open_dataset``, ``eexarray.download``, ``eexarray.serve`` and the CLI
(``eexarray.cli.main``). A case is ``(id, call, exception type, [regexes the message must match])``;
``call(ctx)`` gets a context with the server URL and a temporary folder.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

import eexarray
from eexarray.cli import main as cli_main
from eexarray.download import download
from eexarray.server import ProceduralImage, procedural_collection
from eexarray.transport import AssetNotFoundError, CredentialsError, EarthEngineRequestError, InvalidEndpointError
from tests.reliability.conftest import SMALL_GRID, catalog

SMALL = "rel/small"
WIDE_BANDS = [f"w{index}" for index in range(1030)]
GRID_BOTH_CRS = {
    "crsCode": "EPSG:32610", "crsWkt": 'PROJCS["x"]', "dimensions": {"width": 4, "height": 4},
    "affineTransform": {"scaleX": 10, "scaleY": -10, "translateX": 500000, "translateY": 4200000},
}  # fmt: skip
GRID_ONE_CRS = {
    "crsCode": "EPSG:32610", "dimensions": {"width": 4, "height": 4},
    "affineTransform": {"scaleX": 10, "scaleY": -10, "translateX": 500000, "translateY": 4200000},
}  # fmt: skip
# A polygon from 170 E to 170 W (20 degrees wide); as a bounding box it would be the other 340 degrees.
ANTIMERIDIAN_POLYGON = {
    "type": "Polygon",
    "coordinates": [[[170, -10], [-170, -10], [-170, 10], [170, 10], [170, -10]]],
}
# The same area as RFC 7946 writes it: split into two parts at the antimeridian.
SPLIT_AT_ANTIMERIDIAN = {
    "type": "MultiPolygon",
    "coordinates": [
        [[[170, -10], [180, -10], [180, 10], [170, 10], [170, -10]]],
        [[[-180, -10], [-170, -10], [-170, 10], [-180, 10], [-180, -10]]],
    ],
}


@dataclass
class Context:
    url: str
    tmp: Path

    def open(self, asset: Any = SMALL, **options: Any):
        return eexarray.open_dataset(asset, endpoint=self.url, **options)

    def existing_file(self) -> Path:
        """A file (not a directory) in the test's temporary folder."""
        path = self.tmp / "a-file"
        path.write_text("not a directory")
        return path

    def download(self, asset: Any = SMALL, output: str = "out.tif", **options: Any):
        return download(asset, self.tmp / output, endpoint=self.url, progress=False, **options)

    def cli(self, *argv: str) -> None:
        """Run the CLI; a failure is re-raised as CliFailure(exit code, stderr) for the table."""
        raise CliFailure(*_run_cli(list(argv)))

    def existing(self, name: str = "exists.tif") -> str:
        path = self.tmp / name
        path.write_bytes(b"already here")
        return str(path)

    def folder(self, name: str) -> str:
        """A folder of the user's, with something in it (never to be deleted); its name, relative to tmp."""
        path = self.tmp / name
        path.mkdir()
        (path / "keep.txt").write_text("keep")
        return name

    def download_while_locked(self, output: str):
        from eexarray.download.atomic import locked

        with locked(self.tmp / output):  # as another download to the same output would
            return self.download(output=output)

    def corrupt_root(self) -> str:
        root = self.tmp / "root"
        root.mkdir()
        (root / "broken.tif").write_bytes(b"II*\x00 this is not a GeoTIFF")
        return str(root)


class CliFailure(Exception):
    def __init__(self, code: int, stderr: str):
        super().__init__(f"exit code {code}: {stderr}")
        self.code = code


_capsys: Any = None


def _run_cli(argv: list[str]) -> tuple[int, str]:
    _capsys.readouterr()
    try:
        code = cli_main(argv)
    except SystemExit as exit_:  # argparse refusals
        code = exit_.code
    return code, _capsys.readouterr().err


def ctx_post(ctx: Context, asset: str, body: dict[str, Any]) -> None:
    """A raw getPixels through the transport (for the server-side limits)."""
    from eexarray.transport import ConnectionConfig, RestClient

    RestClient(ConnectionConfig.create(ctx.url)).post_json(
        f"projects/earthengine-public/assets/{asset}:getPixels", body
    )


Case = tuple[str, Callable[[Context], Any], type[BaseException], list[str]]

CASES: list[Case] = [
    # -- open_dataset: the asset ----------------------------------------------------------
    ("malformed-asset-id", lambda c: c.open("bad id!"), ValueError, ["'bad id!'", "letters, digits"]),
    ("empty-asset-id", lambda c: c.open(""), ValueError, ["''", "expected e.g."]),
    ("asset-id-not-a-string", lambda c: c.open(42), ValueError, ["int", "must be a string"]),
    (
        "full-name-without-path",
        lambda c: c.open("projects/p/assets"),
        ValueError,
        ["'projects/p/assets'", "projects/<project>/assets/<path>"],
    ),
    ("nonexistent-asset", lambda c: c.open("rel/nope"), AssetNotFoundError, ["rel/nope", "not found"]),
    ("folder-not-image", lambda c: c.open("rel"), ValueError, ["'rel' is a FOLDER", "IMAGE or IMAGE_COLLECTION"]),
    # -- open_dataset: grid options --------------------------------------------------------
    (
        "crs-unknown-epsg",
        lambda c: c.open(crs="EPSG:99999", scale=10),
        ValueError,
        ["EPSG:99999", "such as 'EPSG:32610'"],
    ),
    ("crs-garbage", lambda c: c.open(crs="not a crs", scale=10), ValueError, ["'not a crs'", "WKT string"]),
    ("scale-zero", lambda c: c.open(scale=0), ValueError, ["got 0", "positive finite number"]),
    ("scale-negative", lambda c: c.open(scale=-10), ValueError, ["got -10", "positive finite number"]),
    ("scale-nan", lambda c: c.open(scale=float("nan")), ValueError, ["got nan", "positive finite number"]),
    ("scale-text", lambda c: c.open(scale="ten"), ValueError, ["'ten'", "positive number"]),
    (
        "region-outside-image",
        lambda c: c.open(region=(10, 10, 11, 11)),
        ValueError,
        [r"\(10\.0, 10\.0, 11\.0, 11\.0\)", "does not intersect", "extent is"],
    ),
    (
        "region-empty",
        lambda c: c.open(region=(10, 10, 10, 11)),
        ValueError,
        [r"\(10\.0, 10\.0, 10\.0, 11\.0\)", "west < east"],
    ),
    (
        "region-inverted",
        lambda c: c.open(region=(11, 10, 10, 11)),
        ValueError,
        [r"\(11\.0, 10\.0, 10\.0, 11\.0\)", "west < east"],
    ),
    ("region-wrong-type", lambda c: c.open(region="california"), TypeError, ["'california'", "GeoJSON geometry dict"]),
    (
        "region-polygon-across-antimeridian",
        lambda c: c.open(region=ANTIMERIDIAN_POLYGON),
        ValueError,
        [
            "crosses the antimeridian",
            "from longitude 170 to -170",
            r"Split it at 180.*\(170, -10, 180, 10\) and \(-180, -10, -170, 10\)",
        ],
    ),
    (
        "region-split-at-antimeridian",
        lambda c: c.open(region=SPLIT_AT_ANTIMERIDIAN),
        ValueError,
        ["touch both longitude -180 and 180", r"gap between them \(from -170 to 170\)", "Open each side"],
    ),
    (
        "region-box-across-antimeridian",
        lambda c: c.open(region=(170, -10, -170, 10)),
        ValueError,
        [r"\(170\.0, -10\.0, -170\.0, 10\.0\)", "west < east", "antimeridian", r"\(170, -10, 180, 10\)"],
    ),
    (
        "scale-and-resolution",
        lambda c: c.open(scale=10, resolution=0.001),
        ValueError,
        ["scale=10", "resolution=0.001", "pass one", "metres"],
    ),
    ("resolution-zero", lambda c: c.open(resolution=0), ValueError, ["resolution", "got 0", "CRS units"]),
    (
        "resolution-pair-of-three",
        lambda c: c.open(resolution=(1, 2, 3)),
        ValueError,
        [r"resolution must be a number or an \(x, y\) pair", r"\(1, 2, 3\)"],
    ),
    (
        "scale-tiny-grid-too-large",
        lambda c: c.open(scale=1e-5),
        ValueError,
        ["256,000,000 x 128,000,000 pixels", "max_pixels_per_side=1,048,576", "scale=1e-05 is metres"],
    ),
    (
        "resolution-tiny-degrees-too-large",
        lambda c: c.open(crs="EPSG:4326", resolution=1e-9),
        ValueError,
        [r"\d{2},\d{3},\d{3} x \d{2},\d{3},\d{3} pixels", "degree", "resolution=1e-09 is CRS units"],
    ),
    (
        "grid-dict-too-large",
        lambda c: c.open(grid={**GRID_ONE_CRS, "dimensions": {"width": 2**21, "height": 2}}),
        ValueError,
        ["from grid= is 2,097,152 x 2 pixels", "max_pixels_per_side"],
    ),
    (
        "too-many-tiles-per-band",
        lambda c: c.open("rel/wide", resolution=0.005),
        ValueError,
        [r"512,000 x 256,000 pixels, 1030 band", "request tiles", "fewer bands"],
    ),
    (
        "max-pixels-per-side-zero",
        lambda c: c.open(max_pixels_per_side=0),
        ValueError,
        ["max_pixels_per_side", "got 0", "positive integer"],
    ),
    (
        "max-pixels-per-side-text",
        lambda c: c.open(max_pixels_per_side="big"),
        ValueError,
        ["max_pixels_per_side", "'big'", "positive integer"],
    ),
    (
        "crs-unknown-sr-org",
        lambda c: c.open(crs="SR-ORG:1234", scale=10),
        ValueError,
        ["'SR-ORG:1234'", "SR-ORG:6974", "WKT"],
    ),
    (
        "crs-differs-without-scale",
        lambda c: c.open(crs="EPSG:4326"),
        ValueError,
        [r"scale= \(metres per pixel\) or resolution= \(CRS units per pixel\)", "EPSG:4326", "EPSG:32610"],
    ),
    (
        "cli-resolution-not-a-number",
        lambda c: c.cli("download", SMALL, "-o", str(c.tmp / "x.tif"), "--resolution", "fine", "--endpoint", c.url),
        CliFailure,
        ["--resolution 'fine'", "comma-separated list of numbers"],
    ),
    (
        "cli-max-pixels-per-side-not-int",
        lambda c: c.cli("download", SMALL, "-o", str(c.tmp / "x.tif"), "--max-pixels-per-side", "lots"),
        CliFailure,
        ["--max-pixels-per-side", "invalid int value: 'lots'"],
    ),
    ("region-beyond-180", lambda c: c.open(region=(170, 10, 200, 11)), ValueError, ["200", r"longitude \[-180, 180\]"]),
    (
        "region-not-a-geometry",
        lambda c: c.open(region={"type": "Circle", "coordinates": [1, 2]}),
        ValueError,
        ["'Circle'", "Polygon, MultiPolygon"],
    ),
    ("grid-crscode-and-crswkt", lambda c: c.open(grid=GRID_BOTH_CRS), ValueError, ["crsCode or crsWkt, not both"]),
    (
        "grid-with-crs",
        lambda c: c.open(grid=GRID_BOTH_CRS, crs="EPSG:4326"),
        ValueError,
        ["grid is exclusive with crs"],
    ),
    (
        "grid-wrong-type",
        lambda c: c.open(grid="EPSG:4326"),
        TypeError,
        ["'EPSG:4326'", "PixelGrid or a REST PixelGrid dict"],
    ),
    # -- open_dataset: bands, times, filters ----------------------------------------------
    ("unknown-band", lambda c: c.open(bands=["u", "zz"]), ValueError, [r"\['zz'\]", r"available: \['u', 'f'\]"]),
    ("duplicate-band", lambda c: c.open(bands=["u", "u"]), ValueError, [r"\['u'\] more than once", "selected once"]),
    ("no-bands", lambda c: c.open(bands=[]), ValueError, ["bands is empty", "at least one band"]),
    (
        "more-than-1024-bands-server",
        lambda c: ctx_post(c, "rel/wide", {"fileFormat": "NPY", "bandIds": WIDE_BANDS[:1025]}),
        EarthEngineRequestError,
        [r"Number of bands \(1025\)", "less than or equal to 1024"],
    ),
    (
        "start-after-end",
        lambda c: c.open("rel/series", start="2021-01-01", end="2020-01-01"),
        ValueError,
        ["start='2021-01-01'", "end='2020-01-01'", "not before"],
    ),
    ("unparseable-date", lambda c: c.open("rel/series", start="yesterday"), ValueError, ["'yesterday'", "ISO 8601"]),
    (
        "three-digit-year",
        lambda c: c.open("rel/series", start="999-01-01"),
        ValueError,
        ["start='999-01-01'", "four digits", "'0999-06-01'"],
    ),
    (
        "year-zero",
        lambda c: c.open("rel/series", end="0000-06-01"),
        ValueError,
        ["end='0000-06-01'", "0001-01-01 to 9999-12-31 UTC"],
    ),
    (
        "year-zero-in-utc",
        lambda c: c.open("rel/series", start="0001-01-01T00:00:00+01:00"),
        ValueError,
        [r"start='0001-01-01T00:00:00\+01:00' is out of range in UTC"],
    ),
    ("nat-date", lambda c: c.open("rel/series", start=np.datetime64("NaT")), ValueError, ["start=NaT is not a date"]),
    (
        "datetime64-before-year-1",
        lambda c: c.open("rel/series", start=np.datetime64("-0100-01-01")),
        ValueError,
        ["'-100-01-01'", "out of range", "0001-01-01 to 9999-12-31"],
    ),
    (
        "band-named-like-a-coordinate",
        lambda c: c.open("rel/clash"),
        ValueError,
        [r"band\(s\) \['y'\] have the name of a coordinate", r"bands=\[\.\.\.\]"],
    ),
    (
        "dates-on-an-image",
        lambda c: c.open(start="2020-01-01"),
        ValueError,
        ["'rel/small' is an IMAGE", "image collections"],
    ),
    ("empty-filter", lambda c: c.open("rel/series", filter=""), ValueError, ["got ''", "AIP-160"]),
    (
        "malformed-filter",
        lambda c: c.open("rel/series", filter="x AND ("),  # a bare name is a property (GDAL's EEDA syntax)
        EarthEngineRequestError,
        ["Invalid filter", "expected a comparison operator", "after 'x'", "found 'AND'"],
    ),
    # -- open_dataset: connection ------------------------------------------------------------
    (
        "endpoint-not-http",
        lambda c: eexarray.open_dataset(SMALL, endpoint="ftp://x"),
        InvalidEndpointError,
        ["'ftp://x'", "http\\(s\\) URL"],
    ),
    (
        "endpoint-bad-port",
        lambda c: eexarray.open_dataset(SMALL, endpoint="http://127.0.0.1:abc"),
        InvalidEndpointError,
        ["'http://127.0.0.1:abc'", "invalid port"],
    ),
    (
        "endpoint-no-host",
        lambda c: eexarray.open_dataset(SMALL, endpoint="http://"),
        InvalidEndpointError,
        ["'http://'", "such as"],
    ),
    (
        "credentials-not-google-auth",
        lambda c: c.open(credentials="ya29.token"),
        TypeError,
        ["got str", "google-auth credentials"],
    ),
    ("max-concurrency-zero", lambda c: c.open(max_concurrency=0), ValueError, ["got 0", "positive integer"]),
    ("empty-project", lambda c: c.open(project=""), ValueError, ["got ''", "Cloud project id"]),
    ("unknown-file-format", lambda c: c.open(file_format="PNG"), ValueError, ["'PNG'", "'NPY', 'GEO_TIFF'"]),
    ("unknown-option", lambda c: c.open(colour="red"), TypeError, [r"\['colour'\]", "valid options are"]),
    ("mask-and-scale-not-bool", lambda c: c.open(mask_and_scale="yes"), TypeError, ["'yes'", "True or False"]),
    # -- open_dataset: resampling, collections, cost and deadline options ------------------
    ("resampling-unknown", lambda c: c.open(resampling="cubic"), ValueError, ["'cubic'", "bilinear", "bicubic"]),
    ("resampling-not-text", lambda c: c.open(resampling=3), ValueError, ["resampling=3", "nearest"]),
    ("request-cache-not-a-path", lambda c: c.open(request_cache=123), TypeError, ["123", "directory path"]),
    (
        "request-cache-a-file",
        lambda c: c.open(request_cache=str(c.existing_file())),
        ValueError,
        ["request_cache=", "cannot be used as a directory"],
    ),
    ("properties-not-a-list", lambda c: c.open(properties=5), TypeError, ["got 5", "list of property names"]),
    ("properties-numbers", lambda c: c.open(properties=[1, 2]), TypeError, [r"\[1, 2\]", "property names"]),
    ("groupby-unknown", lambda c: c.open(groupby="day"), ValueError, ["'day'", "solar_day"]),
    ("max-images-zero", lambda c: c.open(max_images=0), ValueError, ["max_images=0", "at least 1"]),
    ("max-images-text", lambda c: c.open(max_images="many"), TypeError, ["'many'", "positive integer or None"]),
    ("request-timeout-negative", lambda c: c.open(request_timeout=-1), ValueError, ["got -1", "positive, finite"]),
    ("request-timeout-text", lambda c: c.open(request_timeout="slow"), ValueError, ["'slow'", "seconds"]),
    ("bad-chunks", lambda c: c.open(chunks="bad"), ValueError, ["'bad'", "'auto', a dict, an int or None"]),
    # -- a malformed server root ----------------------------------------------------------------
    (
        "root-with-a-corrupt-geotiff",
        lambda c: _open_corrupt_root(c),
        EarthEngineRequestError,
        ["broken", "FAILED_PRECONDITION|GeoTIFF|not"],
    ),
    # -- serve --------------------------------------------------------------------------------
    ("serve-root-missing", lambda c: eexarray.serve(str(c.tmp / "nope")), ValueError, ["nope'", "is not a directory"]),
    (
        "serve-root-is-a-file",
        lambda c: eexarray.serve(c.existing("file.txt")),
        ValueError,
        ["file.txt'", "is not a directory"],
    ),
    ("serve-port-out-of-range", lambda c: eexarray.serve(port=70000), ValueError, ["70000", "0..65535"]),
    ("serve-fault-fraction", lambda c: eexarray.serve(faults="429=2"), ValueError, ["2", r"\[0, 1\]"]),
    (
        "serve-fault-kind",
        lambda c: eexarray.serve(faults="bogus=0.1"),
        ValueError,
        ["'bogus'", "400-599, 'reset' or 'truncate'"],
    ),
    ("serve-fault-total", lambda c: eexarray.serve(faults="429=0.6,503=0.6"), ValueError, ["1.2", "at most 1"]),
    ("serve-negative-latency", lambda c: eexarray.serve(latency_ms=-1), ValueError, ["got -1", "non-negative"]),
    (
        "serve-duplicate-asset",
        lambda c: eexarray.serve(catalog=catalog() + catalog()),
        ValueError,
        ["rel/soak", "twice"],
    ),
    (
        "serve-catalog-entry-type",
        lambda c: eexarray.serve(catalog=["x"]),
        TypeError,
        ["got str", "ServerImage or ServerCollection"],
    ),
    # -- the CLI ------------------------------------------------------------------------------
    ("cli-unknown-command", lambda c: c.cli("bogus"), CliFailure, ["exit code 2", "invalid choice: 'bogus'"]),
    (
        "cli-serve-bad-port",
        lambda c: c.cli("serve", "--port", "abc"),
        CliFailure,
        ["exit code 2", "invalid int value: 'abc'"],
    ),
    (
        "cli-serve-missing-root",
        lambda c: c.cli("serve", "--root", str(c.tmp / "nope"), "--port", "0"),
        CliFailure,
        ["exit code 2", "nope'", "is not a directory"],
    ),
    (
        "cli-serve-bad-faults",
        lambda c: c.cli("serve", "--faults", "429=x", "--port", "0"),
        CliFailure,
        ["exit code 2", "'x'", r"number in \[0, 1\]"],
    ),
    (
        "cli-download-bad-id",
        lambda c: c.cli("download", "bad id!", "-o", str(c.tmp / "o.tif"), "--endpoint", c.url),
        CliFailure,
        ["exit code 2", "'bad id!'", "letters, digits"],
    ),
    (
        "cli-download-unknown-format",
        lambda c: c.cli("download", SMALL, "-o", str(c.tmp / "o.x"), "--format", "JPEG"),
        CliFailure,
        ["exit code 2", "invalid choice: 'JPEG'", "GEO_TIFF"],
    ),
    (
        "cli-download-existing-output",
        lambda c: c.cli("download", SMALL, "-o", c.existing(), "--endpoint", c.url),
        CliFailure,
        ["exit code 2", "exists.tif' already exists", "overwrite"],
    ),
    # -- download -----------------------------------------------------------------------------
    ("download-unknown-format", lambda c: c.download(format="JPEG"), ValueError, ["'JPEG'", "GEO_TIFF"]),
    (
        "download-existing-output",
        lambda c: c.download(output=Path(c.existing()).name),
        FileExistsError,
        ["exists.tif' already exists", "overwrite=True"],
    ),
    (
        "download-missing-folder",
        lambda c: c.download(output="no/such/folder/o.tif"),
        FileNotFoundError,
        ["no/such/folder'", "does not exist"],
    ),
    ("download-bad-memory-limit", lambda c: c.download(memory_limit="lots"), ValueError, ["'lots'", "'256MB'"]),
    (
        "download-bad-name",
        lambda c: c.download(output="o.zip", format="ZIPPED_GEO_TIFF", name="../x"),
        ValueError,
        ["'../x'", "letters, digits"],
    ),
    (
        "download-inverted-region",
        lambda c: c.download(region=(1, 1, 0, 0)),
        ValueError,
        [r"\(1\.0, 1\.0, 0\.0, 0\.0\)", "west < east"],
    ),
    ("download-unknown-band", lambda c: c.download(bands=["zz"]), ValueError, [r"\['zz'\]", "available"]),
    (
        "download-extension-of-another-format",
        lambda c: c.download(output="o.nc", format="GEO_TIFF"),
        ValueError,
        [r"o\.nc' has the extension '\.nc' of NETCDF", "format='GEO_TIFF'", r"\.tif or \.tiff"],
    ),
    (
        "download-unknown-extension",
        lambda c: c.download(output="o.png"),
        ValueError,
        [r"extension '\.png'", r"'\.nc'", "GEO_TIFF"],
    ),
    (
        "download-file-per-band-with-a-tif-name",
        lambda c: c.download(output="o.tif", file_per_band=True),
        ValueError,
        [r"'\.tif' of GEO_TIFF", "ZIPPED_GEO_TIFF_PER_BAND", r"\.zip"],
    ),
    (
        "download-overwrite-a-folder-with-a-file",
        lambda c: c.download(output=c.folder("projects"), overwrite=True),
        IsADirectoryError,
        ["projects' is a folder", "never replaces a folder"],
    ),
    (
        "download-overwrite-a-foreign-folder-as-zarr",
        lambda c: c.download(output=c.folder("data.zarr"), overwrite=True),
        FileExistsError,
        ["data.zarr' is a folder that is not a Zarr store written by eexarray download", "never deleted"],
    ),
    (
        "download-overwrite-a-file-with-a-zarr-store",
        lambda c: c.download(output=Path(c.existing("data.zarr")).name, overwrite=True),
        FileExistsError,
        ["data.zarr' is a file", "never replaces a file"],
    ),
    (
        "download-folder-in-the-way-of-the-partial",
        lambda c: c.download(output=c.folder("o.tif.partial").removesuffix(".partial")),
        IsADirectoryError,
        [r"leftover '.*o\.tif\.partial' is a folder"],
    ),
    (
        "download-output-locked",
        lambda c: c.download_while_locked("o.tif"),
        OSError,
        ["another download to '.*o.tif' is running", "Wait for it"],
    ),
    (
        "cli-download-extension-of-another-format",
        lambda c: c.cli("download", SMALL, "-o", str(c.tmp / "o.zarr"), "--format", "NPY", "--endpoint", c.url),
        CliFailure,
        ["exit code 2", r"'\.zarr' of ZARR, but format='NPY'"],
    ),
]


def _open_corrupt_root(ctx: Context):
    with eexarray.serve(ctx.corrupt_root()) as rooted:
        eexarray.open_dataset("broken", endpoint=rooted.url)


@pytest.fixture(scope="module")
def bad_input_server():
    entries = catalog() + [
        procedural_collection("rel/series", SMALL_GRID, 3, dtypes=("uint16",)),
        ProceduralImage("rel/wide", SMALL_GRID.with_dimensions(4, 4), dtypes=("uint8",) * 1030, band_ids=WIDE_BANDS),
        ProceduralImage("rel/clash", SMALL_GRID.with_dimensions(4, 4), dtypes=("uint8", "uint8"), band_ids=("y", "v")),
    ]
    with eexarray.serve(catalog=entries) as server:
        yield server


def test_there_are_at_least_30_cases():
    assert len(CASES) >= 30
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("name, call, error_type, patterns", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_refused_clearly_before_any_pixel_request(
    bad_input_server, tmp_path, capsys, monkeypatch, name, call, error_type, patterns
):
    global _capsys
    _capsys = capsys
    monkeypatch.chdir(tmp_path)
    requests.post(f"{bad_input_server.url}/_stats/reset", timeout=10).raise_for_status()
    with pytest.raises(error_type) as caught:
        call(Context(bad_input_server.url, tmp_path))
    message = str(caught.value)
    for pattern in patterns:
        assert re.search(pattern, message), f"{name}: {pattern!r} not in {message!r}"
    stats = requests.get(f"{bad_input_server.url}/_stats", timeout=10).json()
    assert stats["pixel_requests"] == [] and stats["requests"].get("getPixels", 0) == (
        1 if name.endswith("-server") else 0
    ), stats["requests"]


def test_unreadable_credentials_fail_clearly_without_touching_the_network(tmp_path, monkeypatch):
    """GOOGLE_APPLICATION_CREDENTIALS naming a bad file, with Google's endpoint: a clear error, no connection."""
    connections = []

    def no_network(self, address, *args, **kwargs):
        connections.append(address)
        raise AssertionError(f"network touched: {address}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.delenv("EEXARRAY_ENDPOINT", raising=False)
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json")
    for path, reason in ((garbled, "is not a valid json file"), (tmp_path / "missing.json", "was not found")):
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
        with pytest.raises(CredentialsError) as caught:
            eexarray.open_dataset("COPERNICUS/S2_SR_HARMONIZED")
        message = str(caught.value)
        assert str(path) in message and reason in message
        assert "https://earthengine.googleapis.com" in message and "gcloud auth application-default login" in message
    assert connections == []
    assert os.environ["GOOGLE_APPLICATION_CREDENTIALS"].endswith("missing.json")
