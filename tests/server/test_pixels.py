"""getPixels: exact window reads, resampling against GDAL, every format, limits and errors."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pyproj
import pytest
import rasterio
import rasterio.warp
import requests
from affine import Affine
from PIL import Image

from eexarray.geometry import PixelGrid
from eexarray.server import procedural_values
from tests.server.helpers import BIG_GRID, MASKED_WINDOW, UTM_GRID, make_in_memory, rest_grid

PUBLIC = "projects/earthengine-public/assets"
DTYPES = {"B1": "uint16", "B2": "int8", "B3": "float32", "B4": "float64"}


def get_pixels(server, asset, body, version="v1"):
    return requests.post(f"{server.url}/{version}/{PUBLIC}/{asset}:getPixels", json=body, timeout=60)


def load_npy(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/octet-stream"
    return np.load(io.BytesIO(response.content))


def expected(band_index, rows, cols, dtype, time=0):
    return procedural_values(band_index, np.asarray(rows)[:, None], np.asarray(cols)[None, :], time, dtype)


def window_grid(row, col, width, height, grid=UTM_GRID):
    """The REST grid of a window of ``grid`` (same lattice: an aligned request)."""
    return rest_grid(grid.transform @ Affine.translation(col, row), width, height, grid.crs)


# -- aligned: pure window reads --------------------------------------------------------
def test_aligned_window_is_bit_exact_for_mixed_dtypes_and_mask(server):
    row, col, width, height = 50, 250, 300, 200
    array = load_npy(
        get_pixels(server, "test/procedural", {"fileFormat": "NPY", "grid": window_grid(row, col, width, height)})
    )
    assert array.shape == (height, width)
    assert array.dtype.names == ("B1", "B2", "B3", "B4")
    assert [array.dtype[name].name for name in array.dtype.names] == list(DTYPES.values())
    masked = np.zeros((height, width), bool)
    masked[
        MASKED_WINDOW.row_start - row : MASKED_WINDOW.row_stop - row,
        MASKED_WINDOW.col_start - col : MASKED_WINDOW.col_stop - col,
    ] = True
    for index, (band, dtype) in enumerate(DTYPES.items()):
        truth = expected(index, range(row, row + height), range(col, col + width), dtype)
        assert np.array_equal(array[band][~masked], truth[~masked])
        assert not array[band][masked].any()  # masked pixels are 0


def test_default_grid_is_native_and_nodata_is_zero(server):
    image = make_in_memory()
    array = load_npy(get_pixels(server, "test/memory", {"fileFormat": "NPY"}))
    temp = np.asarray(image.data["temp"])
    assert array.shape == temp.shape
    assert np.array_equal(array["temp"][temp != -9999], temp[temp != -9999])
    assert not array["temp"][temp == -9999].any()
    assert np.array_equal(array["count"], image.data["count"])


def test_window_partly_outside_the_footprint_is_zero_there(server):
    # Starts 10 rows above and 20 columns left of the image.
    array = load_npy(get_pixels(server, "test/procedural", {
        "fileFormat": "NPY", "bandIds": ["B1"], "grid": window_grid(-10, -20, 50, 40)
    }))  # fmt: skip
    assert not array["B1"][:10].any() and not array["B1"][:, :20].any()
    assert np.array_equal(array["B1"][10:, 20:], expected(0, range(30), range(30), "uint16"))


def test_band_subset_order_and_huge_image_corner(server):
    row = col = 2**20 - 64
    array = load_npy(get_pixels(server, "test/huge", {
        "fileFormat": "NPY", "bandIds": ["B2", "B1"], "grid": window_grid(row, col, 64, 64, BIG_GRID)
    }))  # fmt: skip
    assert array.dtype.names == ("B2", "B1")
    assert np.array_equal(array["B2"], expected(1, range(row, row + 64), range(col, col + 64), "uint16"))
    assert np.array_equal(array["B1"], expected(0, range(row, row + 64), range(col, col + 64), "uint16"))


def test_v1alpha_prefix_serves_the_same(server):
    body = {"fileFormat": "NPY", "bandIds": ["B1"], "grid": window_grid(0, 0, 8, 8)}
    assert (
        get_pixels(server, "test/procedural", body, "v1alpha").content
        == get_pixels(server, "test/procedural", body).content
    )


# -- resampling ------------------------------------------------------------------------
def test_downsampling_in_the_native_crs_is_nearest(server):
    # 2x coarser: output pixel i has its centre in native pixel 2i+1.
    body = {"fileFormat": "NPY", "bandIds": ["B1"], "grid": rest_grid(Affine(20, 0, 500000, 0, -20, 4200000), 100, 80)}
    array = load_npy(get_pixels(server, "test/procedural", body))
    assert np.array_equal(array["B1"], expected(0, range(1, 160, 2), range(1, 200, 2), "uint16"))


def test_huge_image_downsampled_reads_only_sampled_pixels(server):
    factor = 1024
    transform = BIG_GRID.transform @ Affine.scale(factor)
    array = load_npy(
        get_pixels(
            server, "test/huge", {"fileFormat": "NPY", "bandIds": ["B1"], "grid": rest_grid(transform, 1024, 1024)}
        )
    )
    centres = np.arange(1024) * factor + factor // 2
    assert np.array_equal(array["B1"], expected(0, centres, centres, "uint16"))


def _gdal_nearest(source: np.ndarray, source_grid: PixelGrid, target: PixelGrid) -> np.ndarray:
    destination = np.zeros(target.shape, source.dtype)
    rasterio.warp.reproject(
        source, destination, src_transform=source_grid.transform, src_crs=source_grid.crs,
        dst_transform=target.transform, dst_crs=target.crs, resampling=rasterio.warp.Resampling.nearest,
    )  # fmt: skip
    return destination


@pytest.mark.parametrize(
    "target",
    [
        # Web Mercator at 37 m (the image spans x -13567209..-13555857, y 4437130..4444808), with margins.
        PixelGrid("EPSG:3857", Affine(37.0, 0, -13568000, 0, -37.0, 4445500), 340, 240),
        # Geographic, sheared: the general (non separable) path.
        PixelGrid("EPSG:4326", Affine(0.0004, 0.00002, -121.88, 0.00001, -0.0003, 37.045), 270, 200),
        # Same CRS, a non-integer offset and scale.
        PixelGrid("EPSG:32610", Affine(47.3, 0, 599123.4, 0, -41.7, 4100321.9), 190, 150),
    ],
    ids=["mercator", "sheared-geographic", "same-crs-fractional"],
)
def test_reprojection_matches_gdal_nearest(server, target):
    image = make_in_memory()
    source = np.asarray(image.data["count"])  # int16, all >= 1: 0 means outside
    array = load_npy(
        get_pixels(server, "test/memory", {"fileFormat": "NPY", "bandIds": ["count"], "grid": target.to_rest()})
    )["count"]
    gdal = _gdal_nearest(source, image.grid, target)
    assert (gdal != 0).sum() > 0.3 * gdal.size  # the target really overlaps the image
    differing = array != gdal
    # GDAL warps with an approximate transformer (error up to 1/8 pixel), so where a pixel
    # centre maps that close to a native pixel edge GDAL may pick the neighbour. Those
    # pixels, and only those, may differ; the exact position is computed here with pyproj.
    assert differing.mean() < 0.05, differing.mean()
    rows, cols = np.nonzero(differing)
    xs, ys = target.transform @ (cols + 0.5, rows + 0.5)
    xs, ys = pyproj.Transformer.from_crs(target.crs, image.grid.crs, always_xy=True).transform(xs, ys)
    native_cols, native_rows = ~image.grid.transform @ (np.asarray(xs), np.asarray(ys))
    edge_distance = np.minimum(
        np.minimum(native_cols % 1, 1 - native_cols % 1), np.minimum(native_rows % 1, 1 - native_rows % 1)
    )
    assert (edge_distance < 0.125).all(), edge_distance.max()


def test_region_with_dimensions_rescales_and_without_is_the_covering_window(server):
    region = {
        "type": "Polygon",
        "coordinates": [[[-122.99, 37.9], [-122.98, 37.9], [-122.98, 37.91], [-122.99, 37.91], [-122.99, 37.9]]],
    }
    sized = load_npy(get_pixels(server, "test/procedural", {
        "fileFormat": "NPY", "bandIds": ["B1"], "region": region, "grid": {"dimensions": {"width": 32, "height": 48}}
    }))  # fmt: skip
    assert sized.shape == (48, 32)
    covering = load_npy(
        get_pixels(server, "test/procedural", {"fileFormat": "NPY", "bandIds": ["B1"], "region": region})
    )
    west, south, east, north = rasterio.warp.transform_bounds(
        "EPSG:4326", "EPSG:32610", -122.99, 37.9, -122.98, 37.91, densify_pts=21
    )
    col0, row0 = int(np.floor((west - 500000) / 10)), int(np.floor((4200000 - north) / 10))
    col1, row1 = int(np.ceil((east - 500000) / 10)), int(np.ceil((4200000 - south) / 10))
    assert covering.shape == (row1 - row0, col1 - col0)
    assert np.array_equal(covering["B1"], expected(0, range(row0, row1), range(col0, col1), "uint16"))


# -- formats ---------------------------------------------------------------------------
def test_geotiff_reads_back_exactly_with_rasterio(server):
    grid = window_grid(5, 7, 64, 32)
    response = get_pixels(server, "test/procedural", {"fileFormat": "GEO_TIFF", "bandIds": ["B2", "B1"], "grid": grid})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/tiff"
    with rasterio.MemoryFile(response.content) as memory, memory.open() as dataset:
        assert dataset.crs.to_epsg() == 32610
        assert dataset.transform == Affine(10, 0, 500070, 0, -10, 4199950)
        assert dataset.descriptions == ("B2", "B1")
        assert dataset.dtypes == ("int32", "int32")  # int8 + uint16 promoted to one GeoTIFF type
        data = dataset.read()
    assert np.array_equal(data[0], expected(1, range(5, 37), range(7, 71), "int8"))
    assert np.array_equal(data[1], expected(0, range(5, 37), range(7, 71), "uint16"))


def test_zipped_geotiff_per_band(server):
    body = {"fileFormat": "ZIPPED_GEO_TIFF_PER_BAND", "bandIds": ["B1", "B3"], "grid": window_grid(0, 0, 16, 16)}
    response = get_pixels(server, "test/procedural", body)
    assert response.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == ["procedural.B1.tif", "procedural.B3.tif"]
        with rasterio.MemoryFile(archive.read("procedural.B3.tif")) as memory, memory.open() as dataset:
            assert dataset.dtypes == ("float32",)
            assert np.array_equal(dataset.read(1), expected(2, range(16), range(16), "float32"))


def test_png_visualization_with_ranges_and_transparent_mask(server):
    row, col = MASKED_WINDOW.row_start - 10, MASKED_WINDOW.col_start - 10
    body = {
        "fileFormat": "PNG", "bandIds": ["B1", "B3", "B4"], "grid": window_grid(row, col, 40, 30),
        # One range per band, each cutting through the band's values (7724..9282, 991..1186, 1003..1198).
        "visualizationOptions": {"ranges": [{"min": 8000, "max": 9000}, {"min": 1000, "max": 1100}, {"min": 1050, "max": 1150}]},
    }  # fmt: skip
    response = get_pixels(server, "test/procedural", body)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    ranges = [(8000, 9000), (1000, 1100), (1050, 1150)]
    picture = np.asarray(Image.open(io.BytesIO(response.content)))
    assert picture.shape == (30, 40, 4)
    rows, cols = range(row, row + 30), range(col, col + 40)
    clear = np.ones((30, 40), bool)
    clear[10:, 10:] = False  # the masked window starts 10 rows and 10 columns in
    for channel, (index, dtype) in enumerate([(0, "uint16"), (2, "float32"), (3, "float64")]):
        values = expected(index, rows, cols, dtype).astype("float64")
        low, high = ranges[channel]
        truth = np.rint(np.clip((values - low) / (high - low), 0, 1) * 255)
        assert len(np.unique(truth[clear])) > 50  # a real stretch, not a saturated block
        assert np.array_equal(picture[..., channel][clear], truth[clear])
    assert (picture[10:, 10:, 3] == 0).all()  # the masked window: transparent
    assert (picture[:10, :, 3] == 255).all()
    assert not picture[10:, 10:, :3].any()


def test_palette_and_gamma(server):
    body = {
        "fileFormat": "PNG", "bandIds": ["B1"], "grid": window_grid(0, 0, 20, 10),
        "visualizationOptions": {"ranges": [{"min": 100, "max": 500}], "paletteColors": ["000000", "#ff0000", "ffffff"]},
    }  # fmt: skip
    picture = np.asarray(Image.open(io.BytesIO(get_pixels(server, "test/procedural", body).content)))
    values = expected(0, range(10), range(20), "uint16").astype("float64")
    position = np.clip((values - 100) / 400, 0, 1) * 2
    red = np.rint(np.where(position <= 1, position * 255, 255))
    green = np.rint(np.where(position <= 1, 0, (position - 1) * 255))
    assert np.array_equal(picture[..., 0], red)
    assert np.array_equal(picture[..., 1], green)
    gamma_body = {
        "fileFormat": "PNG", "bandIds": ["B1"], "grid": window_grid(0, 0, 20, 10),
        "visualizationOptions": {"ranges": [{"min": 0, "max": 1000}], "gamma": {"value": 2.0}},
    }  # fmt: skip
    grey = np.asarray(Image.open(io.BytesIO(get_pixels(server, "test/procedural", gamma_body).content)))[..., 0]
    assert np.array_equal(grey, np.rint(np.sqrt(np.clip(values / 1000, 0, 1)) * 255))


def test_jpeg_and_auto_format(server):
    body = {"fileFormat": "JPEG", "bandIds": ["B1"], "grid": window_grid(0, 0, 64, 64),
            "visualizationOptions": {"ranges": [{"min": 0, "max": 4000}]}}  # fmt: skip
    response = get_pixels(server, "test/procedural", body)
    assert response.headers["Content-Type"] == "image/jpeg"
    picture = np.asarray(Image.open(io.BytesIO(response.content)).convert("L")).astype(float)
    truth = np.clip(expected(0, range(64), range(64), "uint16") / 4000, 0, 1) * 255
    assert np.abs(picture - truth).mean() < 3  # lossy, but the same picture
    auto_clear = get_pixels(server, "test/procedural", {**body, "fileFormat": "AUTO_JPEG_PNG"})
    assert auto_clear.headers["Content-Type"] == "image/jpeg"
    auto_masked = get_pixels(
        server, "test/procedural", {**body, "fileFormat": "AUTO_JPEG_PNG", "grid": window_grid(90, 290, 64, 64)}
    )
    assert auto_masked.headers["Content-Type"] == "image/png"  # transparency needs PNG


def test_visualized_npy_has_vis_bands(server):
    body = {"fileFormat": "NPY", "bandIds": ["B1"], "grid": window_grid(0, 0, 4, 4),
            "visualizationOptions": {"ranges": [{"min": 0, "max": 255}]}}  # fmt: skip
    array = load_npy(get_pixels(server, "test/procedural", body))
    assert array.dtype.names == ("vis-red", "vis-green", "vis-blue")
    assert np.array_equal(array["vis-red"], np.clip(expected(0, range(4), range(4), "uint16"), 0, 255).astype("uint8"))


# -- limits and errors -----------------------------------------------------------------
def error_of(response, status=400):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "status"}
    assert body["error"]["code"] == status
    return body["error"]


def test_total_size_limit_counts_one_mask_byte_per_pixel(server):
    # 4096 x 4096 x (2 + 1) bytes is exactly the limit: allowed.
    at_limit = get_pixels(
        server, "test/huge", {"fileFormat": "NPY", "bandIds": ["B1"], "grid": window_grid(0, 0, 4096, 4096, BIG_GRID)}
    )
    assert at_limit.status_code == 200 and len(at_limit.content) > 4096 * 4096 * 2
    over = error_of(
        get_pixels(
            server,
            "test/huge",
            {"fileFormat": "NPY", "bandIds": ["B1"], "grid": window_grid(0, 0, 4096, 4097, BIG_GRID)},
        )
    )
    assert over["message"] == "Total request size (50343936 bytes) must be less than or equal to 50331648 bytes."
    assert over["status"] == "INVALID_ARGUMENT"


def test_dimension_and_band_limits(server):
    wide = error_of(
        get_pixels(
            server, "test/huge", {"fileFormat": "NPY", "bandIds": ["B1"], "grid": window_grid(0, 0, 40818, 1, BIG_GRID)}
        )
    )
    assert wide["message"] == "Pixel grid dimensions (40818x1) must be less than or equal to 32768."
    native = error_of(get_pixels(server, "test/huge", {"fileFormat": "NPY"}))
    assert native["message"] == "Pixel grid dimensions (1048576x1048576) must be less than or equal to 32768."
    many = error_of(get_pixels(server, "test/huge", {"fileFormat": "NPY", "bandIds": [f"B{i}" for i in range(1025)]}))
    assert many["message"] == "Number of bands (1025) must be less than or equal to 1024."


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"fileFormat": "NPY", "bandIds": ["B9"]}, "Band 'B9' not found"),
        ({"fileFormat": "NPY", "grid": {"crsCode": "EPSG:99999"}}, "EPSG:99999"),
        ({"fileFormat": "NPY", "grid": {"crsCode": "EPSG:4326", "crsWkt": "x"}}, "not both"),
        ({"fileFormat": "NPY", "grid": {"crsWkt": "NOT A CRS"}}, "NOT A CRS"),
        ({"fileFormat": "NPY", "grid": {"affineTransform": {"scaleX": 0, "scaleY": 0}}}, "singular"),
        ({"fileFormat": "NPY", "grid": {"dimensions": {"width": -3, "height": 2}}}, "positive integer"),
        ({"fileFormat": "NPY", "grid": {"scale": 3}}, 'Unknown name "scale"'),
        ({"fileFormat": "NPY", "colour": "red"}, 'Unknown name "colour"'),
        ({"fileFormat": "BMP"}, "Invalid fileFormat 'BMP'"),
        ({"fileFormat": "NPY", "bandIds": "B1"}, "bandIds must be a list"),
        ({"fileFormat": "NPY", "bandIds": ["B1", "B1"]}, "more than once"),
        ({"fileFormat": "NPY", "region": {"type": "Blob"}}, "region must be a GeoJSON geometry"),
        ({"fileFormat": "PNG", "bandIds": ["B1", "B2"]}, "1 or 3 bands"),
        (
            {"fileFormat": "PNG", "bandIds": ["B1", "B2", "B3"], "visualizationOptions": {"paletteColors": ["ff0000"]}},
            "single band",
        ),
        (
            {"fileFormat": "PNG", "bandIds": ["B1"], "visualizationOptions": {"paletteColors": ["zzz"]}},
            "Invalid palette color",
        ),
        (
            {"fileFormat": "PNG", "bandIds": ["B1"], "visualizationOptions": {"gamma": {"value": -1}}},
            "gamma must be positive",
        ),
        ({"fileFormat": "PNG", "bandIds": ["B1"], "visualizationOptions": {"contrast": 2}}, 'Unknown name "contrast"'),
        ([1, 2, 3], "must be a JSON object"),
    ],
)
def test_bad_requests_are_400_with_a_specific_message(server, body, fragment):
    error = error_of(get_pixels(server, "test/procedural", body))
    assert fragment in error["message"]
    assert error["status"] == "INVALID_ARGUMENT"


def test_malformed_json_unknown_asset_and_non_image(server):
    url = f"{server.url}/v1/{PUBLIC}/test/procedural:getPixels"
    malformed = error_of(
        requests.post(url, data=b"{fileFormat:", headers={"Content-Type": "application/json"}, timeout=10)
    )
    assert malformed["message"].startswith("Invalid JSON payload received.")
    missing = error_of(get_pixels(server, "test/none", {"fileFormat": "NPY"}), 404)
    assert missing == {"code": 404, "message": f'Asset "{PUBLIC}/test/none" not found.', "status": "NOT_FOUND"}
    collection = error_of(get_pixels(server, "test/coll", {"fileFormat": "NPY"}))
    assert "is not an image" in collection["message"]


def test_pixel_requests_are_logged_in_stats(fresh_stats):
    server = fresh_stats
    response = get_pixels(
        server, "test/procedural", {"fileFormat": "NPY", "bandIds": ["B3", "B1"], "grid": window_grid(0, 0, 12, 7)}
    )
    get_pixels(server, "test/procedural", {"fileFormat": "NPY", "bandIds": ["nope"]})  # a 400: not logged
    stats = server.stats()
    assert stats["requests"] == {"getPixels": 2}
    assert stats["pixel_requests"] == [{
        "method": "getPixels", "asset": f"{PUBLIC}/test/procedural", "bandIds": ["B3", "B1"],
        "width": 12, "height": 7, "fileFormat": "NPY", "bytes": len(response.content),
    }]  # fmt: skip
    assert stats["pixels_bytes"] == len(response.content)


def test_crs_wkt_grids(server):
    wkt = pyproj.CRS("EPSG:32610").to_wkt()
    rest = window_grid(3, 4, 20, 10)
    rest.pop("crsCode")
    array = load_npy(
        get_pixels(server, "test/procedural", {"fileFormat": "NPY", "bandIds": ["B1"], "grid": {**rest, "crsWkt": wkt}})
    )
    assert np.array_equal(array["B1"], expected(0, range(3, 13), range(4, 24), "uint16"))  # still an aligned read
    # A CRS without an EPSG code travels as WKT, into the GeoTIFF too.
    laea = "+proj=laea +lat_0=38 +lon_0=-123 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
    laea_wkt = pyproj.CRS(laea).to_wkt()
    target = {"crsWkt": laea_wkt, "affineTransform": {"scaleX": 20, "scaleY": -20, "translateX": 0, "translateY": -5000},
              "dimensions": {"width": 64, "height": 64}}  # fmt: skip
    response = get_pixels(server, "test/procedural", {"fileFormat": "GEO_TIFF", "bandIds": ["B1"], "grid": target})
    assert response.status_code == 200, response.text
    with rasterio.MemoryFile(response.content) as memory, memory.open() as dataset:
        assert pyproj.CRS(dataset.crs.to_wkt()) == pyproj.CRS(laea_wkt)
        assert dataset.transform == Affine(20, 0, 0, 0, -20, -5000)
        assert dataset.read(1).any()
