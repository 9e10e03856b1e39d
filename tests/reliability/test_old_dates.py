"""Dates before year 1000 work end to end; dates RFC 3339 cannot express get clear errors (issue 12).

``strftime("%Y")`` writes year 999 as ``999``: the client sent, and the server answered,
timestamps no RFC 3339 reader accepts; numpy's datetime64[ns] wrapped such years around
silently (0999 became 2168). Start times outside the ns span now give a datetime64[us]
time coordinate.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import requests
from affine import Affine

import eexarray
from eexarray.backend.computed import _time
from eexarray.backend.metadata import time_coordinate
from eexarray.backend.options import parse_options, parse_time
from eexarray.geometry import PixelGrid
from eexarray.server import InMemoryImage, ServerCollection
from eexarray.server.timestamps import format_time
from eexarray.server.timestamps import parse_time as server_parse_time

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    "value, text",
    [
        ("0999-01-01", "0999-01-01T00:00:00.000000Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
        (dt.date(500, 2, 3), "0500-02-03T00:00:00.000000Z"),
        (dt.datetime(42, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))), "0042-01-01T10:00:00.000000Z"),
        (np.datetime64("0500-01-01T06:00"), "0500-01-01T06:00:00.000000Z"),
        ("9999-12-31T23:59:59.5Z", "9999-12-31T23:59:59.500000Z"),
    ],
)
def test_old_dates_are_written_with_four_digit_years(value, text):
    assert parse_time(value, "start") == text


@pytest.mark.parametrize(
    "value, message",
    [
        ("999-01-01", r"start='999-01-01' is not a date: .*years written with four digits, e.g. '0999-06-01'"),
        ("0000-06-01", r"start='0000-06-01' is not a date: .*dates run from 0001-01-01 to 9999-12-31 UTC"),
        ("-0044-03-15", r"start='-0044-03-15' is not a date: .*dates run from 0001-01-01"),
        ("0001-01-01T00:00:00+01:00", r"start='0001-01-01T00:00:00\+01:00' is out of range in UTC: dates run from"),
        (np.datetime64("-0100-01-01"), r"start=np.datetime64\('-100-01-01'\) is out of range: dates run from"),
        (np.datetime64("12000-01-01"), r"is out of range: dates run from 0001-01-01 to 9999-12-31"),
        (np.datetime64("NaT"), r"start=NaT is not a date"),
    ],
)
def test_dates_rfc3339_cannot_express_get_clear_errors(value, message):
    with pytest.raises(ValueError, match=message):
        parse_time(value, "start")


def test_time_ranges_across_year_1000_compare_as_dates():
    options = parse_options(start="0999-01-01", end="2000-01-01")
    assert (options.start, options.end) == ("0999-01-01T00:00:00.000000Z", "2000-01-01T00:00:00.000000Z")
    with pytest.raises(ValueError, match="is not before end"):
        parse_options(start="2000-01-01", end="0999-01-01")


def test_server_timestamps_keep_four_digit_years():
    assert format_time(dt.datetime(999, 3, 1, tzinfo=UTC)) == "0999-03-01T00:00:00Z"
    assert format_time(dt.datetime(5, 3, 1, 0, 0, 0, 250000, tzinfo=UTC)) == "0005-03-01T00:00:00.25Z"
    assert server_parse_time("0999-03-01T00:00:00Z", "startTime") == dt.datetime(999, 3, 1, tzinfo=UTC)
    with pytest.raises(Exception, match="before 0001-01-01T00:00:00Z in UTC"):
        server_parse_time("0001-01-01T00:00:00+01:00", "startTime")


def test_computed_start_times_keep_four_digit_years():
    millis = (dt.datetime(999, 3, 1, tzinfo=UTC) - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(milliseconds=1)
    assert _time({"system:time_start": millis}) == "0999-03-01T00:00:00.000000Z"


def test_time_coordinates_outside_the_nanosecond_span_are_microseconds():
    usual = time_coordinate(["2020-01-01T00:00:00Z", None])
    assert usual.dtype == np.dtype("datetime64[ns]") and str(usual[0]) == "2020-01-01T00:00:00.000000000"
    old = time_coordinate(["0999-03-01T00:00:00Z", "2020-01-01T00:00:00Z", None])
    assert old.dtype == np.dtype("datetime64[us]")
    assert [str(t) for t in old] == ["0999-03-01T00:00:00.000000", "2020-01-01T00:00:00.000000", "NaT"]


GRID = PixelGrid("EPSG:4326", Affine(1, 0, 0, 0, -1, 0), 2, 2)
STARTS = [dt.datetime(999, 3, 1, tzinfo=UTC), dt.datetime(1500, 6, 1, tzinfo=UTC), dt.datetime(2020, 1, 1, tzinfo=UTC)]


@pytest.fixture(scope="module")
def old_server():
    images = [
        InMemoryImage(f"old/series/{index}", {"v": np.full((2, 2), index + 1, "uint8")}, GRID, start_time=start)
        for index, start in enumerate(STARTS)
    ]
    with eexarray.serve(catalog=[ServerCollection("old/series", images)]) as server:
        yield server


def test_a_collection_from_year_999_opens_with_exact_times(old_server):
    asset = requests.get(f"{old_server.url}/v1/projects/earthengine-public/assets/old/series/0", timeout=30).json()
    assert asset["startTime"] == "0999-03-01T00:00:00Z"
    ds = eexarray.open_dataset("old/series", endpoint=old_server.url)
    assert ds.time.dtype == np.dtype("datetime64[us]")
    assert [str(t) for t in ds.time.values] == [
        "0999-03-01T00:00:00.000000",
        "1500-06-01T00:00:00.000000",
        "2020-01-01T00:00:00.000000",
    ]
    assert ds["v"].values[:, 0, 0].tolist() == [1, 2, 3]
    assert ds.sel(time="0999-03-01")["v"].values.tolist() == [[1, 1], [1, 1]]


@pytest.mark.parametrize(
    "start, end, values",
    [("0999-01-01", "1000-01-01", [1]), ("1000-01-01", None, [2, 3]), (dt.date(900, 1, 1), "1501-01-01", [1, 2])],
)
def test_time_filters_before_year_1000_select_the_right_images(old_server, start, end, values):
    ds = eexarray.open_dataset("old/series", endpoint=old_server.url, start=start, end=end)
    assert ds["v"].values[:, 0, 0].tolist() == values


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00+01:00", "999-01-01", "0000-01-01", 17])
def test_a_sidecar_date_rfc3339_cannot_express_is_a_clear_400(tmp_path, start):
    import rasterio

    with rasterio.open(tmp_path / "old.tif", "w", driver="GTiff", width=2, height=2, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=Affine(1, 0, 0, 0, -1, 0)) as dataset:  # fmt: skip
        dataset.write(np.ones((1, 2, 2), "uint8"))
    (tmp_path / "old.json").write_text(f'{{"startTime": {json.dumps(start)}}}')
    with eexarray.serve(tmp_path) as server:
        response = requests.get(f"{server.url}/v1/projects/earthengine-public/assets/old", timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        'Asset "projects/earthengine-public/assets/old" cannot be read: Sidecar old.json: startTime must be an '
        f"RFC 3339 timestamp (0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z), got {start!r}"
    )


def test_a_preview_finds_an_image_from_year_999_by_its_date(old_server):
    from eexarray.accessor import _image_name

    ds = eexarray.open_dataset("old/series", endpoint=old_server.url)
    assert _image_name(ds, "0999-03-02") == (
        "projects/earthengine-public/assets/old/series/0",
        "old/series/0 (0999-03-01T00:00:00)",
    )
    assert _image_name(ds, np.datetime64("1500-05-01"))[0].endswith("old/series/1")
