"""``eexarray info`` and listing progress bars."""

from __future__ import annotations

import io
import json

import pytest

from eexarray.cli import main
from eexarray.info import human_bytes, summarize_asset
from eexarray.progress import PROGRESS_ENV, progress_enabled, track_listing


def test_collection_summary_counts_images_times_sizes_and_grids(server):
    summary = summarize_asset("test/series", endpoint=server.url)
    assert (summary.type, summary.image_count) == ("IMAGE_COLLECTION", 30)
    assert summary.start_time == "2020-01-01T00:00:00Z"
    assert summary.end_time == "2020-10-27T00:00:00Z"  # day 290 = the last image's time
    assert (summary.first_image, summary.last_image) == ("test/series/00000", "test/series/00029")
    assert summary.size_bytes == 30 * 600 * 400 * 2 * 2  # uint16 red + nir, uncompressed
    assert summary.crs_counts == {"EPSG:32610": 30}
    assert [(b.id, b.dtype, b.crs, b.scale, b.width, b.height) for b in summary.bands] == [
        ("red", "uint16", "EPSG:32610", (10.0, -10.0), 600, 400),
        ("nir", "uint16", "EPSG:32610", (10.0, -10.0), 600, 400),
    ]


def test_filters_select_images(server):
    summary = summarize_asset("test/series", endpoint=server.url, start="2020-02-01", end="2020-03-01")
    assert summary.image_count == 2  # days 40 and 50 (Feb 10, Feb 20); day 60 is March 1st, excluded
    assert (summary.first_image, summary.last_image) == ("test/series/00004", "test/series/00005")


def test_image_summary_has_bands_of_every_dtype_and_nodata(server):
    mixed = summarize_asset("test/mixed", endpoint=server.url)
    assert [(b.id, b.dtype) for b in mixed.bands] == [
        ("u8", "uint8"),
        ("i16", "int16"),
        ("f32", "float32"),
        ("f64", "float64"),
    ]
    assert mixed.image_count == 1 and mixed.first_image is None
    memory = summarize_asset("test/memory", endpoint=server.url)
    assert memory.bands[0].nodata == (-1.0,) and memory.start_time == "2021-05-01T00:00:00Z"


def test_cli_table_and_json(server, capsys):
    assert main(["info", "test/multigrid", "--endpoint", server.url]) == 0
    table = capsys.readouterr().out
    assert "type   IMAGE" in table
    lines = {line.split()[0]: line.split() for line in table.splitlines() if line.startswith(("fine", "coarse"))}
    assert lines["fine"] == ["fine", "uint16", "EPSG:32610", "10,", "-10", "600", "x", "400", "-"]
    assert lines["coarse"] == ["coarse", "uint16", "EPSG:32610", "20,", "-20", "300", "x", "200", "-"]
    assert main(["info", "ee://test/series", "--endpoint", server.url, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["image_count"] == 30 and document["bands"][1]["id"] == "nir"
    assert document["bands"][1]["scale"] == [10.0, -10.0]


def test_cli_errors_name_the_problem(server, capsys):
    assert main(["info", "test/none", "--endpoint", server.url]) == 1
    assert 'Asset "projects/earthengine-public/assets/test/none" not found' in capsys.readouterr().err
    assert main(["info", "test/mixed", "--endpoint", server.url, "--start", "2020-01-01"]) == 2
    assert "'test/mixed' is an IMAGE" in capsys.readouterr().err
    assert main(["info", "test/series", "--endpoint", server.url, "--start", "June"]) == 2
    assert "start='June' is not a date" in capsys.readouterr().err


def test_human_bytes():
    assert [human_bytes(n) for n in (None, 999, 1000, 1_536_000, 2 * 10**12)] == [
        "unknown",
        "999 B",
        "1.0 kB",
        "1.5 MB",
        "2.0 TB",
    ]


def test_listing_bar_appears_only_past_the_threshold():
    quiet = io.StringIO()
    assert list(track_listing(range(5), description="listing x", progress=True, threshold=5, file=quiet)) == list(
        range(5)
    )
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    assert list(track_listing(range(12), description="listing x", progress=True, threshold=5, file=shown)) == list(
        range(12)
    )
    assert shown.getvalue().rstrip().splitlines()[-1].split("\r")[-1].startswith("listing x: 12 images")
    off = io.StringIO()
    list(track_listing(range(12), description="listing x", progress=False, threshold=5, file=off))
    assert off.getvalue() == ""


def test_progress_setting(monkeypatch):
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert progress_enabled() is True and progress_enabled(False) is False
    monkeypatch.setenv(PROGRESS_ENV, "off")
    assert progress_enabled() is False
    monkeypatch.setenv(PROGRESS_ENV, "maybe")
    with pytest.raises(ValueError, match="EEXARRAY_PROGRESS='maybe'"):
        progress_enabled()
