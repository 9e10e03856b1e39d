"""AIP-160 filter parsing and evaluation over image asset JSON (eexarray.server.filters)."""

from __future__ import annotations

import operator
from unittest import mock

import ee._cloud_api_utils as cloud_api_utils
import ee.data
import pytest
import shapely.geometry
from hypothesis import given, settings
from hypothesis import strategies as st

from eexarray.server.filters import FilterError, parse_filter, timestamp_ns
from eexarray.server.geojson import intersects as shapes_intersect
from eexarray.server.geojson import parse_geometry as shape_from_geojson

SQUARE_0_10 = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]}


def asset(
    index: int = 3,
    start: str = "2020-01-05T00:00:00Z",
    end: str = "2020-01-06T00:00:00Z",
    geometry: dict | None = SQUARE_0_10,
    **properties,
) -> dict:
    props = {"CLOUDY_PIXEL_PERCENTAGE": 12.5, "SPACECRAFT": "S2A", "index": index}
    props.update(properties)
    result = {
        "type": "IMAGE",
        "id": f"A/B/img{index}",
        "name": f"projects/earthengine-public/assets/A/B/img{index}",
        "startTime": start,
        "endTime": end,
        "updateTime": "2021-03-04T05:06:07.891011Z",
        "properties": props,
    }
    if geometry is not None:
        result["geometry"] = geometry
    return result


IMAGES = [
    asset(0, "2019-12-31T23:59:59.999Z", "2020-01-01T00:00:00Z", CLOUDY_PIXEL_PERCENTAGE=50, SPACECRAFT="S2B"),
    asset(1, "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z", CLOUDY_PIXEL_PERCENTAGE=5),
    asset(
        2,
        "2020-06-01T12:00:00+02:00",
        "2020-06-01T12:00:00+02:00",
        CLOUDY_PIXEL_PERCENTAGE=19.999,
        geometry={"type": "Polygon", "coordinates": [[[20, 20], [30, 20], [30, 30], [20, 30], [20, 20]]]},
    ),
    asset(3, "2021-01-01T00:00:00.5Z", "2021-01-02T00:00:00Z", CLOUDY_PIXEL_PERCENTAGE=20, geometry=None),
]


def matching(filter_text: str, images: list[dict] = IMAGES) -> list[int]:
    predicate = parse_filter(filter_text)
    return [image["properties"]["index"] for image in images if predicate(image)]


# ----------------------------------------------------------------- the official client's filters


def client_list_assets_params(params: dict) -> dict:
    """What ee.data.listImages hands to listAssets (network call replaced by a capture)."""
    captured: dict = {}

    def capture(list_assets_params):
        captured.update(list_assets_params)
        return {"assets": []}

    with mock.patch.object(ee.data, "listAssets", capture):
        ee.data.listImages(params)
    return captured


def test_list_images_filter_from_official_client_with_dates_region_and_properties():
    params = client_list_assets_params(
        {
            "parent": "A/B",
            "startTime": "2020-01-01T00:00:00.000Z",
            "endTime": "2020-06-01",
            "region": {"type": "Polygon", "coordinates": [[[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]]},
            "properties": ["CLOUDY_PIXEL_PERCENTAGE<20", "SPACECRAFT=S2A"],
        }
    )
    text = params["filter"]
    # The exact shape this test relies on: single-quoted JSON inside intersects("...").
    assert text.startswith('startTime >= "2020-01-01T00:00:00.000Z" AND endTime < "2020-06-01" AND intersects("{\'type')
    assert text.endswith("AND properties.CLOUDY_PIXEL_PERCENTAGE<20 AND properties.SPACECRAFT=S2A")
    assert matching(text) == [1]  # 0: S2B/cloudy/before start; 2: outside region and endTime too late; 3: too late


def test_list_images_filter_combines_user_filter_and_wkt_region():
    params = client_list_assets_params(
        {
            "parent": "A/B",
            "filter": "properties.index >= 1",
            "region": "POLYGON((25 25, 26 25, 26 26, 25 25))",
        }
    )
    assert params["filter"] == 'properties.index >= 1 AND intersects("POLYGON((25 25, 26 25, 26 26, 25 25))")'
    assert matching(params["filter"]) == [2]


def test_get_list_filter_with_millisecond_times_and_bbox():
    params = cloud_api_utils.convert_get_list_params_to_list_assets_params(
        {"id": "A/B", "starttime": 1577836800000, "endtime": 1593561600123, "bbox": [9.5, -1, 25, 1]}
    )
    assert params["filter"] == (
        'startTime >= "2020-01-01T00:00:00Z" AND endTime < "2020-07-01T00:00:00.123000Z" AND '
        "intersects(\"{'type':'Polygon','coordinates':[[[9.5,-1],[25,-1],[25,1],[9.5,1],[9.5,-1]]]}\")"
    )
    assert matching(params["filter"]) == [1]  # 0 starts too early; 2 misses the bbox; 3 has no geometry


def test_docstring_example_of_official_client_parses():
    text = (
        'properties.my_property>=1 AND properties.my_property<2 AND startTime >= "2019-01-01T00:00:00.000Z" AND '
        "endTime < \"2020-01-01T00:00:00.000Z\" AND intersects(\"{'type':'Point','coordinates':[0,0]}\")"
    )
    images = [
        asset(1, "2019-05-01T00:00:00Z", "2019-05-02T00:00:00Z", my_property=1.5),
        asset(2, "2019-05-01T00:00:00Z", "2019-05-02T00:00:00Z", my_property=2),
        asset(3, "2019-05-01T00:00:00Z", "2020-01-01T00:00:00Z", my_property=1),
    ]
    assert matching(text, images) == [1]


# ----------------------------------------------------------------- times


@pytest.mark.parametrize(
    "text, expected",
    [
        ('startTime >= "2020-01-01T00:00:00Z"', [1, 2, 3]),
        ('startTime >= "2020-01-01"', [1, 2, 3]),
        ("startTime >= 2020-01-01", [1, 2, 3]),  # bare timestamps need no quotes
        ('startTime < "2020-01-01T00:00:00.000000001Z"', [0, 1]),
        ('startTime = "2019-12-31T23:59:59.999000Z"', [0]),
        ('startTime = "2019-12-31T23:59:59.999Z"', [0]),
        ('startTime = "2020-01-01T00:59:59.999+01:00"', [0]),
        ('startTime = "2020-06-01T10:00:00Z"', [2]),  # stored with a +02:00 offset
        ('startTime = "2020-06-01T05:00:00-0500"', [2]),
        ('startTime = "2020-06-01T10:00:00"', [2]),  # no zone: UTC
        ('startTime > "2021-01-01T00:00:00Z"', [3]),  # 0.5 s after
        ('startTime > "2021-01-01T00:00:00.5Z"', []),
        ('endTime <= "2020-01-02T00:00:00Z"', [0, 1]),
        ('endTime != "2020-01-01T00:00:00Z"', [1, 2, 3]),
        ('updateTime = "2021-03-04T05:06:07.891011Z"', [0, 1, 2, 3]),
        ("startTime:*", [0, 1, 2, 3]),
    ],
)
def test_time_comparisons_are_instants(text, expected):
    assert matching(text) == expected


def test_timestamp_ns_values():
    assert timestamp_ns("1970-01-01T00:00:00Z") == 0
    assert timestamp_ns("1970-01-01") == 0
    assert timestamp_ns("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert timestamp_ns("1970-01-01T01:00:00+01:00") == 0
    assert timestamp_ns("1969-12-31T23:59:59.999999999Z") == -1
    assert timestamp_ns("2020-02-30") is None
    assert timestamp_ns("2020-01-01T25:00:00Z") is None
    assert timestamp_ns("yesterday") is None


def test_asset_without_the_time_field_never_matches():
    image = asset(7)
    del image["endTime"]
    assert parse_filter('endTime < "2100-01-01"')(image) is False
    assert parse_filter('endTime != "2100-01-01"')(image) is False
    assert parse_filter("NOT endTime:*")(image) is True


# ----------------------------------------------------------------- strings and properties


@pytest.mark.parametrize(
    "text, expected",
    [
        ('id = "A/B/img2"', [2]),
        ("id = A/B/img2", [2]),
        ('id > "A/B/img1"', [2, 3]),
        ('name = "projects/earthengine-public/assets/A/B/img0"', [0]),
        ("type = IMAGE", [0, 1, 2, 3]),
        ('type != "IMAGE"', []),
        ("properties.CLOUDY_PIXEL_PERCENTAGE < 20", [1, 2]),
        ("properties.CLOUDY_PIXEL_PERCENTAGE <= 20", [1, 2, 3]),
        ('properties.CLOUDY_PIXEL_PERCENTAGE < "20"', [1, 2]),  # quoted numbers still compare numerically
        ("properties.CLOUDY_PIXEL_PERCENTAGE >= 1.9999e1", [0, 2, 3]),
        ("properties.CLOUDY_PIXEL_PERCENTAGE > -1", [0, 1, 2, 3]),
        ("properties.CLOUDY_PIXEL_PERCENTAGE = 50", [0]),
        ("properties.CLOUDY_PIXEL_PERCENTAGE = 50.0", [0]),
        ("properties.CLOUDY_PIXEL_PERCENTAGE = fifty", []),  # not a number: false, not an error
        ('properties.SPACECRAFT = "S2A"', [1, 2, 3]),
        ("properties.SPACECRAFT = S2B", [0]),
        ("properties.SPACECRAFT:S2B", [0]),
        ("properties.SPACECRAFT < S2B", [1, 2, 3]),
        ("properties.SPACECRAFT = 5", []),
        ("properties.index != 2", [0, 1, 3]),
        ("properties.missing = 1", []),
        ("properties.missing != 1", []),  # missing property: every comparison is false
        ("NOT properties.missing = 1", [0, 1, 2, 3]),
        ("properties.index:*", [0, 1, 2, 3]),
        ("properties.missing:*", []),
        ("properties:SPACECRAFT", [0, 1, 2, 3]),
        ("properties:missing", []),
    ],
)
def test_field_and_property_comparisons(text, expected):
    assert matching(text) == expected


def test_property_types_decide_the_comparison():
    image = asset(1, flag=True, tile="10", big=2**60 + 1, nested={"a": 1}, nothing=None)
    assert parse_filter("properties.flag = true")(image) is True
    assert parse_filter("properties.flag != false")(image) is True
    assert parse_filter("properties.flag = false")(image) is False
    assert parse_filter("properties.flag > false")(image) is False  # booleans have no order
    assert parse_filter("properties.flag = 1")(image) is False
    assert parse_filter("properties.tile = 10")(image) is True  # string property: compared as text
    assert parse_filter("properties.tile < 9")(image) is True  # ... lexicographically
    assert parse_filter(f"properties.big = {2**60 + 1}")(image) is True  # ints stay exact
    assert parse_filter(f"properties.big = {2**60}")(image) is False
    assert parse_filter("properties.nested = 1")(image) is False
    assert parse_filter("properties.nothing:*")(image) is False


def test_string_escapes_and_single_quotes():
    image = asset(1, label='say "hi"\\ok', other="it's")
    assert parse_filter(r'properties.label = "say \"hi\"\\ok"')(image) is True
    assert parse_filter(r"properties.other = 'it\'s'")(image) is True
    assert parse_filter('properties.other = "it\'s"')(image) is True
    assert parse_filter(r'properties.other = "\u0069t\u0027s"')(image) is True


def test_property_names_may_contain_dots_and_digits():
    image = asset(1, **{"GRANULE.ID": "x", "2nd_band": 4})
    assert parse_filter("properties.GRANULE.ID = x")(image) is True
    assert parse_filter("properties.2nd_band > 3")(image) is True


# ----------------------------------------------------------------- logic


@pytest.mark.parametrize(
    "text, expected",
    [
        ("properties.index = 0 OR properties.index = 2", [0, 2]),
        ("properties.index >= 1 AND properties.index <= 2", [1, 2]),
        ("properties.index >= 1 properties.index <= 2", [1, 2]),  # whitespace is AND
        # AIP-160: OR binds tighter than AND, so this is  index=0 AND (index=1 OR index=2)
        ("properties.index = 0 AND properties.index = 1 OR properties.index = 2", []),
        ("(properties.index = 0 AND properties.index = 1) OR properties.index = 2", [2]),
        ("properties.index = 1 OR properties.index = 2 AND properties.SPACECRAFT = S2A", [1, 2]),
        ("properties.index = 0 OR properties.index = 2 AND properties.SPACECRAFT = S2A", [2]),
        ("NOT properties.index = 0", [1, 2, 3]),
        ("-properties.index = 0", [1, 2, 3]),
        ("NOT (properties.index = 0 OR properties.index = 3)", [1, 2]),
        ("NOT(properties.index = 0)", [1, 2, 3]),
        ("NOT NOT properties.index = 0", [0]),
        ("-(properties.index < 2) AND -properties.index = 3", [2]),
        ("((properties.index = 1))", [1]),
        ("  properties.index = 1  ", [1]),
        ("", [0, 1, 2, 3]),  # empty filter: no filtering
        ("   \t\n", [0, 1, 2, 3]),
        ("properties.NOTE = 1 OR properties.ORDER = 2 OR properties.ANDROID = 3", []),  # keyword prefixes are names
    ],
)
def test_logic_and_precedence(text, expected):
    assert matching(text) == expected


# ----------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    "region, expected",
    [
        ('{"type": "Point", "coordinates": [5, 5]}', [0, 1]),
        ('{"type": "Point", "coordinates": [10, 10]}', [0, 1]),  # corner: touching counts
        ('{"type": "Point", "coordinates": [10.0001, 5]}', []),
        ('{"type": "Point", "coordinates": [25, 25]}', [2]),
        ('{"type": "MultiPoint", "coordinates": [[50, 50], [25, 25]]}', [2]),
        ('{"type": "LineString", "coordinates": [[-5, 15], [15, -5]]}', [0, 1]),  # crosses a corner region
        ('{"type": "LineString", "coordinates": [[-5, 25], [25, -5]]}', [0, 1]),  # x+y=20 touches corner (10, 10)
        ('{"type": "LineString", "coordinates": [[-5, 26], [26, -5]]}', []),  # x+y=21 passes just outside
        (
            '{"type": "Polygon", "coordinates": [[[-100, -100], [100, -100], [100, 100], [-100, 100], [-100, -100]]]}',
            [0, 1, 2],
        ),  # contains both footprints
        ('{"type": "Polygon", "coordinates": [[[2, 2], [3, 2], [3, 3], [2, 2]]]}', [0, 1]),  # inside the footprint
        (
            '{"type": "Polygon", "coordinates": [[[-100, -100], [100, -100], [100, 100], [-100, 100], [-100, -100]],'
            " [[-1, -1], [11, -1], [11, 11], [-1, 11], [-1, -1]]]}",
            [2],
        ),  # footprint 0-10 sits in the hole
        ('{"type": "MultiPolygon", "coordinates": [[[[29, 29], [40, 29], [40, 40], [29, 29]]]]}', [2]),
        ('{"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 1]}]}', [0, 1]),
        ('{"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [1, 1]}}', [0, 1]),
        ("{'type':'Point','coordinates':[21,29]}", [2]),  # the official client's single quotes
        ("POINT (1 1)", [0, 1]),
        ("POLYGON ((-1 -1, 0 -1, 0 0, -1 -1))", [0, 1]),  # shares one corner
        ("MULTIPOINT ((50 50), (29 21))", [2]),
        ("MULTIPOINT (50 50, 29 21)", [2]),
        ("LINESTRING (-1 5, 11 5)", [0, 1]),
        ("MULTIPOLYGON (((40 40, 41 40, 41 41, 40 40)))", []),
        ("POLYGON EMPTY", []),
    ],
)
def test_intersects(region, expected):
    escaped = region.replace('"', '\\"')
    assert matching(f'intersects("{escaped}")') == expected
    assert matching(f'intersects(geometry, "{escaped}")') == expected


def test_intersects_combines_with_other_restrictions():
    text = "intersects(\"{'type':'Point','coordinates':[5,5]}\") AND properties.index > 0"
    assert matching(text) == [1]
    assert matching("NOT (" + text + ")") == [0, 2, 3]
    assert matching("NOT " + text) == [2, 3]  # NOT binds to intersects(...) only


# ----------------------------------------------------------------- GDAL's EEDA driver


def test_bare_property_names_as_gdal_eeda_writes_them():
    # The filter shape GDAL's EEDA driver sends (OSGeo/gdal autotest/ogr/ogr_eeda.py): bare
    # property names, double-quoted strings, nested parentheses, NOT (...).
    assert matching("CLOUDY_PIXEL_PERCENTAGE < 20") == [1, 2]
    assert matching("CLOUDY_PIXEL_PERCENTAGE < 20") == matching("properties.CLOUDY_PIXEL_PERCENTAGE < 20")
    gdal_shaped = (
        '((((index >= 0 AND index < 3) AND CLOUDY_PIXEL_PERCENTAGE != 3.5) AND SPACECRAFT = "S2A" OR '
        'SPACECRAFT = "S2C") AND (NOT (index = 2 OR CLOUDY_PIXEL_PERCENTAGE = 3.5)))'
    )
    assert matching(gdal_shaped) == [1]
    assert matching("color = 1") == []  # a missing property fails the comparison, as properties.color would
    assert matching("NOT color = 1") == [0, 1, 2, 3]


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("starttime > 2020-01-01", ["unknown field 'starttime'", "did you mean 'startTime'", "properties.starttime"]),
        ("ID = 1", ["unknown field 'ID'", "did you mean 'id'"]),
        ("properties.a = 1 and properties.b = 2", ["unknown field 'and'", "uppercase"]),
        ("properties. = 1", ["unknown field 'properties.'"]),
        ('properties.a = "abc', ["position 15", "unterminated string", "'\"abc'"]),
        ('properties.a = "a\\qb"', ["invalid escape", "'\\\\q'"]),
        ("properties.a == 1", ["position 14", "expected a value", "found '='", "operators are ="]),
        ("properties.a => 1", ["expected a value", "'>'"]),
        ("properties.a ~ 1", ["comparison operator", "'~'"]),
        ("properties.a", ["comparison operator", "end of filter"]),
        ("properties.a <", ["expected a value", "end of filter"]),
        ("properties.a = 1 )", ["position 17", "unexpected ')'"]),
        ('properties.a = 1 "tail"', ["expected a restriction", "'\"tail\"'"]),
        ("properties.a = 1 AND", ["expected a restriction", "end of filter"]),
        ("AND properties.a = 1", ["position 0", "expected a restriction", "'AND'"]),
        ("(properties.a = 1", ["expected ')'", "position 0", "end of filter"]),
        ("properties.a = 1 OR OR properties.b = 2", ["expected a restriction", "'OR'"]),
        ('startTime > "2020-13-01"', ["startTime needs an RFC 3339 timestamp", "'2020-13-01'", "position 12"]),
        ("endTime < 5", ["endTime needs an RFC 3339 timestamp", "'5'"]),
        ('updateTime >= "last week"', ["updateTime needs", "'last week'"]),
        ("properties > 3", ["'properties' only supports ':'"]),
        ('within("POINT (1 2)")', ["unknown function 'within'", "intersects"]),
        ('intersects("{not json")', ["intersects() needs a GeoJSON geometry or WKT", "'{not json'", "not GeoJSON"]),
        ('intersects("{\\"type\\": \\"Circle\\"}")', ["Unsupported geometry type 'Circle'", "Polygon"]),
        (
            'intersects("{\\"type\\": \\"Point\\", \\"coordinates\\": [1]}")',
            ["position must be [x, y] numbers, got '[1]'"],
        ),
        (
            'intersects("{\\"type\\": \\"Polygon\\", \\"coordinates\\": [[[0, 0], [1, 1], [0, 0]]]}")',
            ["ring needs at least 3"],
        ),
        ('intersects("CIRCLE (1 2)")', ["unsupported WKT type 'CIRCLE'"]),
        ('intersects("POLYGON ((1 2, 3 4)")', ["unbalanced parentheses"]),
        ('intersects("POINT (1 x)")', ["could not convert", "'x'"]),
        ('intersects("POINT (1 2)", "POINT (3 4)")', ["intersects takes one geometry string"]),
        ('intersects("POINT (1 2)"', ["expected ',' or ')'", "end of filter"]),
    ],
)
def test_errors_name_the_offending_text(text, fragments):
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert isinstance(caught.value, ValueError)
    assert caught.value.position is not None


def test_non_string_filter_is_rejected():
    with pytest.raises(FilterError, match="filter must be a string, got int"):
        parse_filter(5)  # type: ignore[arg-type]


def test_bad_stored_data_is_reported_with_the_asset_id():
    image = asset(9, start="soon")
    with pytest.raises(ValueError, match="asset A/B/img9: startTime 'soon' is not an RFC 3339 timestamp"):
        parse_filter('startTime > "2020-01-01"')(image)
    broken = asset(8, geometry={"type": "Polygon", "coordinates": "nope"})
    with pytest.raises(ValueError, match="asset A/B/img8: bad geometry"):
        parse_filter('intersects("POINT (1 1)")')(broken)


# ----------------------------------------------------------------- properties (hypothesis)

finite_numbers = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)
OPERATORS = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@settings(max_examples=300, deadline=None)
@given(stored=finite_numbers, literal=finite_numbers, op=st.sampled_from(sorted(OPERATORS)), quoted=st.booleans())
def test_numeric_comparisons_agree_with_python(stored, literal, op, quoted):
    written = f'"{literal!r}"' if quoted else repr(literal)
    predicate = parse_filter(f"properties.x {op} {written}")
    assert predicate({"properties": {"x": stored}}) is OPERATORS[op](stored, literal)


@settings(max_examples=200, deadline=None)
@given(
    seconds=st.integers(min_value=-2 * 10**9, max_value=4 * 10**9),
    other=st.integers(min_value=-2 * 10**9, max_value=4 * 10**9),
    op=st.sampled_from(sorted(OPERATORS)),
    offset_hours=st.integers(min_value=-12, max_value=14),
)
def test_time_comparisons_agree_with_epoch_seconds(seconds, other, op, offset_hours):
    import datetime as dt

    stored = dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    literal = dt.datetime.fromtimestamp(other, zone).isoformat()  # e.g. 2001-02-03T04:05:06+05:00
    predicate = parse_filter(f'startTime {op} "{literal}"')
    assert predicate({"startTime": stored}) is OPERATORS[op](seconds, other)


coordinate = st.integers(min_value=-6, max_value=6)


@st.composite
def geometries(draw):
    kind = draw(st.sampled_from(["Point", "LineString", "Rectangle", "Triangle", "RectangleWithHole"]))
    if kind == "Point":
        return {"type": "Point", "coordinates": [draw(coordinate), draw(coordinate)]}
    if kind == "LineString":
        # shapely treats a line whose points all coincide as empty: keep lines non-degenerate
        points = draw(
            st.lists(st.tuples(coordinate, coordinate), min_size=2, max_size=4).filter(lambda ps: len(set(ps)) > 1)
        )
        return {"type": "LineString", "coordinates": [list(p) for p in points]}
    if kind == "Triangle":
        a, b, c = (
            draw(st.tuples(coordinate, coordinate)),
            draw(st.tuples(coordinate, coordinate)),
            draw(st.tuples(coordinate, coordinate)),
        )
        area2 = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if area2 == 0:  # degenerate (collinear or repeated corners): use a unit right triangle at a
            b, c = (a[0] + 1, a[1]), (a[0], a[1] + 1)
        return {"type": "Polygon", "coordinates": [[list(a), list(b), list(c), list(a)]]}
    x0, y0 = draw(coordinate), draw(coordinate)
    width, height = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    outer = [[x0, y0], [x0 + width, y0], [x0 + width, y0 + height], [x0, y0 + height], [x0, y0]]
    if kind == "Rectangle" or width < 3 or height < 3:
        return {"type": "Polygon", "coordinates": [outer]}
    hole = [
        [x0 + 1, y0 + 1],
        [x0 + 1, y0 + height - 1],
        [x0 + width - 1, y0 + height - 1],
        [x0 + width - 1, y0 + 1],
        [x0 + 1, y0 + 1],
    ]
    return {"type": "Polygon", "coordinates": [outer, hole]}


@settings(max_examples=500, deadline=None)
@given(first=geometries(), second=geometries())
def test_intersection_agrees_with_shapely(first, second):
    expected = shapely.geometry.shape(first).intersects(shapely.geometry.shape(second))
    assert shapes_intersect(shape_from_geojson(first), shape_from_geojson(second)) is expected
    assert shapes_intersect(shape_from_geojson(second), shape_from_geojson(first)) is expected
