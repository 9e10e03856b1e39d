"""Opening assets: pixel-exact values, coordinates, CRS conventions, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio.crs
import rasterio.transform
import xarray as xr
from affine import Affine

import eexarray
from eexarray.backend.metadata import MixedGridWarning
from eexarray.geometry import PixelGrid
from eexarray.server.images import InMemoryImage, ProceduralImage, ServerCollection, procedural_values

from .conftest import MIXED_DTYPES, SMALL, UTM, with_masks


def expected(band, rows, cols, dtype, time=0):
    return procedural_values(band, np.asarray(rows)[:, None], np.asarray(cols)[None, :], time, dtype)


def test_native_grid_pixel_exact_with_mixed_dtypes(server):
    raw = xr.open_dataset("ee://test/mixed", engine="eexarray", endpoint=server.url, chunks={}, mask_and_scale=False)
    decoded = xr.open_dataset("ee://test/mixed", engine="eexarray", endpoint=server.url, chunks={})
    assert list(raw.data_vars) == list(decoded.data_vars) == ["u8", "i16", "f32", "f64"]
    assert raw.sizes == decoded.sizes == {"y": 400, "x": 600}
    # decoded (the default): the smallest float holding every value exactly
    floats = {"u8": "float32", "i16": "float32", "f32": "float32", "f64": "float64"}
    for index, (name, dtype) in enumerate(zip(raw.data_vars, MIXED_DTYPES)):
        assert raw[name].dtype == np.dtype(dtype)
        assert decoded[name].dtype == np.dtype(floats[name])
        truth = expected(index, range(400), range(600), dtype)
        np.testing.assert_array_equal(raw[name].values, truth)
        np.testing.assert_array_equal(decoded[name].values, truth.astype(floats[name]))


def test_coordinates_are_pixel_centres_and_rioxarray_reads_the_crs(server):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url)
    xs, _ = rasterio.transform.xy(SMALL.transform, [0] * 600, list(range(600)), offset="center")
    _, ys = rasterio.transform.xy(SMALL.transform, list(range(400)), [0] * 400, offset="center")
    np.testing.assert_array_equal(ds.x.values, xs)
    np.testing.assert_array_equal(ds.y.values, ys)
    assert ds.rio.crs.to_epsg() == 32610
    assert ds.rio.transform() == SMALL.transform
    assert ds.u8.encoding["grid_mapping"] == "spatial_ref"
    assert ds.spatial_ref.attrs["GeoTransform"].split() == [repr(float(v)) for v in SMALL.transform.to_gdal()]


def test_region_on_native_lattice_is_a_window_read(server):
    region = SMALL.window_covering((500105.0, 4198005.0, 500395.0, 4199795.0))
    west, south, east, north = (500105.0, 4198005.0, 500395.0, 4199795.0)
    import pyproj

    to_ll = pyproj.Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    lon_w, lat_s = to_ll.transform(west, south)
    lon_e, lat_n = to_ll.transform(east, north)
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, region=(lon_w, lat_s, lon_e, lat_n))
    grid = PixelGrid(UTM, Affine(*ds.rio.transform()[:6]), ds.sizes["x"], ds.sizes["y"])
    row0, col0 = grid.offset_in(SMALL)
    assert ds.sizes["y"] >= region.height - 2 and ds.sizes["x"] >= region.width - 2
    rows = range(row0, row0 + ds.sizes["y"])
    cols = range(col0, col0 + ds.sizes["x"])
    np.testing.assert_array_equal(ds.i16.values, expected(1, rows, cols, "int16"))


def test_shifted_grid_integer_and_half_pixel(server):
    # integer shift: exact window; half-pixel shift: nearest neighbour picks the pixel holding each centre
    for dx, dy in ((30.0, -50.0), (5.0, -5.0), (-15.0, 25.0)):
        transform = Affine(10, 0, 500000 + dx, 0, -10, 4200000 + dy)
        grid = {
            "dimensions": {"width": 50, "height": 40},
            "affineTransform": {
                "scaleX": 10,
                "shearX": 0,
                "translateX": transform.c,
                "shearY": 0,
                "scaleY": -10,
                "translateY": transform.f,
            },
            "crsCode": UTM,
        }
        ds = eexarray.open_dataset("test/mixed", endpoint=server.url, grid=grid, bands=["f64"])
        centres_x = transform.c + (np.arange(50) + 0.5) * 10
        centres_y = transform.f - (np.arange(40) + 0.5) * 10
        cols = np.floor((centres_x - 500000) / 10).astype(int)
        rows = np.floor((4200000 - centres_y) / 10).astype(int)
        values = expected(3, rows, cols, "float64")
        outside = (rows[:, None] < 0) | (rows[:, None] >= 400) | (cols[None, :] < 0) | (cols[None, :] >= 600)
        np.testing.assert_array_equal(ds.f64.values, np.where(outside, np.nan, values))  # outside: masked
        raw = eexarray.open_dataset("test/mixed", endpoint=server.url, grid=grid, bands=["f64"], mask_and_scale=False)
        np.testing.assert_array_equal(raw.f64.values, np.where(outside, 0, values))  # as getPixels sends it


def test_rescaled_grid_samples_nearest(server):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, crs=UTM, scale=20, bands=["i16"])
    grid = PixelGrid(UTM, Affine(*ds.rio.transform()[:6]), ds.sizes["x"], ds.sizes["y"])
    assert grid.transform.a == 20 and grid.bounds == SMALL.bounds
    rows = 2 * np.arange(ds.sizes["y"]) + 1  # a 20 m centre falls in the second 10 m pixel
    cols = 2 * np.arange(ds.sizes["x"]) + 1
    np.testing.assert_array_equal(ds.i16.values, expected(1, rows, cols, "int16"))


def test_reprojected_grid_matches_rasterio(server):
    import pyproj
    import rasterio.warp
    from rasterio.enums import Resampling

    # native values, as GDAL compares them (masked pixels 0 = dst_nodata)
    ds = eexarray.open_dataset(
        "test/memory", endpoint=server.url, crs="EPSG:3857", scale=12.0, bands=["a"], mask_and_scale=False
    )
    native = eexarray.open_dataset(
        "test/memory", endpoint=server.url, bands=["a"], chunks=None, mask_and_scale=False
    ).a.values
    destination = np.zeros((ds.sizes["y"], ds.sizes["x"]), dtype="int16")
    transform = ds.rio.transform()
    rasterio.warp.reproject(
        native,
        destination,
        src_transform=SMALL.transform,
        src_crs=UTM,
        dst_transform=transform,
        dst_crs="EPSG:3857",
        resampling=Resampling.nearest,
        dst_nodata=0,
    )
    got = ds.a.values
    rows, cols = np.nonzero(got != destination)
    # GDAL's warper uses an approximate transformer (error up to 0.125 px): the two may only
    # disagree where an output pixel centre lies that close to an edge of a native pixel.
    xs, ys = pyproj.Transformer.from_crs("EPSG:3857", UTM, always_xy=True).transform(
        transform.c + (cols + 0.5) * transform.a, transform.f + (rows + 0.5) * transform.e
    )
    native_col = (np.asarray(xs) - SMALL.transform.c) / 10
    native_row = (SMALL.transform.f - np.asarray(ys)) / 10
    distance = np.minimum(np.abs(native_col - np.round(native_col)), np.abs(native_row - np.round(native_row)))
    assert (distance <= 0.125).all()
    assert len(rows) < 0.1 * got.size
    assert (got != 0).mean() > 0.9  # the comparison covers real data, not just empty borders


def test_multiple_native_grids_pick_the_finest_with_a_warning(server):
    with pytest.warns(MixedGridWarning, match="fine"):
        ds = eexarray.open_dataset("test/multigrid", endpoint=server.url)
    assert ds.rio.transform().a == 10
    # the coarse band is sampled on the fine grid: 20 m pixel (r//2, c//2) covers four fine pixels
    rows, cols = np.arange(ds.sizes["y"]) // 2, np.arange(ds.sizes["x"]) // 2
    np.testing.assert_array_equal(ds.coarse.values, expected(1, rows, cols, "uint16"))
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")
        only_coarse = eexarray.open_dataset("test/multigrid", endpoint=server.url, bands=["coarse"])
    assert only_coarse.rio.transform().a == 20


def test_band_metadata_and_properties(server):
    ds = eexarray.open_dataset("test/memory", endpoint=server.url)
    assert ds.attrs["CLOUD"] == 3.5 and ds.attrs["NAME"] == "memory"
    band = ds.a.encoding["eexarray_band"]  # encoding, not attrs: derived variables must not inherit it
    assert band["missing_values"] == [-1.0]
    assert "precision" in band["data_type"]
    assert band["pyramiding_policy"] in ("MEAN", "SAMPLE", "MIN", "MAX", "MODE", "MEDIAN")
    assert ds.a.attrs == {}  # decoded: NaN is the only missing value, recorded as the fill to write back
    assert np.isnan(ds.a.encoding["_FillValue"]) and np.isnan(ds.a.rio.nodata)
    # native values: masked pixels (the -1s included: Earth Engine masks them) arrive as 0
    raw = eexarray.open_dataset("test/memory", endpoint=server.url, mask_and_scale=False)
    assert raw.a.attrs["nodata"] == 0 and raw.a.attrs["_FillValue"] == 0 and raw.a.rio.nodata == 0
    assert "_FillValue" not in raw.a.encoding


def test_mask_and_scale_turns_missing_into_nan(server):
    raw = eexarray.open_dataset("test/masked", endpoint=server.url, mask_and_scale=False).B1.values
    masked = eexarray.open_dataset("test/masked", endpoint=server.url).B1.values  # mask_and_scale=True
    assert raw.dtype == np.uint16 and masked.dtype == np.float32
    assert (raw[10:20, 30:50] == 0).all()
    missing = np.zeros(raw.shape, dtype=bool)
    missing[10:20, 30:50] = True
    np.testing.assert_array_equal(np.isnan(masked), missing)  # exactly the masked window
    assert (raw[~missing] == 0).sum() == 1  # pixel (0, 0) is a valid 0 ...
    assert masked[0, 0] == 0  # ... and stays 0
    np.testing.assert_array_equal(masked[~missing], raw[~missing].astype("float32"))


def test_huge_asset_opens_lazily_and_reads_a_far_corner(server, stats):
    ds = eexarray.open_dataset("test/huge", endpoint=server.url)
    assert ds.sizes == {"y": 2**20, "x": 2**20}
    assert stats()["requests"].get("getPixels", 0) == 0
    corner = ds.B3.isel(y=slice(-5, None), x=slice(-7, None)).values
    np.testing.assert_array_equal(corner, expected(2, range(2**20 - 5, 2**20), range(2**20 - 7, 2**20), "uint16"))


def test_rioxarray_round_trip(server, tmp_path):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, bands=["i16"])
    path = tmp_path / "out.tif"
    ds.i16.rio.to_raster(path)
    with rasterio.open(path) as written:
        assert written.crs.to_epsg() == 32610
        assert written.transform == SMALL.transform
        np.testing.assert_array_equal(written.read(1), expected(1, range(400), range(600), "int16"))
    reprojected = ds.i16.rio.reproject("EPSG:4326")
    assert reprojected.rio.crs.to_epsg() == 4326


def test_collection_time_coordinates(server, stats):
    ds = eexarray.open_dataset("test/series", endpoint=server.url)
    assert ds.sizes["time"] == 30
    assert ds.time.values[0] == np.datetime64("2020-01-01T00:00:00", "ns")
    assert ds.time.values[1] == np.datetime64("2020-01-11T00:00:00", "ns")
    assert ds.image_id.values[3].endswith("test/series/00003")
    counts = stats()["requests"]
    assert counts.get("listAssets", 0) + counts.get("listImages", 0) == 1
    assert counts.get("getAsset", 0) == 1  # the collection itself, never one call per image
    values = ds.nir.isel(time=[4, 7], y=slice(0, 3), x=slice(0, 2)).values
    for position, time in enumerate((4, 7)):
        np.testing.assert_array_equal(values[position], expected(1, range(3), range(2), "uint16", time))


def test_collection_filters_are_pushed_to_the_server(server):
    ds = eexarray.open_dataset("test/series", endpoint=server.url, start="2020-02-01", end="2020-03-01")
    assert ds.sizes["time"] == 2  # 2020-02-10 and 02-20; 03-01 is excluded (end is exclusive)
    assert str(ds.time.values[0])[:10] == "2020-02-10"
    filtered = eexarray.open_dataset("test/series", endpoint=server.url, filter="properties.index < 5")
    assert filtered.sizes["time"] == 5


def test_lazy_path_without_dask(server, stats):
    ds = xr.open_dataset("ee://test/mixed", engine="eexarray", endpoint=server.url)
    assert not hasattr(ds.u8.variable._data, "dask")
    window = ds.isel(y=slice(100, 110), x=slice(200, 205, 2))
    values = window.i16.values
    np.testing.assert_array_equal(values, expected(1, range(100, 110), range(200, 205, 2), "int16"))
    log = stats()["pixel_requests"]
    assert len(log) == 1
    assert log[0]["bandIds"] == with_masks(["i16"])
    assert (log[0]["width"], log[0]["height"]) == (5, 10)


# -- Earth Engine's grids: SR-ORG codes, WKT as given, scale in metres, partial grids, caps ----------

# A corner of MODIS tile h08v05 on the 500 m MODIS grid (sinusoidal sphere, tiles 2 pi R / 36 wide).
MODIS_PIXEL = 463.3127165275
MODIS_TILE = 2 * np.pi * 6371007.181 / 36
MODIS_TRANSFORM = Affine(
    MODIS_PIXEL, 0, -18 * MODIS_TILE + 8 * MODIS_TILE, 0, -MODIS_PIXEL, 9 * MODIS_TILE - 5 * MODIS_TILE
)
MODIS_VALUES = ((np.arange(40 * 60, dtype="int32").reshape(40, 60) * 7) % 10000).astype("int16")
# A Lambert azimuthal equal-area CRS with no EPSG code, in the WKT1 an asset would carry.
LAEA_WKT1 = (
    'PROJCS["unnamed",GEOGCS["GRS 1980(IUGG, 1980)",DATUM["unknown",SPHEROID["GRS80",6378137,298.257222101]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Lambert_Azimuthal_Equal_Area"],'
    'PARAMETER["latitude_of_center",37.9],PARAMETER["longitude_of_center",-123],PARAMETER["false_easting",0],'
    'PARAMETER["false_northing",0],UNIT["Meter",1]]'
)


@pytest.fixture(scope="module")
def grids_server(tmp_path_factory):
    """A root with a MODIS sinusoidal GeoTIFF (as PROJ writes it: no code) and an image in raw WKT1."""
    import rasterio

    root = tmp_path_factory.mktemp("grids")
    profile = {"driver": "GTiff", "width": 60, "height": 40, "count": 1, "dtype": "int16"}
    crs = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
    with rasterio.open(root / "MOD09GA.tif", "w", crs=crs, transform=MODIS_TRANSFORM, **profile) as tif:
        tif.write(MODIS_VALUES, 1)
        tif.set_band_description(1, "sur_refl_b01")
    laea = PixelGrid(LAEA_WKT1, Affine(10, 0, -3000, 0, -10, 2000), 600, 400)
    # Two images 50 km apart on one 10 m lattice: the union of their footprints is 5,600 px wide.
    west = PixelGrid(UTM, Affine(10, 0, 500000, 0, -10, 4200000), 600, 400)
    east = PixelGrid(UTM, Affine(10, 0, 550000, 0, -10, 4200000), 600, 400)
    catalog = [
        InMemoryImage("laea", {"v": np.arange(400 * 600, dtype="int32").reshape(400, 600)}, laea),
        ServerCollection(
            "apart",
            [
                ProceduralImage("apart/a", west, start_time="2020-01-01T00:00:00Z"),
                ProceduralImage("apart/b", east, start_time="2020-01-02T00:00:00Z"),
            ],
        ),
    ]
    with eexarray.serve(root=str(root), catalog=catalog) as running:
        yield running


@pytest.fixture()
def sent_grids(monkeypatch):
    """The ``grid`` of every pixel request the client sends, as sent."""
    from eexarray.transport.http import RestClient

    grids: list[dict] = []
    original = RestClient.post_bytes

    def spy(self, path, body, *args, **kwargs):
        grids.append(body.get("grid"))
        return original(self, path, body, *args, **kwargs)

    monkeypatch.setattr(RestClient, "post_bytes", spy)
    return grids


def test_modis_sinusoidal_asset_reads_pixel_exact_and_requests_keep_sr_org_6974(grids_server, sent_grids):
    import requests

    asset = requests.get(f"{grids_server.url}/v1/projects/earthengine-public/assets/MOD09GA", timeout=10).json()
    assert asset["bands"][0]["grid"]["crsCode"] == "SR-ORG:6974"  # the local server answers as Earth Engine does
    ds = eexarray.open_dataset("MOD09GA", endpoint=grids_server.url, chunks={"y": 20, "x": 30})
    assert ds.sur_refl_b01.encoding["eexarray_band"]["native_crs"] == "SR-ORG:6974"
    assert ds.rio.crs == rasterio.crs.CRS.from_proj4("+proj=sinu +R=6371007.181 +units=m")
    np.testing.assert_array_equal(ds.sur_refl_b01.values, MODIS_VALUES)
    assert len(sent_grids) == 4 and {grid["crsCode"] for grid in sent_grids} == {"SR-ORG:6974"}
    assert not any("crsWkt" in grid for grid in sent_grids)
    # A region in degrees on the native lattice: a window of the tile, still SR-ORG:6974.
    west, south, east, north = transform_corner_box(MODIS_TRANSFORM, rows=(10, 20), cols=(5, 25))
    window = eexarray.open_dataset("MOD09GA", endpoint=grids_server.url, region=(west, south, east, north))
    x0 = round((window.rio.transform().c - MODIS_TRANSFORM.c) / MODIS_PIXEL)
    y0 = round((MODIS_TRANSFORM.f - window.rio.transform().f) / MODIS_PIXEL)
    np.testing.assert_array_equal(
        window.sur_refl_b01.values,
        MODIS_VALUES[y0 : y0 + window.sizes["y"], x0 : x0 + window.sizes["x"]],
    )
    assert sent_grids[-1]["crsCode"] == "SR-ORG:6974"


def transform_corner_box(transform, rows, cols):
    """The EPSG:4326 box of pixel centres (rows, cols) of a sinusoidal grid, a little inside them."""
    import pyproj

    to_lonlat = pyproj.Transformer.from_crs("+proj=sinu +R=6371007.181 +units=m", "EPSG:4326", always_xy=True)
    xs = [transform.c + (c + 0.5) * transform.a for c in cols]
    ys = [transform.f + (r + 0.5) * transform.e for r in rows]
    lons, lats = to_lonlat.transform([xs[0], xs[1], xs[0], xs[1]], [ys[0], ys[0], ys[1], ys[1]])
    return (min(lons), min(lats), max(lons), max(lats))


def test_computed_modis_image_keeps_sr_org_6974(grids_server, sent_grids):
    expression = {
        "result": "0",
        "values": {
            "0": {
                "functionInvocationValue": {
                    "functionName": "Image.load",
                    "arguments": {"id": {"constantValue": "MOD09GA"}},
                }
            }
        },
    }
    ds = eexarray.open_dataset(expression, endpoint=grids_server.url)
    (name,) = list(ds.data_vars)
    np.testing.assert_array_equal(ds[name].values, MODIS_VALUES)
    assert sent_grids and {grid["crsCode"] for grid in sent_grids} == {"SR-ORG:6974"}


def test_asset_wkt_goes_back_verbatim(grids_server, sent_grids):
    import requests

    asset = requests.get(f"{grids_server.url}/v1/projects/earthengine-public/assets/laea", timeout=10).json()
    assert asset["bands"][0]["grid"]["crsWkt"] == LAEA_WKT1
    ds = eexarray.open_dataset("laea", endpoint=grids_server.url, chunks={"y": 200, "x": 300})
    np.testing.assert_array_equal(ds.v.values, np.arange(400 * 600).reshape(400, 600))
    assert len(sent_grids) == 4 and all(grid["crsWkt"] == LAEA_WKT1 for grid in sent_grids)
    # Naming the same CRS differently keeps the asset's words (and the native lattice).
    import pyproj

    same = eexarray.open_dataset("laea", endpoint=grids_server.url, crs=pyproj.CRS.from_wkt(LAEA_WKT1))
    assert same.v.encoding["eexarray_band"]["native_crs"] == LAEA_WKT1 and same.sizes == {"y": 400, "x": 600}
    same.v[:2, :2].compute()
    assert sent_grids[-1]["crsWkt"] == LAEA_WKT1
    # A computed image: getInfo's crs is that WKT, and computePixels gets it back verbatim.
    load = {"functionInvocationValue": {"functionName": "Image.load", "arguments": {"id": {"constantValue": "laea"}}}}
    computed = eexarray.open_dataset({"result": "0", "values": {"0": load}}, endpoint=grids_server.url)
    np.testing.assert_array_equal(computed.v.values, np.arange(400 * 600).reshape(400, 600))
    assert sent_grids[-1]["crsWkt"] == LAEA_WKT1


def test_scale_is_metres_in_a_geographic_crs(server):
    """Earth Engine's meaning: scale=30 in EPSG:4326 is 30 m = 30 / 111319.49 degrees, as atScale converts."""
    from eexarray.geometry import METRES_PER_DEGREE

    by_scale = eexarray.open_dataset("test/memory", endpoint=server.url, crs="EPSG:4326", scale=30, bands=["a"])
    degrees = 30 / METRES_PER_DEGREE
    assert by_scale.rio.resolution() == pytest.approx((degrees, -degrees), rel=1e-12)
    # The footprint (~6.8 x 3.6 km at 37.9 N) is about 0.068 x 0.036 degrees: hundreds of 30 m pixels a side.
    assert 200 < by_scale.sizes["x"] < 300 and 100 < by_scale.sizes["y"] < 200
    by_resolution = eexarray.open_dataset(
        "test/memory", endpoint=server.url, crs="EPSG:4326", resolution=degrees, bands=["a"]
    )
    assert by_resolution.rio.transform() == by_scale.rio.transform()
    np.testing.assert_array_equal(by_resolution.a.values, by_scale.a.values)
    assert (by_scale.a.values != 0).mean() > 0.8


def test_scale_is_metres_in_a_feet_crs(server):
    ds = eexarray.open_dataset("test/memory", endpoint=server.url, crs="EPSG:2227", scale=30, bands=["a"])
    feet = 30 / (1200 / 3937)  # EPSG:2227 is in US survey feet
    assert ds.rio.resolution() == pytest.approx((feet, -feet), rel=1e-12)


def test_scale_and_resolution_both_given_is_refused(server):
    with pytest.raises(ValueError, match=r"scale=30 and resolution=0\.001 .*pass one"):
        eexarray.open_dataset("test/memory", endpoint=server.url, scale=30, resolution=0.001)


def test_degenerate_grid_warns_with_the_numbers(server):
    from eexarray.backend.metadata import DegenerateGridWarning

    with pytest.warns(DegenerateGridWarning, match=r"only 1 x 1 pixel\(s\).*degree") as caught:
        ds = eexarray.open_dataset("test/mixed", endpoint=server.url, crs="EPSG:4326", resolution=1.0)
    assert ds.sizes == {"y": 1, "x": 1}
    assert "a pixel is 1 x 1 degree" in str(caught[0].message)
    with pytest.warns(DegenerateGridWarning, match="scale= is metres per pixel"):
        eexarray.open_dataset("test/mixed", endpoint=server.url, scale=50_000)


def test_oversized_grid_is_refused_at_open_with_the_numbers(server, stats):
    import time
    import tracemalloc

    tracemalloc.start()
    began = time.perf_counter()
    with pytest.raises(ValueError) as caught:
        eexarray.open_dataset("test/mixed", endpoint=server.url, scale=1e-5)
    elapsed = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    message = str(caught.value)
    assert "600,000,000 x 400,000,000 pixels" in message and "max_pixels_per_side=1,048,576" in message
    assert "scale=1e-05 is metres per pixel" in message
    assert peak < 50 * 2**20 and elapsed < 10  # refused before anything the size of the grid exists
    assert stats()["pixel_requests"] == []


def test_max_pixels_per_side_raises_the_cap(server):
    with pytest.raises(ValueError, match=r"3,000 x 2,000 pixels.*max_pixels_per_side=2,000"):
        eexarray.open_dataset("test/mixed", endpoint=server.url, scale=2, max_pixels_per_side=2000)
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, scale=2, max_pixels_per_side=3000, bands=["u8"])
    assert ds.sizes == {"y": 2000, "x": 3000}
    np.testing.assert_array_equal(ds.u8[:10, :10].values, expected(0, np.arange(10) // 5, np.arange(10) // 5, "uint8"))
    big = PixelGrid(UTM, Affine(10, 0, 500000, 0, -10, 4200000), 2**20 + 1, 4)
    with pytest.raises(ValueError, match=r"from grid= is 1,048,577 x 4 pixels"):
        eexarray.open_dataset("test/mixed", endpoint=server.url, grid=big)


def test_the_native_grid_of_a_huge_asset_is_not_capped(server):
    ds = eexarray.open_dataset("test/huge", endpoint=server.url, max_pixels_per_side=1024)
    assert ds.sizes == {"y": 2**20, "x": 2**20}
    window = eexarray.open_dataset("test/huge", endpoint=server.url, region=(-123, 30, -122, 40), max_pixels_per_side=8)
    assert window.sizes["x"] > 8  # a window of the image's own grid: at most what the asset holds


def test_a_collection_union_beyond_one_image_is_capped(grids_server):
    ds = eexarray.open_dataset("apart", endpoint=grids_server.url)
    assert ds.sizes == {"time": 2, "y": 400, "x": 5600}
    with pytest.raises(ValueError, match=r"from the footprints is 5,600 x 400 pixels.*max_pixels_per_side=5,000"):
        eexarray.open_dataset("apart", endpoint=grids_server.url, max_pixels_per_side=5000)


def _drop_grid_keys(monkeypatch, *keys):
    """The local server reports band grids without ``keys`` (the PixelGrid reference allows it)."""
    from eexarray.server import asset_json

    original = asset_json.band_json

    def band_json(band):
        result = original(band)
        result["grid"] = {key: value for key, value in result["grid"].items() if key not in keys}
        return result

    monkeypatch.setattr(asset_json, "band_json", band_json)


# Inside test/mixed's footprint (UTM 10N, x 500000..506000, y 4196000..4200000).
INSIDE_MIXED = (-122.985, 37.921, -122.945, 37.938)


def test_band_grid_without_dimensions_opens_with_a_region(server, monkeypatch):
    _drop_grid_keys(monkeypatch, "dimensions")
    with pytest.raises(
        ValueError, match=r"Band\(s\) \['u8', 'i16', 'f32', 'f64'\] have a native grid without an extent.*region="
    ):
        eexarray.open_dataset("test/mixed", endpoint=server.url)
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, region=INSIDE_MIXED, bands=["i16"])
    assert ds.rio.resolution() == (10, -10)
    col0 = round((ds.rio.transform().c - 500000) / 10)
    row0 = round((4200000 - ds.rio.transform().f) / 10)
    assert col0 > 0 and row0 > 0 and ds.sizes["x"] > 100 and ds.sizes["y"] > 100
    rows, cols = row0 + np.arange(ds.sizes["y"]), col0 + np.arange(ds.sizes["x"])
    np.testing.assert_array_equal(ds.i16.values, expected(1, rows, cols, "int16"))


def test_band_grid_without_affine_opens_with_region_and_scale(server, monkeypatch):
    _drop_grid_keys(monkeypatch, "dimensions", "affineTransform")
    with pytest.raises(ValueError, match=r"no affineTransform.*pass scale= \(metres per pixel\) or resolution="):
        eexarray.open_dataset("test/mixed", endpoint=server.url, region=INSIDE_MIXED)
    with pytest.raises(ValueError, match="without an extent"):
        eexarray.open_dataset("test/mixed", endpoint=server.url, scale=10)
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, region=INSIDE_MIXED, scale=10, bands=["f32"])
    col0 = (ds.rio.transform().c - 500000) / 10
    row0 = (4200000 - ds.rio.transform().f) / 10
    assert col0 == round(col0) and row0 == round(row0)  # snapped to multiples of 10 m: the native lattice
    rows, cols = round(row0) + np.arange(ds.sizes["y"]), round(col0) + np.arange(ds.sizes["x"])
    np.testing.assert_array_equal(ds.f32.values, expected(2, rows, cols, "float32"))
