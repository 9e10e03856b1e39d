"""Asset names and open options are validated before any request."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from eexarray.backend.options import parse_options, parse_region, parse_time
from eexarray.naming import InvalidAssetIdError, asset_name, looks_like_asset


@pytest.mark.parametrize(
    "given, full",
    [
        ("COPERNICUS/S2_SR_HARMONIZED", "projects/earthengine-public/assets/COPERNICUS/S2_SR_HARMONIZED"),
        ("ee://LANDSAT/LC08/C02/T1_L2", "projects/earthengine-public/assets/LANDSAT/LC08/C02/T1_L2"),
        ("users/alice/dem", "projects/earthengine-legacy/assets/users/alice/dem"),
        ("projects/my-proj/assets/a/b", "projects/my-proj/assets/a/b"),
        ("projects/foo/bar", "projects/earthengine-legacy/assets/projects/foo/bar"),
    ],
)
def test_asset_names(given, full):
    assert asset_name(given) == full


@pytest.mark.parametrize("bad", ["", "   ", "ee://", "a//b", "a/../b", "a/b c", "projects/p", 42, None])
def test_bad_asset_ids(bad):
    with pytest.raises(InvalidAssetIdError):
        asset_name(bad)


def test_guess_is_offline_and_conservative():
    assert looks_like_asset("ee://X/Y")
    assert looks_like_asset("projects/p/assets/x")
    assert not looks_like_asset("data/file.nc")
    assert not looks_like_asset(3)


def test_regions():
    polygon = {"type": "Polygon", "coordinates": [[[10, 50], [11, 50], [11, 51], [10, 51], [10, 50]]]}
    assert parse_region(polygon) == (10, 50, 11, 51)
    assert parse_region((10, 50, 11, 51)) == (10, 50, 11, 51)
    shapely = pytest.importorskip("shapely.geometry")
    assert parse_region(shapely.box(10, 50, 11, 51)) == (10, 50, 11, 51)


@pytest.mark.parametrize(
    "bad, error, message",
    [
        ((11, 50, 10, 51), ValueError, "inverted"),
        ((10, 50, 10, 51), ValueError, "inverted"),
        ((10, 95, 11, 96), ValueError, "latitude"),
        ("10,50,11,51", TypeError, "region must be"),
        ({"type": "Circle", "coordinates": []}, ValueError, "Circle"),
        ({"type": "Polygon", "coordinates": []}, ValueError, "no coordinates"),
        ((1, 2, 3), TypeError, "region must be"),
        ({"type": "Polygon", "coordinates": [[10, 50], [11, 50], [11, 51]]}, ValueError, "Polygon holds lists of"),
        ({"type": "MultiPolygon", "coordinates": [[[10, 50], [11, 50], [11, 51]]]}, ValueError, "nested wrongly"),
    ],
)
def test_bad_regions(bad, error, message):
    with pytest.raises(error, match=message):
        parse_region(bad)


def test_times():
    assert parse_time("2020-01-02", "start") == "2020-01-02T00:00:00.000000Z"
    assert parse_time(dt.date(2020, 1, 2), "start") == "2020-01-02T00:00:00.000000Z"
    assert parse_time(np.datetime64("2020-01-02T03:04:05"), "end") == "2020-01-02T03:04:05.000000Z"
    with pytest.raises(ValueError, match="'yesterday'"):
        parse_time("yesterday", "start")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"start": "2021-01-01", "end": "2020-01-01"}, ValueError, "not before"),
        ({"bands": ["B1", "B1"]}, ValueError, "more than once"),
        ({"bands": []}, ValueError, "empty"),
        ({"bands": [1]}, TypeError, "band ids"),
        ({"scale": 0}, ValueError, "scale"),
        ({"scale": float("nan")}, ValueError, "scale"),
        ({"crs": "EPSG:nope"}, ValueError, "EPSG:nope"),
        ({"grid": {"dimensions": {"width": 1, "height": 1}}, "crs": "EPSG:4326"}, ValueError, "exclusive"),
        ({"grid": "EPSG:4326"}, TypeError, "grid must be"),
        ({"file_format": "PNG"}, ValueError, "PNG"),
        ({"filter": ""}, ValueError, "filter"),
        ({"mask_and_scale": "yes"}, TypeError, "mask_and_scale"),
    ],
)
def test_bad_options(kwargs, error, message):
    with pytest.raises(error, match=message):
        parse_options(**kwargs)


def test_antimeridian_regions_are_refused_and_others_kept():
    crossing = [[170, -10], [-170, -10], [-170, 10], [170, 10], [170, -10]]
    with pytest.raises(ValueError, match="crosses the antimeridian"):
        parse_region({"type": "Polygon", "coordinates": [crossing]})
    with pytest.raises(ValueError, match="crosses the antimeridian"):
        parse_region({"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[179, 0], [-179, 1]]}})
    # A world box's edges from -180 to 180 join two names of one meridian: kept.
    world = [[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]
    assert parse_region({"type": "Polygon", "coordinates": [world]}) == (-180, -90, 180, 90)
    # Two parts that touch +180 and -180 but leave no gap (the whole band of latitudes): kept.
    halves = [
        [[[-180, 0], [0, 0], [0, 10], [-180, 10], [-180, 0]]],
        [[[0, 0], [180, 0], [180, 10], [0, 10], [0, 0]]],
    ]
    assert parse_region({"type": "MultiPolygon", "coordinates": halves}) == (-180, 0, 180, 10)
    # Parts far from 180 keep their union box.
    apart = [[[[10, 0], [11, 0], [11, 1], [10, 0]]], [[[20, 0], [21, 0], [21, 1], [20, 0]]]]
    assert parse_region({"type": "MultiPolygon", "coordinates": apart}) == (10, 0, 21, 1)
    shapely = pytest.importorskip("shapely.geometry")
    with pytest.raises(ValueError, match="crosses the antimeridian"):
        parse_region(shapely.Polygon(crossing))
