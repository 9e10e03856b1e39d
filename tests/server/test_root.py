"""A directory of GeoTIFFs served as a catalog: layout, sidecars, masks, and no way out of the root."""

from __future__ import annotations

import http.client
import io
import json
import os

import numpy as np
import pytest
import rasterio
import requests
from affine import Affine

from eexarray.geometry import PixelGrid
from eexarray.server import InMemoryImage, serve

PUBLIC = "projects/earthengine-public/assets"
TRANSFORM = Affine(30, 0, 300000, 0, -30, 5000000)
RNG = np.random.default_rng(3)
DEM = RNG.uniform(100, 900, (40, 50)).astype("float32")
DEM[0, :5] = -9999
PLAIN = RNG.integers(1, 255, (2, 20, 30), dtype="uint8")
MASKED = RNG.integers(1, 1000, (20, 30), dtype="int16")


def write_tif(path, array, *, nodata=None, descriptions=None, mask=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    array = array if array.ndim == 3 else array[None]
    profile = {"driver": "GTiff", "width": array.shape[2], "height": array.shape[1], "count": array.shape[0],
               "dtype": array.dtype.name, "crs": "EPSG:32633", "transform": TRANSFORM, "nodata": nodata}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(array)
        for index, description in enumerate(descriptions or [], start=1):
            dataset.set_band_description(index, description)
        if mask is not None:
            dataset.write_mask(np.where(mask, 0, 255).astype("uint8"))


def write_json(path, content):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(content, handle)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("catalog")
    root = base / "root"
    outside = base / "outside"
    outside.mkdir()
    write_tif(str(outside / "secret.tif"), np.full((4, 4), 7, "uint8"))
    write_tif(str(root / "dem.tif"), DEM, nodata=-9999, descriptions=["elevation"])
    write_tif(str(root / "plain.tif"), PLAIN)
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:10] = True
    write_tif(str(root / "masked.tif"), MASKED, mask=mask)
    write_tif(str(root / "S2" / "a.tif"), PLAIN)
    write_json(str(root / "S2" / "a.json"), {"startTime": "2022-03-01T10:00:00Z", "endTime": "2022-03-01T10:00:05Z",
                                             "properties": {"CLOUD": 12}, "bands": ["red", "nir"]})  # fmt: skip
    write_tif(str(root / "S2" / "b.tif"), PLAIN)
    write_json(str(root / "S2" / "b.json"), {"startTime": "2022-03-11T10:00:00Z", "properties": {"CLOUD": 55}})
    write_json(str(root / "S2" / "collection.json"), {"title": "A small S2"})
    write_tif(str(root / "folder" / "sub" / "deep.tif"), PLAIN)
    write_tif(str(root / "users" / "alice" / "mine.tif"), PLAIN)
    write_tif(str(root / "projects" / "my-project" / "assets" / "cloud.tif"), PLAIN)
    write_tif(str(root / "broken.tif"), PLAIN)
    write_json(str(root / "broken.json"), {"startTime": "last tuesday"})
    os.symlink(outside / "secret.tif", root / "escape.tif")
    os.symlink(outside, root / "linked")
    os.symlink(root / "plain.tif", root / "alias.tif")  # inside the root: allowed
    return root


@pytest.fixture(scope="module")
def server(tree):
    with serve(tree, catalog=[InMemoryImage("folder/memory", {"v": np.ones((3, 3), "uint8")},
                                            PixelGrid("EPSG:4326", Affine(1, 0, 0, 0, -1, 0), 3, 3))]) as running:  # fmt: skip
        yield running


def get(server, path, **params):
    return requests.get(f"{server.url}/{path}", params=params, timeout=30)


def pixels(server, asset, body):
    return requests.post(f"{server.url}/v1/{PUBLIC}/{asset}:getPixels", json=body, timeout=30)


def test_geotiff_image_metadata(server):
    dem = get(server, f"v1/{PUBLIC}/dem").json()
    assert dem["type"] == "IMAGE" and dem["id"] == "dem"
    assert [band["id"] for band in dem["bands"]] == ["elevation"]  # from the band description
    band = dem["bands"][0]
    assert band["dataType"] == {"precision": "FLOAT"}
    assert band["missingData"] == {"values": [-9999.0]}
    assert band["grid"] == PixelGrid("EPSG:32633", TRANSFORM, 50, 40).to_rest()
    assert int(dem["sizeBytes"]) == os.path.getsize(os.path.join(server_root(server), "dem.tif"))
    plain = get(server, f"v1/{PUBLIC}/plain").json()
    assert [band["id"] for band in plain["bands"]] == ["B1", "B2"]
    assert "startTime" not in plain and plain["properties"] == {}


def server_root(server):
    return server._httpd.api.catalog.directory.root


def test_collection_with_sidecars(server):
    collection = get(server, f"v1/{PUBLIC}/S2").json()
    assert collection["type"] == "IMAGE_COLLECTION"
    assert collection["properties"] == {"title": "A small S2"}
    assert collection["startTime"] == "2022-03-01T10:00:00Z" and collection["endTime"] == "2022-03-11T10:00:00Z"
    images = get(server, f"v1/{PUBLIC}/S2:listAssets").json()["assets"]
    assert [image["id"] for image in images] == ["S2/a", "S2/b"]
    assert [band["id"] for band in images[0]["bands"]] == ["red", "nir"]
    assert images[0]["endTime"] == "2022-03-01T10:00:05Z"
    assert images[1]["properties"] == {"CLOUD": 55}
    cloudy = get(server, f"v1alpha/{PUBLIC}/S2:listImages", filter="properties.CLOUD > 20").json()["images"]
    assert [image["id"] for image in cloudy] == ["S2/b"]


def test_folders_users_and_cloud_projects(server):
    root = get(server, "v1/projects/earthengine-public:listAssets").json()["assets"]
    # Sorted by name; users/ and projects/ are other projects; symlinks out of the root and
    # the unreadable broken.tif are left out.
    assert [(a["id"], a["type"]) for a in root] == [
        ("S2", "IMAGE_COLLECTION"), ("alias", "IMAGE"), ("dem", "IMAGE"), ("folder", "FOLDER"),
        ("masked", "IMAGE"), ("plain", "IMAGE"),
    ]  # fmt: skip
    folder = get(server, f"v1/{PUBLIC}/folder:listAssets").json()["assets"]
    assert [a["id"] for a in folder] == ["folder/memory", "folder/sub"]  # memory and directory merged
    assert get(server, f"v1/{PUBLIC}/folder/sub/deep").json()["type"] == "IMAGE"
    alice = get(server, "v1/projects/earthengine-legacy/assets/users/alice/mine").json()
    assert alice["id"] == "users/alice/mine"
    legacy_root = get(server, "v1/projects/earthengine-legacy:listAssets").json()["assets"]
    assert [a["id"] for a in legacy_root] == ["users/alice"]
    cloud = get(server, "v1/projects/my-project/assets/cloud").json()
    assert cloud["id"] == cloud["name"] == "projects/my-project/assets/cloud"
    assert [a["id"] for a in get(server, "v1/projects/my-project:listAssets").json()["assets"]] == [cloud["id"]]
    # users/ and projects/ never leak into the public project.
    assert get(server, f"v1/{PUBLIC}/users/alice/mine").status_code == 404


def test_geotiff_pixels_exact_with_nodata_and_internal_mask(server):
    dem = np.load(io.BytesIO(pixels(server, "dem", {"fileFormat": "NPY"}).content))["elevation"]
    assert np.array_equal(dem[DEM != -9999], DEM[DEM != -9999])
    assert not dem[DEM == -9999].any()
    masked = np.load(io.BytesIO(pixels(server, "masked", {"fileFormat": "NPY"}).content))["B1"]
    assert not masked[5:10, 5:10].any()
    outside_mask = np.ones(MASKED.shape, bool)
    outside_mask[5:10, 5:10] = False
    assert np.array_equal(masked[outside_mask], MASKED[outside_mask])
    window = PixelGrid("EPSG:32633", TRANSFORM @ Affine.translation(3, 2), 10, 8).to_rest()
    part = np.load(
        io.BytesIO(pixels(server, "S2/a", {"fileFormat": "NPY", "bandIds": ["nir"], "grid": window}).content)
    )
    assert np.array_equal(part["nir"], PLAIN[1, 2:10, 3:13])


def test_bad_sidecar_is_a_clear_400(server):
    response = get(server, f"v1/{PUBLIC}/broken")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "FAILED_PRECONDITION"
    assert "startTime" in error["message"] and "last tuesday" in error["message"]


def test_files_added_while_serving_appear(server, tree):
    write_tif(str(tree / "folder" / "late.tif"), PLAIN)
    try:
        assert get(server, f"v1/{PUBLIC}/folder/late").status_code == 200
    finally:
        os.remove(tree / "folder" / "late.tif")
    assert get(server, f"v1/{PUBLIC}/folder/late").status_code == 404


def raw_request(server, method, path, body=None):
    """Send ``path`` byte for byte (requests would normalise dot segments away)."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/{PUBLIC}/../outside/secret",
        f"/v1/{PUBLIC}/%2e%2e/outside/secret",
        f"/v1/{PUBLIC}/folder/%2E%2E%2F%2E%2E%2Foutside%2Fsecret",
        f"/v1/{PUBLIC}/folder/..%5C..%5Coutside%5Csecret",
        f"/v1/{PUBLIC}//etc/passwd",
        f"/v1/{PUBLIC}/%2Fetc%2Fpasswd",
        f"/v1/{PUBLIC}/./dem",
        f"/v1/{PUBLIC}/escape",
        f"/v1/{PUBLIC}/linked/secret",
        f"/v1/{PUBLIC}/.hidden",
        f"/v1/{PUBLIC}/dem%00",
        "/v1/projects/../assets/dem",
    ],
)
def test_no_path_escapes_the_root(server, path):
    status, body = raw_request(server, "GET", path)
    assert status in (400, 404), (status, body)
    assert json.loads(body)["error"]["code"] == status  # an error document, never an asset
    pixel_status, _ = raw_request(server, "POST", path + ":getPixels", b'{"fileFormat": "NPY"}')
    assert pixel_status in (400, 404)


def test_symlink_inside_the_root_is_served(server):
    alias = np.load(io.BytesIO(pixels(server, "alias", {"fileFormat": "NPY"}).content))
    assert np.array_equal(alias["B2"], PLAIN[1])
    assert get(server, f"v1/{PUBLIC}/linked:listAssets").status_code == 404
