"""The pure geometry core: grids, CRS normalisation, windows, tiling."""

from __future__ import annotations

import math

import numpy as np
import pyproj
import pytest
import rasterio.crs
import rasterio.transform
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from eexarray.geometry import (
    METRES_PER_DEGREE,
    InvalidCrsError,
    InvalidGridError,
    PartialGrid,
    PixelGrid,
    Window,
    crs_equal,
    metres_to_crs_units,
    normalize_crs,
    split_range,
    tile_window,
    to_pyproj,
)
from eexarray.geometry.grid import crs_from_rest, crs_to_rest, transform_bounds

UTM = "EPSG:32610"


def grid(width=100, height=50, x=500000.0, y=4200000.0, scale=10.0, crs=UTM):
    return PixelGrid(crs, Affine(scale, 0, x, 0, -scale, y), width, height)


class TestCrs:
    def test_codes_are_kept_and_canonicalised(self):
        assert normalize_crs("EPSG:32610") == "EPSG:32610"
        assert normalize_crs("epsg:4326") == "EPSG:4326"
        assert normalize_crs(32633) == "EPSG:32633"

    def test_wkt_and_pyproj_identified_as_codes(self):
        wkt = pyproj.CRS.from_epsg(32610).to_wkt()
        assert normalize_crs(wkt) == "EPSG:32610"
        assert normalize_crs(pyproj.CRS.from_epsg(3857)) == "EPSG:3857"

    def test_custom_wkt_stays_wkt(self):
        custom = pyproj.CRS.from_proj4("+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +ellps=GRS80")
        result = normalize_crs(custom)
        assert result.startswith(("PROJCRS", "PROJCS"))
        assert pyproj.CRS.from_wkt(result) == custom

    @pytest.mark.parametrize("bad", ["EPSG:abc", "EPSG:999999", "not a crs", "", None, 3.5, [4326]])
    def test_bad_crs_names_the_value(self, bad):
        with pytest.raises(InvalidCrsError) as info:
            normalize_crs(bad)
        assert repr(bad) in str(info.value) or str(bad) in str(info.value)


# SR-ORG:6842 as spatialreference.org publishes it (OSGeo/spatialreference.org, scripts/sr-org.json): WKT1.
SR_ORG_6842_WKT = (
    'PROJCS["Sinusoidal",GEOGCS["GCS_Undefined",DATUM["Undefined",SPHEROID["User_Defined_Spheroid",6371007.181,0.0]],'
    'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Sinusoidal"],PARAMETER["False_Easting",0.0],'
    'PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",0.0],UNIT["Meter",1.0]]'
)
MODIS_PROJ = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"


class TestEarthEngineCrs:
    """What Earth Engine reports comes back unchanged, and means what Earth Engine means."""

    @pytest.mark.parametrize("code", ["SR-ORG:6974", "SR-ORG:6842", "sr-org:6974"])
    def test_sr_org_codes_are_kept_and_mean_the_modis_sphere(self, code):
        assert normalize_crs(code) == code.upper()
        crs = to_pyproj(code)
        assert crs == pyproj.CRS.from_wkt(SR_ORG_6842_WKT)
        assert crs.coordinate_operation.method_name == "Sinusoidal"
        assert crs.ellipsoid.semi_major_metre == crs.ellipsoid.semi_minor_metre == 6371007.181
        # The MODIS grid: tile h=18 (of 36) starts at x = 0; one tile is 2 * pi * R / 36 wide.
        x, _ = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(10.0, 0.0)
        assert x == pytest.approx(10 / 360 * 2 * math.pi * 6371007.181, abs=1e-6)

    def test_sr_org_codes_travel_as_crs_code(self):
        assert crs_to_rest("SR-ORG:6974") == {"crsCode": "SR-ORG:6974"}
        assert crs_from_rest({"crsCode": "SR-ORG:6974"}) == "SR-ORG:6974"
        g = PixelGrid("SR-ORG:6974", Affine(463.3127165275, 0, -11119505.196, 0, -463.3127165275, 4447802.078), 4, 4)
        assert g.to_rest()["crsCode"] == "SR-ORG:6974" and "crsWkt" not in g.to_rest()
        assert crs_equal("SR-ORG:6974", "SR-ORG:6842")

    def test_crs_objects_of_the_modis_sphere_become_sr_org_6974(self):
        """What the local server reports for a MODIS GeoTIFF, as Earth Engine does."""
        assert normalize_crs(pyproj.CRS.from_proj4(MODIS_PROJ)) == "SR-ORG:6974"
        assert normalize_crs(rasterio.crs.CRS.from_wkt(SR_ORG_6842_WKT)) == "SR-ORG:6974"
        assert normalize_crs(MODIS_PROJ) == "SR-ORG:6974"

    def test_unknown_sr_org_code_names_the_known_ones(self):
        with pytest.raises(InvalidCrsError, match=r"'SR-ORG:1'.*SR-ORG:6842.*SR-ORG:6974"):
            normalize_crs("SR-ORG:1")

    def test_asset_wkt_is_kept_verbatim(self):
        """crsWkt from an asset goes back as given: WKT1, not pyproj's WKT2 re-export nor an EPSG code."""
        assert crs_from_rest({"crsWkt": SR_ORG_6842_WKT}) == SR_ORG_6842_WKT
        utm_wkt1 = pyproj.CRS.from_epsg(32610).to_wkt(version="WKT1_GDAL")
        assert crs_from_rest({"crsWkt": utm_wkt1}) == utm_wkt1
        rest = {"dimensions": {"width": 2, "height": 2}, "affineTransform": {"scaleX": 1, "scaleY": -1}}
        assert PixelGrid.from_rest({**rest, "crsWkt": SR_ORG_6842_WKT}).to_rest()["crsWkt"] == SR_ORG_6842_WKT
        with pytest.raises(InvalidCrsError, match="PROJCS"):
            crs_from_rest({"crsWkt": 'PROJCS["broken"'})

    def test_user_wkt_text_is_kept_and_crs_objects_become_wkt1(self):
        assert normalize_crs(SR_ORG_6842_WKT) == SR_ORG_6842_WKT
        laea = pyproj.CRS.from_proj4("+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +ellps=GRS80")
        assert normalize_crs(laea).startswith("PROJCS[")  # WKT1, as Earth Engine writes it

    def test_metres_convert_as_atscale(self):
        # The getPixels seed: ee.Projection('EPSG:4326').atScale(10) -> 10 / (2 pi 6378137 / 360) degrees.
        assert METRES_PER_DEGREE == 2 * math.pi * 6378137 / 360
        assert metres_to_crs_units("EPSG:4326", 10) == pytest.approx(8.983152841195214e-05, rel=1e-15)
        assert metres_to_crs_units("EPSG:32610", 10) == 10
        assert metres_to_crs_units("SR-ORG:6974", 463.3127165275) == 463.3127165275
        # NAD83 / California zone 3 (ftUS): a US survey foot is 1200/3937 m.
        assert metres_to_crs_units("EPSG:2227", 30) == pytest.approx(30 / (1200 / 3937), rel=1e-12)


class TestPartialGrid:
    """The PixelGrid reference makes dimensions and affineTransform optional in band grids."""

    AFFINE = {"scaleX": 10, "scaleY": -10, "translateX": 500000, "translateY": 4200000}

    def test_complete_grid(self):
        partial = PartialGrid.from_rest(grid().to_rest())
        assert partial.complete == grid() and partial.has_transform and partial.has_dimensions

    def test_without_dimensions(self):
        partial = PartialGrid.from_rest({"crsCode": UTM, "affineTransform": self.AFFINE})
        assert partial.complete is None and partial.has_transform and not partial.has_dimensions
        assert partial.lattice() == PixelGrid(UTM, Affine(10, 0, 500000, 0, -10, 4200000), 1, 1)

    def test_without_affine(self):
        partial = PartialGrid.from_rest({"crsCode": "SR-ORG:6974", "dimensions": {"width": 3, "height": 2}})
        assert partial.complete is None and not partial.has_transform
        assert (partial.crs, partial.width, partial.height) == ("SR-ORG:6974", 3, 2)

    @pytest.mark.parametrize(
        "bad, message",
        [
            ({"affineTransform": AFFINE}, "needs crsCode or crsWkt"),
            ({"crsCode": UTM, "dims": {}}, "Unknown PixelGrid keys"),
            ({"crsCode": UTM, "dimensions": {"width": 0, "height": 1}}, "positive integer"),
            ("EPSG:4326", "must be a dict"),
        ],
    )
    def test_bad_partial_grids(self, bad, message):
        with pytest.raises(InvalidGridError, match=message):
            PartialGrid.from_rest(bad)


class TestPixelGrid:
    def test_rest_round_trip(self):
        g = grid()
        assert PixelGrid.from_rest(g.to_rest()) == g
        assert g.to_rest() == {
            "dimensions": {"width": 100, "height": 50},
            "affineTransform": {
                "scaleX": 10.0,
                "shearX": 0.0,
                "translateX": 500000.0,
                "shearY": 0.0,
                "scaleY": -10.0,
                "translateY": 4200000.0,
            },
            "crsCode": UTM,
        }

    def test_wkt_grid_round_trips_as_crs_wkt(self):
        custom = pyproj.CRS.from_proj4("+proj=laea +lat_0=52 +lon_0=10 +ellps=GRS80").to_wkt()
        g = grid(crs=normalize_crs(custom))
        rest = g.to_rest()
        assert "crsWkt" in rest and "crsCode" not in rest
        assert PixelGrid.from_rest(rest) == g

    @pytest.mark.parametrize(
        "bad, message",
        [
            (
                {
                    "dimensions": {"width": 1, "height": 1},
                    "affineTransform": {"scaleX": 1, "scaleY": -1},
                    "crsCode": "EPSG:4326",
                    "crsWkt": "x",
                },
                "not both",
            ),
            (
                {
                    "dimensions": {"width": 0, "height": 1},
                    "affineTransform": {"scaleX": 1, "scaleY": -1},
                    "crsCode": "EPSG:4326",
                },
                "dimensions.width",
            ),
            (
                {
                    "dimensions": {"width": 1, "height": 1},
                    "affineTransform": {"scaleX": 0, "scaleY": 0},
                    "crsCode": "EPSG:4326",
                },
                "singular",
            ),
            (
                {
                    "dimensions": {"width": 1, "height": 1},
                    "affineTransform": {"scaleX": 1, "scaleY": -1, "rotate": 3},
                    "crsCode": "EPSG:4326",
                },
                "rotate",
            ),
            (
                {
                    "dimensions": {"width": 1, "height": 1},
                    "affineTransform": {"scaleX": "a", "scaleY": -1},
                    "crsCode": "EPSG:4326",
                },
                "scaleX",
            ),
            ({"dimensions": {"width": 1, "height": 1}, "affineTransform": {"scaleX": 1, "scaleY": -1}}, "crsCode"),
            ({"affineTransform": {"scaleX": 1, "scaleY": -1}, "crsCode": "EPSG:4326"}, "dimensions"),
        ],
    )
    def test_invalid_rest_grids(self, bad, message):
        with pytest.raises(InvalidGridError, match=message):
            PixelGrid.from_rest(bad)

    def test_pixel_centres_equal_rasterio(self):
        g = grid(width=7, height=5, x=123.5, y=987.25, scale=2.5)
        xs, _ = rasterio.transform.xy(g.transform, [0] * g.width, list(range(g.width)), offset="center")
        _, ys = rasterio.transform.xy(g.transform, list(range(g.height)), [0] * g.height, offset="center")
        np.testing.assert_array_equal(g.x_coords(), np.asarray(xs))
        np.testing.assert_array_equal(g.y_coords(), np.asarray(ys))

    def test_window_and_offset(self):
        g = grid()
        sub = g.window(Window(3, 13, 7, 27))
        assert sub.shape == (10, 20)
        assert sub.transform.c == 500070.0 and sub.transform.f == 4199970.0
        assert sub.offset_in(g) == (3, 7)
        shifted = PixelGrid(UTM, sub.transform @ Affine.translation(0.5, 0), 20, 10)
        assert shifted.offset_in(g) is None
        assert grid(scale=20).offset_in(g) is None
        assert grid(crs="EPSG:32611").offset_in(g) is None

    def test_bounds_and_window_covering(self):
        g = grid(width=100, height=50)
        assert g.bounds == (500000.0, 4199500.0, 501000.0, 4200000.0)
        assert g.window_covering((500015.0, 4199801.0, 500031.0, 4199990.0)) == Window(1, 20, 1, 4)
        assert g.window_covering(g.bounds) == Window(0, 50, 0, 100)

    def test_from_bounds_snaps_to_scale_lattice(self):
        g = PixelGrid.from_bounds(UTM, (500003.0, 4199991.0, 500047.0, 4200012.0), 10)
        assert g.transform == Affine(10, 0, 500000, 0, -10, 4200020)
        assert g.shape == (3, 5)
        other = PixelGrid.from_bounds(UTM, (500101.0, 4199000.0, 500200.0, 4199100.0), 10)
        assert other.offset_in(g) is not None  # same lattice

    @pytest.mark.parametrize("scale", [0, -10, float("nan"), float("inf"), "10", (1, 2, 3), True])
    def test_from_bounds_rejects_bad_scale(self, scale):
        with pytest.raises(InvalidGridError, match="scale"):
            PixelGrid.from_bounds(UTM, (0, 0, 10, 10), scale)

    def test_from_bounds_rejects_inverted_region(self):
        with pytest.raises(InvalidGridError, match="inverted"):
            PixelGrid.from_bounds(UTM, (10, 0, 0, 10), 1)

    def test_with_dimensions_keeps_footprint(self):
        g = grid(width=100, height=50)
        half = g.with_dimensions(50, 25)
        assert half.bounds == g.bounds
        assert half.transform.a == 20.0

    def test_transform_bounds_contains_corners(self):
        lonlat = transform_bounds(grid().bounds, UTM, "EPSG:4326")
        to_ll = pyproj.Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
        west, south, east, north = grid().bounds
        for x, y in ((west, south), (west, north), (east, south), (east, north)):
            lon, lat = to_ll.transform(x, y)
            assert lonlat[0] - 1e-9 <= lon <= lonlat[2] + 1e-9
            assert lonlat[1] - 1e-9 <= lat <= lonlat[3] + 1e-9

    def test_grid_validation(self):
        with pytest.raises(InvalidGridError):
            PixelGrid(UTM, Affine(1, 0, 0, 0, -1, 0), 0, 5)
        with pytest.raises(InvalidGridError):
            PixelGrid(UTM, Affine(0, 0, 0, 0, 0, 0), 5, 5)


class TestWindows:
    def test_split_range(self):
        assert split_range(0, 10, 4) == [(0, 4), (4, 8), (8, 10)]
        assert split_range(3, 3, 4) == []
        with pytest.raises(ValueError):
            split_range(0, 10, 0)

    @settings(deadline=None)
    @given(
        st.integers(0, 50),
        st.integers(1, 300),
        st.integers(0, 50),
        st.integers(1, 300),
        st.integers(1, 100),
        st.integers(1, 100),
    )
    def test_tiles_cover_exactly_once(self, row0, height, col0, width, tile_h, tile_w):
        window = Window(row0, row0 + height, col0, col0 + width)
        coverage = np.zeros((row0 + height, col0 + width), dtype=int)
        for tile in tile_window(window, tile_h, tile_w):
            assert tile.height <= tile_h and tile.width <= tile_w
            assert window.contains(tile)
            coverage[tile.slices()] += 1
        assert (coverage[window.slices()] == 1).all()
        assert coverage.sum() == window.size

    def test_intersection_and_relative(self):
        a, b = Window(0, 10, 0, 10), Window(5, 15, 8, 20)
        assert a.intersection(b) == Window(5, 10, 8, 10)
        assert a.intersection(Window(10, 12, 0, 1)) is None
        assert b.relative_to(a) == b
        assert Window(5, 10, 8, 10).relative_to(b) == Window(0, 5, 0, 2)
        with pytest.raises(ValueError):
            Window(5, 4, 0, 1)

    def test_math_sanity(self):
        assert math.isclose(grid().resolution[0], 10.0)
