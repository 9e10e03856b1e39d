"""Algorithms users reach first, through the official earthengine-api client, checked against numpy.

The image is the procedural ``c/img`` of ``test_compute_pixels`` (UTM 10 m, 300 x 200,
its top-left 20 x 30 pixels masked), so every expected value is the formula's.
"""

from __future__ import annotations

import io

import ee
import google.oauth2.credentials
import numpy as np
import pyproj
import pytest
from PIL import Image as PILImage

from eexarray.server import serve
from tests.server.test_compute_pixels import GRID, IMAGE_MASK, catalog, mask_of, truth

TO_LONLAT = pyproj.Transformer.from_crs("EPSG:32610", "EPSG:4326", always_xy=True)
DEGREE_AT_10_M = 8.983152841195215e-05  # 10 / (2 pi 6378137 / 360)


@pytest.fixture(scope="module")
def ee_server():
    original_fetch = ee.deprecation._FetchDataCatalogStac
    ee.deprecation._FetchDataCatalogStac = dict  # Initialize would fetch a list from Google
    with serve(catalog=catalog()) as server:
        ee.Initialize(credentials=google.oauth2.credentials.Credentials("t"), project="p", opt_url=server.url)
        try:
            yield server
        finally:
            ee.Reset()
            ee.deprecation._FetchDataCatalogStac = original_fetch


def native_grid(row: int, col: int, width: int, height: int) -> dict:
    t = GRID.transform
    return {
        "dimensions": {"width": width, "height": height},
        "affineTransform": {"scaleX": t.a, "shearX": 0, "translateX": t.c + col * t.a,
                            "shearY": 0, "scaleY": t.e, "translateY": t.f + row * t.e},
        "crsCode": GRID.crs,
    }  # fmt: skip


def pixels(image: ee.Image, row: int, col: int, width: int, height: int) -> np.ndarray:
    return ee.data.computePixels(
        {"expression": image, "fileFormat": "NUMPY_NDARRAY", "grid": native_grid(row, col, width, height)}
    )


def utm_box(row0: int, col0: int, row1: int, col1: int) -> ee.Geometry:
    """A lon/lat polygon whose UTM outline is a quarter pixel inside/outside pixel edges.

    Pixel centres of rows row0..row1-1 and cols col0..col1-1 are inside, all others outside
    (the outline is straight in lon/lat, within millimetres of straight in UTM).
    """
    t = GRID.transform
    x0, x1 = t.c + (col0 + 0.25) * t.a, t.c + (col1 - 0.25) * t.a
    y0, y1 = t.f + (row0 + 0.25) * t.e, t.f + (row1 - 0.25) * t.e
    corners = [TO_LONLAT.transform(x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
    return ee.Geometry.Polygon([[list(c) for c in corners]], None, False)


def test_projection_at_scale_matches_earth_engine(ee_server):
    projection = ee.Projection("EPSG:4326").atScale(10).getInfo()
    assert projection["crs"] == "EPSG:4326"
    assert projection["transform"] == pytest.approx([DEGREE_AT_10_M, 0, 0, 0, DEGREE_AT_10_M, 0], rel=1e-12)
    utm = ee.Image("c/img").select("B4").projection().atScale(20).getInfo()
    assert utm["transform"] == [20.0, 0.0, 500000.0, 0.0, -20.0, 4200000.0]
    assert ee.Projection("EPSG:4326").atScale(10).nominalScale().getInfo() == pytest.approx(10)


def test_the_get_pixels_seed_example_as_written(ee_server):
    """ee.data.getPixels with a grid built from atScale(10), as the getPixels reference example does."""
    lon, lat = TO_LONLAT.transform(GRID.transform.c + 1000.0, GRID.transform.f - 800.0)
    proj = ee.Projection("EPSG:4326").atScale(10).getInfo()
    scale_x, scale_y = proj["transform"][0], -proj["transform"][4]
    request = {
        "assetId": "c/img",
        "fileFormat": "NUMPY_NDARRAY",
        "bandIds": ["B4"],
        "grid": {
            "dimensions": {"width": 16, "height": 12},
            "affineTransform": {"scaleX": scale_x, "shearX": 0, "translateX": lon,
                                "shearY": 0, "scaleY": scale_y, "translateY": lat},
            "crsCode": proj["crs"],
        },
    }  # fmt: skip
    array = ee.data.getPixels(request)
    # Truth: each output centre in lon/lat, to UTM, to the native pixel containing it.
    cols, rows = np.meshgrid(np.arange(16) + 0.5, np.arange(12) + 0.5)
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32610", always_xy=True)
    xs, ys = to_utm.transform(lon + cols * scale_x, lat + rows * scale_y)  # scale_y < 0: north-up
    native_cols = np.floor((xs - GRID.transform.c) / 10).astype(int)
    native_rows = np.floor((GRID.transform.f - ys) / 10).astype(int)
    expected = truth(0, 0, 0, 300, 200)[native_rows, native_cols]
    assert np.array_equal(array["B4"], expected)
    # And the example's PNG with its visualizationOptions (three bands the test image has).
    png = ee.data.getPixels({**request, "fileFormat": "PNG", "bandIds": ["B4", "B3", "B5"],
                             "visualizationOptions": {"ranges": [{"min": 0, "max": 3000}]}})  # fmt: skip
    rgba = np.asarray(PILImage.open(io.BytesIO(png)).convert("RGBA"))
    assert rgba.shape == (12, 16, 4)
    assert np.array_equal(rgba[:, :, 0], np.rint(np.clip(expected / 3000, 0, 1) * 255).astype("uint8"))


def test_clip_masks_pixels_outside_the_geometry(ee_server):
    clipped = ee.Image("c/img").select("B4").clip(utm_box(40, 50, 60, 80))
    filled = ee.data.computePixels({"expression": clipped.unmask(7, False), "fileFormat": "NUMPY_NDARRAY",
                                    "grid": native_grid(30, 40, 60, 40)})  # fmt: skip
    expected = np.full((40, 60), 7, "uint16")
    expected[10:30, 10:40] = truth(0, 40, 50, 30, 20)
    assert np.array_equal(filled["B4"], expected)
    # As in Earth Engine, unmask() keeps the clipped footprint by default: outside stays masked (0 on the wire).
    kept = ee.data.computePixels({"expression": clipped.unmask(7), "fileFormat": "NUMPY_NDARRAY",
                                  "grid": native_grid(30, 40, 60, 40)})  # fmt: skip
    assert np.array_equal(kept["B4"], np.where(expected == 7, 0, expected))
    # The clipped image's grid is the native window covering the geometry.
    band = clipped.getInfo()["bands"][0]
    assert band["dimensions"] == [30, 20] and band["crs_transform"] == [10.0, 0.0, 500500.0, 0.0, -10.0, 4199600.0]


@pytest.mark.parametrize("reducer", ["mean", "median", "min", "max", "sum", "count"])
def test_reduce_region_over_a_polygon(ee_server, reducer):
    # Rows 10..29, cols 20..44: the image mask (rows < 20, cols < 30) covers part of it.
    box = utm_box(10, 20, 30, 45)
    result = ee.Image("c/img").select(["B4", "B8"]).reduceRegion(getattr(ee.Reducer, reducer)(), box).getInfo()
    missing = mask_of(IMAGE_MASK, 10, 20, 25, 20)
    for band, dtype_band in (("B4", 0), ("B8", 2)):
        values = truth(dtype_band, 10, 20, 25, 20)[~missing]
        expected = {"mean": np.mean(values.astype("float64")), "median": np.median(values.astype("float64")),
                    "min": values.min(), "max": values.max(), "sum": values.astype("int64").sum(),
                    "count": values.size}[reducer]  # fmt: skip
        assert result[band] == pytest.approx(float(expected), rel=1e-12), band
    assert result["B4"] is not None and missing.any() and not missing.all()


def test_reduce_region_at_a_coarser_scale_and_max_pixels(ee_server):
    box = utm_box(40, 40, 80, 80)
    result = ee.Image("c/img").select("B4").reduceRegion(ee.Reducer.count(), box, 20).getInfo()
    assert result == {"B4": 400}  # 40 x 40 native pixels are 20 x 20 at 20 m
    with pytest.raises(
        ee.EEException, match="Too many pixels in the region. Found 1600, but maxPixels allows only 100"
    ):
        ee.Image("c/img").select("B4").reduceRegion(ee.Reducer.mean(), box, maxPixels=100).getInfo()


def test_bitwise_and_where_unit_scale(ee_server):
    image = ee.Image("c/img")
    b4, b3 = truth(0, 50, 60, 20, 10), truth(1, 50, 60, 20, 10)
    assert np.array_equal(pixels(image.select("B4").bitwiseAnd(0xFF), 50, 60, 20, 10)["B4"], b4 & 0xFF)
    replaced = image.select("B4").where(image.select("B3").gt(3000), 5)
    assert np.array_equal(pixels(replaced, 50, 60, 20, 10)["B4"], np.where(b3 > 3000, 5, b4))
    assert (b3 > 3000).any() and (b3 <= 3000).any()
    scaled = pixels(image.select("B4").unitScale(1000, 3000), 50, 60, 20, 10)["B4"]
    assert scaled.dtype == np.float32
    assert np.array_equal(scaled, ((b4.astype("float64") - 1000) / 2000).astype("float32"))
    with pytest.raises(ee.EEException, match="Image.bitwiseAnd needs integer bands"):
        image.select("B4").toFloat().bitwiseAnd(1).getInfo()


def test_expression(ee_server):
    image = ee.Image("c/img")
    evi = image.expression(
        "2.5 * ((NIR - RED) / (NIR + 6 * RED - 7.5 * BLUE + 1))",
        {"NIR": image.select("B4"), "RED": image.select("B3"), "BLUE": image.select("B8")},
    )
    nir, red, blue = (truth(b, 50, 60, 20, 10).astype("float64") for b in (0, 1, 2))
    got = pixels(evi, 50, 60, 20, 10)
    expected = 2.5 * ((nir - red) / (nir + 6 * red - 7.5 * blue + 1))
    assert got.dtype.names == ("constant",)  # as in Earth Engine: 2.5 * (...) is named after the constant
    assert np.allclose(got["constant"], expected, rtol=1e-12)
    named = image.expression("ratio = b('B4') > 3000 ? b(1) % 7 : -b('B3')")
    got = pixels(named, 50, 60, 20, 10)
    b4, b3 = truth(0, 50, 60, 20, 10).astype("int64"), truth(1, 50, 60, 20, 10).astype("int64")
    assert got.dtype.names == ("ratio",)
    assert np.array_equal(got["ratio"], np.where(b4 > 3000, b3 % 7, -b3))
    assert (b4 > 3000).any() and (b4 <= 3000).any()
    with pytest.raises(ee.EEException, match="unknown variable"):
        image.expression("NIR * 2").getInfo()


def test_reproject_reads_on_the_new_lattice(ee_server):
    coarse = ee.Image("c/img").select("B4").reproject(crs="EPSG:32610", scale=20)
    info = coarse.getInfo()["bands"][0]
    assert info["crs_transform"] == [20.0, 0.0, 500000.0, 0.0, -20.0, 4200000.0] and info["dimensions"] == [150, 100]
    # Requested on the native 10 m grid: each 20 m pixel (its centre's native pixel) twice in each direction.
    got = pixels(coarse, 40, 60, 20, 10)["B4"]
    every_other = truth(0, 0, 0, 300, 200)[1::2, 1::2]
    assert np.array_equal(got, np.repeat(np.repeat(every_other[20:25, 30:40], 2, 0), 2, 1))


def test_geometry_buffer_is_distance_metres(ee_server):
    lon, lat = -122.0, 37.9
    ring = ee.Geometry.Point([lon, lat]).buffer(100).getInfo()["coordinates"][0]
    geod = pyproj.Geod(ellps="WGS84")
    distances = [geod.inv(lon, lat, x, y)[2] for x, y in ring]
    assert len(ring) > 32 and max(distances) == pytest.approx(100, rel=1e-3) and min(distances) > 99.0


def test_sample_rectangle(ee_server):
    feature = ee.Image("c/img").select(["B4", "B3"]).sampleRectangle(utm_box(40, 50, 44, 53)).getInfo()
    assert feature["type"] == "Feature"
    assert feature["properties"]["B4"] == truth(0, 40, 50, 3, 4).tolist()
    assert feature["properties"]["B3"] == truth(1, 40, 50, 3, 4).tolist()
    with pytest.raises(ee.EEException, match="no defaultValue"):
        ee.Image("c/img").select("B4").sampleRectangle(utm_box(10, 20, 12, 22)).getInfo()
    filled = ee.Image("c/img").select("B4").sampleRectangle(utm_box(18, 20, 22, 22), defaultValue=-1).getInfo()
    expected = truth(0, 18, 20, 2, 4).astype("float64")
    expected[:2] = -1  # rows 18, 19 are masked
    assert filled["properties"]["B4"] == expected.tolist()


def test_date_format(ee_server):
    date = ee.Date("2021-03-04T05:06:07.250Z")
    assert date.format().getInfo() == "2021-03-04T05:06:07"
    assert date.format("yyyy-MM-dd HH:mm:ss.SSS").getInfo() == "2021-03-04 05:06:07.250"
    assert date.format("D EEE MMM d, h a Z", "America/Los_Angeles").getInfo() == "62 Wed Mar 3, 9 PM -0800"
    assert date.format("'day' DDD").getInfo() == "day 063"
    with pytest.raises(ee.EEException, match="Unsupported letter 'Q'"):
        date.format("Q").getInfo()


def test_the_algorithm_page_is_current():
    """docs/server-algorithms.md flags every catalog algorithm; regenerate it when the registry changes."""
    from pathlib import Path

    from eexarray.server.compute.catalog_doc import render

    page = (Path(__file__).parents[2] / "docs" / "server-algorithms.md").read_text(encoding="utf-8")
    assert page == render(), "run: python -m eexarray.server.compute.catalog_doc > docs/server-algorithms.md"
    assert "| `Image.reduceRegion` | **yes** |" in page and "| `Image.glcmTexture` | no |" in page


def test_sample_gives_one_feature_per_pixel(ee_server):
    # Rows 18..21, cols 20..22: the first two rows are masked (the image mask is rows < 20, cols < 30).
    samples = ee.Image("c/img").select(["B4", "B8"]).sample(utm_box(18, 20, 22, 23), geometries=True).getInfo()
    assert samples["type"] == "FeatureCollection"
    features = samples["features"]
    assert len(features) == 6  # dropNulls: the 6 unmasked pixels, row by row
    expected_b4, expected_b8 = truth(0, 20, 20, 3, 2).ravel(), truth(2, 20, 20, 3, 2).ravel()
    assert [f["properties"]["B4"] for f in features] == expected_b4.tolist()
    assert [f["properties"]["B8"] for f in features] == expected_b8.tolist()
    lon, lat = TO_LONLAT.transform(500000 + 205.0, 4200000 - 205.0)  # centre of pixel (20, 20)
    assert features[0]["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-9)
    kept = ee.Image("c/img").select("B4").sample(utm_box(18, 20, 22, 23), dropNulls=False).size().getInfo()
    assert kept == 12
    values = ee.Image("c/img").select("B4").sample(utm_box(40, 40, 60, 60), scale=20).aggregate_array("B4")
    assert values.getInfo() == truth(0, 0, 0, 300, 200)[41:60:2, 41:60:2].ravel().tolist()
    some = ee.Image("c/img").select("B4").sample(utm_box(40, 40, 60, 60), factor=0.25, seed=3).size().getInfo()
    assert 50 < some < 150  # about a quarter of 400
    with pytest.raises(ee.EEException, match="at most 5000 can be returned"):
        ee.Image("c/img").select("B4").sample().size().getInfo()


def test_select_by_regex_update_mask_and_unmask(ee_server):
    image = ee.Image("c/img")
    assert image.select("B[34]").bandNames().getInfo() == ["B4", "B3"]
    assert image.select(["B.*"], None).bandNames().getInfo() == ["B4", "B3", "B8", "B5"]
    b4, b3 = truth(0, 10, 20, 20, 20), truth(1, 10, 20, 20, 20)
    masked = image.select("B4").updateMask(image.select("B3").gt(3000))
    got = pixels(masked.unmask(1, False), 10, 20, 20, 20)["B4"]
    # Masked: the image mask (rows < 20, cols < 30) and B3 <= 3000; unmask fills both with 1.
    image_mask = mask_of(IMAGE_MASK, 10, 20, 20, 20)
    assert np.array_equal(got, np.where(image_mask | (b3 <= 3000), 1, b4))
    assert (b3 <= 3000).any() and image_mask.any()


def test_reduce_region_over_a_point_and_a_line(ee_server):
    def centre(row: int, col: int) -> list[float]:
        return list(TO_LONLAT.transform(500000 + (col + 0.5) * 10, 4200000 - (row + 0.5) * 10))

    image = ee.Image("c/img").select("B4")
    point = image.reduceRegion(ee.Reducer.first(), ee.Geometry.Point(centre(45, 60))).getInfo()
    assert point == {"B4": int(truth(0, 45, 60, 1, 1)[0, 0])}
    line = ee.Geometry.LineString([centre(45, 60), centre(45, 70)])
    counted = image.reduceRegion(ee.Reducer.count(), line).getInfo()
    summed = image.reduceRegion(ee.Reducer.sum(), line).getInfo()
    assert counted == {"B4": 11} and summed == {"B4": int(truth(0, 45, 60, 11, 1).astype("int64").sum())}


def test_more_math(ee_server):
    image = ee.Image("c/img")
    b4 = truth(0, 50, 60, 20, 10)
    b8 = truth(2, 50, 60, 20, 10)  # int8, negatives included
    assert (b8 < 0).any()
    b4_float = image.select("B4").toFloat()
    cases = {
        "or": (image.select("B4").bitwiseOr(0x0F), b4 | 0x0F),
        "xor": (image.select("B4").bitwiseXor(0xFF), b4 ^ 0xFF),
        "mod": (image.select("B8").mod(7), np.fmod(b8, 7)),  # the sign of the dividend
        "sqrt": (image.select("B4").sqrt(), np.sqrt(b4.astype("float64")).astype("float32")),
        "exp": (image.select("B8").divide(100.0).exp(), np.exp(b8 / 100.0)),
        "log": (image.select("B4").log(), np.log(b4.astype("float64")).astype("float32")),
        "log10": (image.select("B4").log10(), np.log10(b4.astype("float64")).astype("float32")),
        "floor": (b4_float.divide(7).floor(), np.floor(b4.astype("float32") / np.float32(7))),
        "ceil": (b4_float.divide(7).ceil(), np.ceil(b4.astype("float32") / np.float32(7))),
        "round": (image.select("B8").divide(2.0).round(), np.sign(b8) * np.floor(np.abs(b8.astype(float)) / 2 + 0.5)),
    }
    for name, (computed, expected) in cases.items():
        got = pixels(computed, 50, 60, 20, 10)
        field = got.dtype.names[0]
        assert np.allclose(got[field], expected, rtol=1e-6, atol=0), name
        if name in ("or", "xor", "mod"):
            assert np.array_equal(got[field], expected), name


def test_bbox_and_visualize_palette_and_gain(ee_server):
    west, south = TO_LONLAT.transform(500000 + 500.0, 4200000 - 600.0)
    east, north = TO_LONLAT.transform(500000 + 800.0, 4200000 - 400.0)
    count = ee.Image("c/img").select("B4").reduceRegion(ee.Reducer.count(), ee.Geometry.BBox(west, south, east, north))
    assert 500 < count.getInfo()["B4"] <= 30 * 20 + 60  # ~300 m x 200 m of 10 m pixels (edges in lon/lat)
    b4 = truth(0, 50, 60, 20, 10).astype("float64")
    palette = pixels(ee.Image("c/img").select("B4").visualize(min=0, max=4000, palette=["000000", "ff0000"]),
                     50, 60, 20, 10)  # fmt: skip
    assert palette.dtype.names == ("vis-red", "vis-green", "vis-blue")
    assert np.array_equal(palette["vis-red"], np.rint(np.clip(b4 / 4000, 0, 1) * 255).astype("uint8"))
    assert not palette["vis-green"].any()
    grey = pixels(ee.Image("c/img").select("B4").visualize(gain=0.05, bias=10), 50, 60, 20, 10)
    assert grey.dtype.names == ("vis-gray",)
    assert np.array_equal(grey["vis-gray"], np.rint(np.clip(b4 * 0.05 + 10, 0, 255)).astype("uint8"))


def test_rotated_grids_are_refused_clearly():
    from affine import Affine

    from eexarray.geometry import PixelGrid
    from eexarray.server.catalog import Catalog
    from eexarray.server.compute.evaluator import Evaluator
    from eexarray.server.compute.values import Geometry
    from eexarray.server.errors import ApiError
    from eexarray.server.images import InMemoryImage

    rotated = PixelGrid("EPSG:32610", Affine(10, 2, 500000, 2, -10, 4200000), 20, 20)
    evaluator = Evaluator(Catalog.build(entries=[InMemoryImage("t/rot", {"b": np.zeros((20, 20), "uint8")}, rotated)]))
    image = evaluator.invoke("Image.load", {"id": "t/rot"})
    box = Geometry(
        {"type": "Polygon", "coordinates": [[[-123, 37.9], [-122.99, 37.9], [-122.99, 37.91], [-123, 37.9]]]}
    )
    for name, arguments in (
        ("Image.clipToBoundsAndScale", {"input": image, "geometry": box}),
        ("Image.sampleRectangle", {"image": image, "region": box}),
        ("Image.reduceRegion", {"image": image, "reducer": evaluator.invoke("Reducer.mean", {}), "geometry": box}),
    ):
        with pytest.raises(ApiError, match="Only axis-aligned transforms are supported"):
            evaluator.invoke(name, arguments)
