"""Collections: properties as coordinates, same-day mosaics (groupby), guarded unbounded listings."""

from __future__ import annotations

import datetime as dt
import json
import re

import dask
import numpy as np
import pandas as pd
import pytest
from affine import Affine

import eexarray
from eexarray.backend.grouping import centre_longitude, group_by_solar_day, solar_day
from eexarray.backend.metadata import TooManyImagesError
from eexarray.cli import main
from eexarray.geometry import PixelGrid
from eexarray.info import summarize_asset
from eexarray.server.images import InMemoryImage, ServerCollection, procedural_collection
from eexarray.transport.api import list_images

# Near 123.0 W: odc-stac's solar day shifts UTC by int(-123 / 15) = -8 hours.
GRID = PixelGrid("EPSG:32610", Affine(10, 0, 500000, 0, -10, 4200000), 60, 40)
ROWS, COLS = np.mgrid[0:40, 0:60]
BOTH_MASKED = (ROWS < 4) & (COLS >= 20) & (COLS < 40)  # masked in tiles a and b: masked in their mosaic


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)


def tile(offset: int, mask: np.ndarray) -> np.ma.MaskedArray:
    return np.ma.MaskedArray((offset + ROWS * 60 + COLS).astype("uint16"), mask)


A = tile(1000, (COLS >= 40) | BOTH_MASKED)  # valid on the left two thirds
B = tile(5000, (COLS < 20) | BOTH_MASKED)  # valid on the right two thirds, later the same solar day
C = tile(9000, np.zeros(GRID.shape, bool))
D = tile(13000, np.zeros(GRID.shape, bool))
TILES = ServerCollection(
    "test/tiles",
    [
        # 19:00 UTC May 1 = 11:00 solar time on May 1
        InMemoryImage("test/tiles/a", {"v": A}, GRID, utc("2021-05-01T19:00"),
                      properties={"CLOUD": 10.5, "TILE": "10SEG", "ORBIT": 7, "INDEX": 1, "OK": True,
                                  "ANGLES": [1, 2]}),
        # 03:00 UTC May 2 = 19:00 solar time on May 1: the same solar day as a (not the same UTC day)
        InMemoryImage("test/tiles/b", {"v": B}, GRID, utc("2021-05-02T03:00"),
                      properties={"CLOUD": 20.0, "TILE": "10SFG", "ORBIT": 7, "INDEX": 2, "OK": True}),
        # 05:00 UTC May 4 = 21:00 solar time on May 3
        InMemoryImage("test/tiles/c", {"v": C}, GRID, utc("2021-05-04T05:00"),
                      properties={"CLOUD": 30.0, "TILE": "10SEG", "INDEX": 3, "OK": False}),
        # 10:00 UTC May 4 = 02:00 solar time on May 4: the same UTC day as c, another solar day
        InMemoryImage("test/tiles/d", {"v": D}, GRID, utc("2021-05-04T10:00"),
                      properties={"CLOUD": 40.0, "ORBIT": 8, "INDEX": 4, "OK": True}),
    ],
)  # fmt: skip
TWENTY_THOUSAND = procedural_collection(
    "test/twenty_thousand", GRID, 20_000, dtypes=("uint8",), start="2000-01-01T00:00:00Z", step=dt.timedelta(hours=6)
)


@pytest.fixture(scope="module")
def local():
    with eexarray.serve(catalog=[TILES, TWENTY_THOUSAND]) as running:
        yield running


def pixel_requests(server, compute):
    """What ``compute()`` costs in pixel requests: {method: count}."""
    server.reset_stats()
    result = compute()
    counts = server.stats()["requests"]
    return result, {name: n for name, n in counts.items() if name in ("getPixels", "computePixels")}


# -- properties ---------------------------------------------------------------------------------


def test_properties_become_typed_numpy_coordinates(local):
    ds = eexarray.open_dataset("test/tiles", endpoint=local.url, properties=True)
    assert list(ds.image_id.values) == ["test/tiles/a", "test/tiles/b", "test/tiles/c", "test/tiles/d"]
    for name in ("CLOUD", "TILE", "ORBIT", "INDEX", "OK", "ANGLES"):  # numpy in a dask-chunked Dataset
        assert ds[name].dims == ("time",) and isinstance(ds[name].data, np.ndarray), name
    assert ds.CLOUD.dtype == "float64" and list(ds.CLOUD.values) == [10.5, 20.0, 30.0, 40.0]
    assert ds.INDEX.dtype == "int64" and list(ds.INDEX.values) == [1, 2, 3, 4]  # integers, none missing
    assert ds.OK.dtype == bool and list(ds.OK.values) == [True, True, False, True]
    np.testing.assert_array_equal(ds.ORBIT.values, [7.0, 7.0, np.nan, 8.0])  # integers with a gap: NaN
    assert ds.ORBIT.dtype == "float64"
    # Missing strings are NaN, as xarray marks them in object arrays (it turns None into NaN).
    assert ds.TILE.dtype == object and list(ds.TILE.values[:3]) == ["10SEG", "10SFG", "10SEG"]
    assert pd.isna(ds.TILE.values[3])
    assert ds.ANGLES.values[0] == "[1, 2]" and pd.isna(ds.ANGLES.values[1:]).all()  # JSON text: writable
    assert ds.TILE.attrs["property"] == "TILE"


def test_selected_properties_only_and_selection_by_them(local):
    ds = eexarray.open_dataset("test/tiles", endpoint=local.url, properties=["CLOUD", "TILE"])
    assert {"CLOUD", "TILE"} <= set(ds.coords) and "ORBIT" not in ds.coords
    clear = ds.CLOUD.where(ds.CLOUD < 25, drop=True)  # numpy: no pixel read
    assert list(clear.image_id.values) == ["test/tiles/a", "test/tiles/b"]
    assert "CLOUD" not in eexarray.open_dataset("test/tiles", endpoint=local.url).coords  # default: none


def test_properties_on_the_demo_collection():
    from eexarray.server.demo_catalog import LANDSCAPE_ID, build_demo_catalog, landscape_collection

    truth = landscape_collection().images
    with eexarray.serve(catalog=build_demo_catalog()) as demo:
        ds = eexarray.open_dataset(
            LANDSCAPE_ID, endpoint=demo.url, bands=["B4"], properties=["CLOUDY_PIXEL_PERCENTAGE", "MGRS_TILE"]
        )
        everything = eexarray.open_dataset(LANDSCAPE_ID, endpoint=demo.url, bands=["B4"], properties=True)
    assert ds.CLOUDY_PIXEL_PERCENTAGE.dtype == "float64"
    assert list(ds.CLOUDY_PIXEL_PERCENTAGE.values) == [image.properties["CLOUDY_PIXEL_PERCENTAGE"] for image in truth]
    assert set(ds.MGRS_TILE.values) == {"33UUU"}
    assert everything.SPACECRAFT_NAME.values[:2].tolist() == ["Sentinel-2A", "Sentinel-2B"]
    assert everything.SYNTHETIC.dtype == bool and everything.MEAN_SOLAR_ZENITH_ANGLE.dtype == "float64"


def test_properties_of_a_computed_collection(local):
    from eexarray.planning.expressions import _constant, _invoke

    collection = {"result": "0", "values": {"0": _invoke("ImageCollection.load", id=_constant("test/tiles"))}}
    ds = eexarray.open_dataset(collection, endpoint=local.url, properties=["CLOUD", "INDEX"])
    assert list(ds.CLOUD.values) == [10.5, 20.0, 30.0, 40.0] and ds.INDEX.dtype == "int64"
    with pytest.raises(ValueError, match=r"\['index'\]; the images have"):
        eexarray.open_dataset(collection, endpoint=local.url, properties=["index"])


def test_a_property_named_like_a_band_or_coordinate_gets_a_suffix():
    images = [
        InMemoryImage(f"test/clash/{i}", {"v": np.zeros(GRID.shape, "uint8")}, GRID, utc(f"2021-0{i + 1}-01T00:00"),
                      properties={"v": i, "time": "noon", "x": 1.5})
        for i in range(2)
    ]  # fmt: skip
    with eexarray.serve(catalog=[ServerCollection("test/clash", images)]) as clash:
        ds = eexarray.open_dataset("test/clash", endpoint=clash.url, properties=True)
    assert list(ds.v_property.values) == [0, 1] and list(ds.time_property.values) == ["noon", "noon"]
    assert ds.x_property.attrs["property"] == "x" and ds.v.dims == ("time", "y", "x")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"properties": ["CLOUD", "CLOUDS"]}, ValueError, r"\['CLOUDS'\]; the images have: \['CLOUD', 'TILE'"),
        ({"properties": []}, ValueError, "properties is empty"),
        ({"properties": ["CLOUD", "CLOUD"]}, ValueError, r"lists \['CLOUD'\] more than once"),
        ({"properties": 3}, TypeError, "properties must be True, False or a list of property names"),
        ({"groupby": "day"}, ValueError, r"groupby='day' is not supported; use one of \['solar_day'\] or None"),
        ({"max_images": 0}, ValueError, "max_images=0 must be at least 1"),
        ({"max_images": True}, TypeError, "max_images must be a positive integer or None"),
    ],
)
def test_bad_collection_options_are_refused(local, kwargs, error, match):
    with pytest.raises(error, match=match):
        eexarray.open_dataset("test/tiles", endpoint=local.url, **kwargs)


def test_properties_and_groupby_refuse_an_image(server):
    for kwargs in ({"properties": True}, {"groupby": "solar_day"}):
        with pytest.raises(ValueError, match=r"apply to image collections; 'test/memory' is an IMAGE"):
            eexarray.open_dataset("test/memory", endpoint=server.url, **kwargs)


def test_info_lists_the_properties_of_the_images(local, capsys):
    summary = summarize_asset("test/tiles", endpoint=local.url)
    found = {item.name: (item.type, item.image_count, item.example) for item in summary.properties}
    assert found == {
        "CLOUD": ("float", 4, 10.5),
        "TILE": ("str", 3, "10SEG"),
        "ORBIT": ("int", 3, 7),
        "INDEX": ("int", 4, 1),
        "OK": ("bool", 4, True),
        "ANGLES": ("json", 1, [1, 2]),
    }
    assert main(["info", "test/tiles", "--endpoint", local.url]) == 0
    table = capsys.readouterr().out
    assert "6 properties of the images" in table and re.search(r"\nTILE +str +3 +10SEG\n", table)
    assert main(["info", "test/tiles", "--endpoint", local.url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["properties"]
    assert listed[0] == {"name": "CLOUD", "type": "float", "image_count": 4, "example": 10.5}


# -- same-day mosaics ---------------------------------------------------------------------------


def test_solar_day_follows_odc_stac():
    assert solar_day("2021-05-02T03:00:00Z", -123.0) == dt.date(2021, 5, 1)  # -8 h
    assert solar_day("2021-05-02T03:00:00Z", -119.9) == dt.date(2021, 5, 1)  # int(-7.99) = -7 h
    assert solar_day("2021-05-02T07:30:00Z", -119.9) == dt.date(2021, 5, 2)  # 00:30
    assert solar_day("2021-05-02T07:30:00Z", -123.0) == dt.date(2021, 5, 1)  # 23:30
    assert solar_day("2021-05-01T14:30:00Z", 150.0) == dt.date(2021, 5, 2)  # +10 h
    times = ["2021-05-01T19:00:00Z", "2021-05-02T03:00:00Z", "2021-05-04T05:00:00Z", "2021-05-04T10:00:00Z"]
    assert group_by_solar_day(times, -123.0) == [[0, 1], [2], [3]]
    assert group_by_solar_day(times, 0.0) == [[0], [1], [2, 3]]  # at Greenwich: UTC days
    assert group_by_solar_day([None, None, *times[:2]], -123.0) == [[0], [1], [2, 3]]  # no time: never grouped
    assert centre_longitude(GRID) == pytest.approx(-123.0, abs=0.01)


def expected_mosaic() -> np.ndarray:
    """Earth Engine's mosaic of a then b: b on top where valid, a elsewhere, masked (NaN with the
    default exact masks) where neither."""
    top = np.where(~np.ma.getmaskarray(B), B.data, np.where(~np.ma.getmaskarray(A), A.data, np.nan))
    assert np.isnan(top[BOTH_MASKED]).all() and (top[:, :20] == A.data[:, :20]).all()
    return top.astype("float32")


@pytest.mark.parametrize("packed", [False, True], ids=["step-by-step", "packed"])
def test_tiles_of_one_solar_day_are_mosaicked_on_the_server(local, packed):
    def open_(**kwargs):
        chunks = {"time": -1} if packed else None  # all steps in one read, or lazy arrays read a step at a time
        return eexarray.open_dataset("test/tiles", endpoint=local.url, chunks=chunks, **kwargs)

    def read(ds):
        return ds.v.values if packed else np.stack([ds.v[step].values for step in range(ds.sizes["time"])])

    grouped = open_(groupby="solar_day", properties=True)
    assert grouped.sizes["time"] == 3
    assert list(grouped.time.values) == [np.datetime64(t) for t in ("2021-05-01T19:00", "2021-05-04T05:00",
                                                                     "2021-05-04T10:00")]  # fmt: skip
    assert list(grouped.image_id.values) == ["test/tiles/a,test/tiles/b", "test/tiles/c", "test/tiles/d"]
    with dask.config.set(scheduler="threads"):
        values, grouped_cost = pixel_requests(local, lambda: read(grouped))
        ungrouped, plain_cost = pixel_requests(local, lambda: read(open_()))
    np.testing.assert_array_equal(values[0], expected_mosaic())
    np.testing.assert_array_equal(values[1:], ungrouped[2:])
    np.testing.assert_array_equal(values[1], np.where(np.ma.getmaskarray(C), np.nan, C.data))
    # Same number of requests or fewer: a day's mosaic is one request (or one member of a packed one).
    if packed:
        assert plain_cost == grouped_cost == {"computePixels": 1}
    else:
        # Exact masks (the default): every read is a computePixels carrying its mask bits.
        assert plain_cost == {"computePixels": 4}
        assert grouped_cost == {"computePixels": 3}
    # Properties of a mosaic: those its images agree on; the others are missing, not one tile's.
    np.testing.assert_array_equal(grouped.ORBIT.values, [7.0, np.nan, 8.0])
    np.testing.assert_array_equal(grouped.CLOUD.values, [np.nan, 30.0, 40.0])
    assert list(pd.isna(grouped.TILE.values)) == [True, False, True] and grouped.TILE.values[1] == "10SEG"
    assert list(grouped.OK.values) == [True, False, True]


def test_a_window_of_a_mosaic_reads_only_that_window(local):
    grouped = eexarray.open_dataset("test/tiles", endpoint=local.url, groupby="solar_day", chunks=None)
    window = grouped.v.isel(time=0, y=slice(2, 12), x=slice(15, 45)).values
    np.testing.assert_array_equal(window, expected_mosaic()[2:12, 15:45])


def test_groupby_refuses_a_computed_collection(local):
    from eexarray.planning.expressions import _constant, _invoke

    collection = {"result": "0", "values": {"0": _invoke("ImageCollection.load", id=_constant("test/tiles"))}}
    with pytest.raises(ValueError, match="groupby= applies to stored collections"):
        eexarray.open_dataset(collection, endpoint=local.url, groupby="solar_day")


# -- unbounded listings -------------------------------------------------------------------------


def test_an_unfiltered_listing_stops_one_past_max_images(local):
    local.reset_stats()
    with pytest.raises(TooManyImagesError) as refused:
        eexarray.open_dataset("test/twenty_thousand", endpoint=local.url)
    message = str(refused.value)
    assert "'test/twenty_thousand' has more than max_images=5000 images" in message
    assert "start= and end=" in message and "region=" in message and "filter=" in message
    assert "max_images= (None: no limit)" in message
    # 5 pages of 1000 and one of 1: 5001 images listed, not 20,000.
    assert local.stats()["requests"] == {"getAsset": 1, "listAssets": 6}
    local.reset_stats()
    with pytest.raises(TooManyImagesError, match="max_images=100 images"):
        eexarray.open_dataset("test/twenty_thousand", endpoint=local.url, max_images=100)
    assert local.stats()["requests"] == {"getAsset": 1, "listAssets": 1}


def test_listing_pages_ask_for_what_is_left():
    class Recorder:
        def __init__(self):
            self.sizes = []

        def get_json(self, path, params, what=""):
            self.sizes.append(params["pageSize"])
            offset = int(params.get("pageToken", 0))
            end = min(offset + params["pageSize"], 20_000)
            return {
                "assets": [{"name": f"c/{i}"} for i in range(offset, end)],
                "nextPageToken": str(end) * (end < 20_000),
            }

    client = Recorder()
    assert len(list(list_images(client, "c", limit=5001))) == 5001
    assert client.sizes == [1000] * 5 + [1]
    unlimited = Recorder()
    assert len(list(list_images(unlimited, "c", page_size=5000))) == 20_000


def test_a_filtered_collection_opens_whatever_its_size(local):
    ds = eexarray.open_dataset("test/twenty_thousand", endpoint=local.url, start="2001-01-01", end="2001-01-08")
    assert ds.sizes["time"] == 28  # 4 a day
    assert ds.image_id.values[0] == "test/twenty_thousand/01464"  # 366 days of 2000 x 4
    area = GRID.footprint_bounds("EPSG:4326")
    region = eexarray.open_dataset("test/twenty_thousand", endpoint=local.url, region=area, end="2000-01-02")
    assert region.sizes["time"] == 4
    assert summarize_asset("test/twenty_thousand", endpoint=local.url, filter="properties.index < 10").image_count == 10


def test_info_refuses_an_unfiltered_collection_and_names_it(local, capsys):
    local.reset_stats()
    assert main(["info", "test/twenty_thousand", "--endpoint", local.url, "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "'test/twenty_thousand' has more than max_images=5000 images" in error
    assert local.stats()["requests"]["listAssets"] == 6


def test_listing_progress_still_shows_before_a_refusal(local, capsys):
    with pytest.raises(TooManyImagesError):
        summarize_asset("test/twenty_thousand", endpoint=local.url, progress=True, max_images=1200)
    bar = capsys.readouterr().err
    assert "listing test/twenty_thousand" in bar and "1201" in bar  # the bar counts past one page
