"""Pure pieces of the server: names, catalogs, footprints and intersection, request grids."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from affine import Affine

from eexarray.geometry import PixelGrid, Window
from eexarray.server import InMemoryImage, ProceduralImage, ServerCollection
from eexarray.server.catalog import Catalog, FolderAsset, MemoryCatalog
from eexarray.server.errors import ApiError
from eexarray.server.geojson import grid_footprint, intersects, parse_geometry
from eexarray.server.images import procedural_values, procedural_window
from eexarray.server.names import check_path, name_for_id, parent_name, short_id
from eexarray.server.pixel_request import parse_pixel_request
from tests.server.helpers import UTM_GRID


@pytest.mark.parametrize(
    ("asset_id", "name"),
    [
        ("COPERNICUS/S2_SR", "projects/earthengine-public/assets/COPERNICUS/S2_SR"),
        ("users/alice/x", "projects/earthengine-legacy/assets/users/alice/x"),
        ("projects/my-project/assets/a/b", "projects/my-project/assets/a/b"),
        # Like the official client: "p" is no valid Cloud project id, so this is a legacy id.
        ("projects/p/assets/x", "projects/earthengine-legacy/assets/projects/p/assets/x"),
    ],
)
def test_names_follow_the_client_rules(asset_id, name):
    assert name_for_id(asset_id) == name
    assert short_id(name) == asset_id


def test_parents_and_bad_paths():
    assert parent_name("projects/earthengine-public/assets/a/b") == "projects/earthengine-public/assets/a"
    assert parent_name("projects/earthengine-public/assets/a") == "projects/earthengine-public"
    assert parent_name("projects/earthengine-legacy/assets/users/alice") == "projects/earthengine-legacy"
    for bad in ("a/../b", "/abs", "a//b", "a/./b", "a\\b", "a/b\x00", "a:b", ""):
        with pytest.raises(ApiError) as caught:
            check_path(bad)
        assert caught.value.code == 400


def test_memory_catalog_implies_folders_and_rejects_clashes():
    image = ProceduralImage("a/b/c", UTM_GRID)
    catalog = MemoryCatalog([image])
    assert isinstance(catalog.get("projects/earthengine-public/assets/a/b"), FolderAsset)
    assert [a.name for a in catalog.children("projects/earthengine-public")] == ["projects/earthengine-public/assets/a"]
    with pytest.raises(ValueError, match="registered twice"):
        MemoryCatalog([image, ProceduralImage("a/b/c", UTM_GRID)])
    with pytest.raises(ValueError, match="also the folder"):
        MemoryCatalog([image, ProceduralImage("a/b", UTM_GRID)])
    with pytest.raises(ValueError, match="not a folder"):
        MemoryCatalog([ProceduralImage("a", UTM_GRID), ProceduralImage("a/x", UTM_GRID)])
    with pytest.raises(TypeError):
        MemoryCatalog(["not an image"])
    collection = ServerCollection("c", [ProceduralImage("c/0", UTM_GRID), ProceduralImage("c/1", UTM_GRID)])
    merged = Catalog.build(None, [collection])
    assert [a.name.rsplit("/", 1)[1] for a in merged.children("projects/earthengine-public/assets/c")] == ["0", "1"]


def test_footprint_is_a_closed_counter_clockwise_ring():
    footprint = grid_footprint(UTM_GRID)
    ring = footprint["coordinates"][0]
    assert ring[0] == ring[-1]
    area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring))
    assert area > 0  # counter-clockwise, as RFC 7946 asks
    world = grid_footprint(PixelGrid("EPSG:4326", Affine(1, 0, -180, 0, -1, 90), 360, 180))
    xs = [p[0] for p in world["coordinates"][0]]
    assert min(xs) == -180 and max(xs) == 180


def test_intersects_points_lines_polygons_and_holes():
    square = parse_geometry({"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
                                                                 [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]]})  # fmt: skip

    def point(x, y):
        return parse_geometry({"type": "Point", "coordinates": [x, y]})

    assert intersects(square, point(1, 1))
    assert intersects(square, point(10, 5))  # on the boundary
    assert not intersects(square, point(5, 5))  # in the hole
    assert not intersects(square, point(11, 5))
    crossing = parse_geometry({"type": "LineString", "coordinates": [[-5, 5], [15, 5]]})
    assert intersects(square, crossing)
    inner = parse_geometry({"type": "Polygon", "coordinates": [[[1, 1], [2, 1], [2, 2], [1, 1]]]})
    assert intersects(square, inner) and intersects(inner, square)  # containment without crossing
    collection = parse_geometry({"type": "GeometryCollection", "geometries": [
        {"type": "MultiPoint", "coordinates": [[50, 50], [3, 3]]}]})  # fmt: skip
    assert intersects(collection, square)
    assert intersects(square, parse_geometry("{'type':'Point','coordinates':[2,2]}"))  # the client's quoting


def test_request_grid_in_another_crs_without_affine_keeps_the_pixel_area():
    image = ProceduralImage("x", UTM_GRID)
    request = parse_pixel_request(image, {"fileFormat": "NPY", "grid": {"crsCode": "EPSG:3857"}})
    assert request.grid.crs == "EPSG:3857"
    scale = request.grid.transform.a
    assert 10 < scale < 14  # 10 m UTM pixels near 38 deg N are ~12.7 Mercator units
    assert request.grid.transform.e == -scale
    native_area = UTM_GRID.width * UTM_GRID.height * 100
    covered = request.grid.width * request.grid.height * scale * scale
    assert 1.5 < covered / native_area < 1.8  # the Mercator scale factor squared, plus the margin


def test_fast_procedural_window_equals_the_reference_formula():
    rng = np.random.default_rng(1)
    for dtype in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"):
        for _ in range(10):
            row, col = (int(v) for v in rng.integers(0, 2**22, 2))
            height, width = (int(v) for v in rng.integers(1, 30, 2))
            band, time = int(rng.integers(0, 9)), int(rng.integers(0, 400))
            fast = procedural_window(band, Window(row, row + height, col, col + width), time, dtype)
            reference = procedural_values(
                band, np.arange(row, row + height)[:, None], np.arange(col, col + width)[None, :], time, dtype
            )
            assert fast.dtype == reference.dtype and np.array_equal(fast, reference)


def test_sample_band_agrees_with_read_band():
    image = InMemoryImage(
        "m",
        {"v": np.arange(200, dtype="int32").reshape(10, 20)},
        PixelGrid("EPSG:4326", Affine(1, 0, 0, 0, -1, 0), 20, 10),
        nodata={"v": 5},
    )
    rows, cols = np.array([0, 0, 9]), np.array([5, 6, 19])
    sampled = image.sample_band(0, rows, cols)
    assert sampled.data.tolist() == [5, 6, 199] and sampled.mask.tolist() == [True, False, False]
    procedural = ProceduralImage("p", UTM_GRID, masked=[Window(0, 1, 0, 1)])
    sampled = procedural.sample_band(0, np.array([0, 3]), np.array([0, 4]))
    window = procedural.read_band(0, Window(0, 4, 0, 5))
    assert sampled.data.tolist() == [window.data[0, 0], window.data[3, 4]]
    assert sampled.mask.tolist() == [True, False]
