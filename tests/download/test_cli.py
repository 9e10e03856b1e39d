"""``eexarray download`` end to end, in a separate process, against the local server."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import rasterio
import xarray as xr

from eexarray.cli import main
from eexarray.download.command import parse_bands, parse_region, parse_scale, parse_source

from .conftest import Counter, reference


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "eexarray.cli", "download", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_cli_downloads_a_region_of_bands_to_geotiff(server, tmp_path):
    out = tmp_path / "cli.tif"
    region = "--region=-123.05,37.88,-122.95,37.93"  # with '=': the value starts with '-'
    result = run(
        "dl/image",
        "-o",
        out,
        "--bands",
        "d,a",
        "--crs",
        "EPSG:4326",
        "--resolution",
        "0.0004",
        region,
        "--endpoint",
        server.url,
        "--memory-limit",
        "3MB",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert "download cli.tif: 100%" in result.stderr and "requests" in result.stderr and "MB/s" in result.stderr
    expected = reference(
        server,
        "dl/image",
        bands=["d", "a"],
        crs="EPSG:4326",
        resolution=0.0004,
        region=(-123.05, 37.88, -122.95, 37.93),
    )
    with rasterio.open(out) as tif:
        assert tif.descriptions == ("d", "a")
        np.testing.assert_array_equal(tif.read(1), expected["d"])
        np.testing.assert_array_equal(tif.read(2), expected["a"])


def test_cli_downloads_a_time_range_of_a_collection_to_netcdf(server, tmp_path):
    out = tmp_path / "cli.nc"
    result = run(
        "dl/series",
        "-o",
        out,
        "--format",
        "NETCDF",
        "--start",
        "2021-01-06",
        "--end",
        "2021-01-16",
        "--endpoint",
        server.url,
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    expected = reference(server, "dl/series", start="2021-01-06", end="2021-01-16")
    with xr.open_dataset(out, mask_and_scale=False) as stored:
        assert list(stored["image_id"].values) == ["dl/series/00001", "dl/series/00002"]
        np.testing.assert_array_equal(stored["red"].values, expected["red"])


def test_cli_downloads_an_expression_file(server, tmp_path):
    load = {
        "functionInvocationValue": {"functionName": "Image.load", "arguments": {"id": {"constantValue": "dl/small"}}}
    }
    select = {"functionName": "Image.select", "arguments": {"input": load, "bandSelectors": {"constantValue": ["b"]}}}
    expression = {"result": "0", "values": {"0": {"functionInvocationValue": select}}}
    graph = tmp_path / "graph.json"
    graph.write_text(json.dumps(expression))
    out = tmp_path / "computed.npy"
    result = run(graph, "-o", out, "--format", "NPY", "--endpoint", server.url, "--no-progress")
    assert result.returncode == 0, result.stderr
    expected = reference(server, expression)
    array = np.load(out)
    assert array.dtype.names == ("b",)
    np.testing.assert_array_equal(array["b"], expected["b"])


def test_cli_refuses_bad_input_with_a_message_and_no_request(server, tmp_path, capsys):
    existing = tmp_path / "there.tif"
    existing.write_text("x")
    counter = Counter(server)
    cases = [
        (("dl/image", "-o", existing, "--endpoint", server.url), "already exists; pass overwrite=True"),
        (("dl/image", "-o", tmp_path / "a.tif", "--region", "1,2,3", "--endpoint", server.url), "needs four numbers"),
        (("dl/image", "-o", tmp_path / "a.tif", "--scale", "ten", "--endpoint", server.url), "'ten' is not"),
        (
            ("dl/image", "-o", tmp_path / "a.tif", "--name", "x", "--endpoint", server.url),
            "names the files inside a zip",
        ),
        ((tmp_path / "missing.json", "-o", tmp_path / "a.tif", "--endpoint", server.url), "does not exist"),
        (("dl/image", "-o", tmp_path / "a.tif", "--bands", "zz", "--endpoint", server.url), "Unknown band(s) ['zz']"),
        (("dl/image", "-o", tmp_path / "a.tif", "--format", "JPEG"), "invalid choice: 'JPEG'"),
    ]
    for args, message in cases:
        try:
            code = main(["download", *map(str, args)])
        except SystemExit as exit:  # argparse's own refusals
            code = exit.code
        stderr = capsys.readouterr().err
        assert code == 2, (args, stderr)
        assert message in stderr, (args, stderr)
    assert counter.pixels == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there.tif"]


def test_cli_argument_parsing(tmp_path):
    expression = {"result": "0", "values": {"0": {"constantValue": 1}}}
    path = tmp_path / "expr.json"
    path.write_text(json.dumps(expression))
    assert parse_source(str(path)) == expression  # handed to open_dataset as a parsed graph
    assert parse_source("COPERNICUS/S2") == "COPERNICUS/S2"
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    try:
        parse_source(str(broken))
    except ValueError as error:
        assert "is not JSON" in str(error)
    else:
        raise AssertionError("broken JSON accepted")
    assert parse_region("-1,2,3.5,4") == (-1.0, 2.0, 3.5, 4.0)
    assert parse_region('{"type": "Point", "coordinates": [1, 2]}') == {"type": "Point", "coordinates": [1, 2]}
    assert parse_scale("10") == 10.0 and parse_scale("10,20") == (10.0, 20.0)
    assert parse_bands(["B4,B8", "B2"]) == ["B4", "B8", "B2"] and parse_bands(None) is None
