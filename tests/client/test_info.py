"""``eexarray info`` and listing progress bars."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import eexarray
import eexarray.info
from eexarray.cli import main
from eexarray.info import human_bytes, list_folder, summarize_asset
from eexarray.progress import PROGRESS_ENV, progress_enabled, track_listing

QUICKSTART = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"


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


def test_band_grids_without_dimensions_or_affine_are_summarised(server, monkeypatch, capsys):
    """The PixelGrid reference makes both optional; info says "not reported" instead of failing."""
    from eexarray.server import asset_json

    original = asset_json.band_json

    def band_json(band):
        result = original(band)
        result["grid"].pop("dimensions")
        if band.id == "coarse":
            result["grid"].pop("affineTransform")
        return result

    monkeypatch.setattr(asset_json, "band_json", band_json)
    summary = summarize_asset("test/multigrid", endpoint=server.url)
    assert [(b.id, b.crs, b.scale, b.width, b.height) for b in summary.bands] == [
        ("fine", "EPSG:32610", (10.0, -10.0), None, None),
        ("coarse", "EPSG:32610", None, None, None),
    ]
    assert main(["info", "test/multigrid", "--endpoint", server.url]) == 0
    lines = {
        line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith(("fine", "coarse"))
    }
    assert "10, -10" in lines["fine"] and "not reported" in lines["fine"]
    assert lines["coarse"].count("not reported") == 2


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


def test_folder_lists_its_assets_with_band_and_image_counts(server):
    listing = list_folder("test", endpoint=server.url)
    assert (listing.id, listing.type) == ("test", "FOLDER")
    assert [(a.id, a.type, a.band_count, a.image_count, a.more) for a in listing.assets] == [
        ("test/huge", "IMAGE", 4, None, False),
        ("test/long", "IMAGE_COLLECTION", None, 500, False),
        ("test/masked", "IMAGE", 1, None, False),
        ("test/memory", "IMAGE", 2, None, False),
        ("test/mixed", "IMAGE", 4, None, False),
        ("test/multigrid", "IMAGE", 2, None, False),
        ("test/series", "IMAGE_COLLECTION", None, 30, False),
    ]
    series = listing.assets[-1]
    assert (series.start_time, series.end_time) == ("2020-01-01T00:00:00Z", "2020-10-27T00:00:00Z")
    with pytest.raises(ValueError, match="'test/mixed' is a IMAGE; list_folder needs a FOLDER"):
        list_folder("test/mixed", endpoint=server.url)


def test_folder_counts_stop_at_one_listing_page(server, monkeypatch):
    monkeypatch.setattr(eexarray.info, "LIST_PAGE_SIZE", 100)
    long = {a.id: a for a in list_folder("test", endpoint=server.url).assets}["test/long"]
    assert (long.image_count, long.more, long.contents()) == (100, True, "100+ images")


def test_cli_info_on_a_folder_prints_its_assets(server, capsys):
    assert main(["info", "test", "--endpoint", server.url]) == 0
    table = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines() if line.startswith("test/")}
    assert rows["test/series"] == ["IMAGE_COLLECTION", "30", "images", "2020-01-01", "..", "2020-10-27"]
    assert rows["test/masked"] == ["IMAGE", "1", "band", "-"]
    assert "assets  7" in table
    assert main(["info", "ee://test", "--endpoint", server.url, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["type"] == "FOLDER" and len(document["assets"]) == 7
    assert document["assets"][1] == {
        "id": "test/long",
        "name": "projects/earthengine-public/assets/test/long",
        "type": "IMAGE_COLLECTION",
        "band_count": None,
        "image_count": 500,
        "asset_count": None,
        "more": False,
        "start_time": "2000-01-01T00:00:00Z",
        "end_time": document["assets"][1]["end_time"],
    }
    assert main(["info", "test", "--endpoint", server.url, "--start", "2020-01-01"]) == 2
    assert "--start select a collection's images; 'test' is a FOLDER" in capsys.readouterr().err


def test_cli_info_lists_the_demo_catalog(capsys):
    with eexarray.serve() as demo:  # the built-in demo catalog
        assert main(["info", "eexarray/demo", "--endpoint", demo.url]) == 0
        table = capsys.readouterr().out
        assert table in QUICKSTART.read_text(), "docs/quickstart.md shows this listing: paste the new one"
        rows = [line.split() for line in table.splitlines() if line.startswith("eexarray/demo/")]
        assert rows == [
            ["eexarray/demo/DEM", "IMAGE", "2", "bands", "-"],
            ["eexarray/demo/LANDCOVER", "IMAGE", "2", "bands", "-"],
            ["eexarray/demo/S2_LANDSCAPE", "IMAGE_COLLECTION", "25", "images", "2023-01-03", "..", "2023-12-29"],
        ]
        assert main(["info", "eexarray", "--endpoint", demo.url]) == 0
        rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("eexarray/")]
        assert rows == [
            ["eexarray/demo", "FOLDER", "3", "assets", "-"],
            ["eexarray/procedural", "FOLDER", "2", "assets", "-"],
        ]
