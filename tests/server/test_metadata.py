"""getAsset, listAssets, listImages and the discovery document, over HTTP."""

from __future__ import annotations

import json

import pytest
import requests

PUBLIC = "projects/earthengine-public/assets"


def get(server, path, **params):
    return requests.get(f"{server.url}/{path}", params=params, timeout=30)


def test_image_asset_json(server):
    response = get(server, f"v1/{PUBLIC}/test/procedural")
    assert response.status_code == 200
    asset = response.json()
    assert set(asset) == {
        "type", "name", "id", "updateTime", "startTime", "endTime", "properties", "geometry", "sizeBytes", "bands"
    }  # fmt: skip
    assert asset["type"] == "IMAGE"
    assert asset["name"] == f"{PUBLIC}/test/procedural"
    assert asset["id"] == "test/procedural"
    assert asset["startTime"] == asset["endTime"] == "2020-05-01T00:00:00Z"
    assert asset["properties"] == {"CLOUD": 3}
    assert asset["sizeBytes"] == str(2048 * 2048 * (2 + 1 + 4 + 8))
    assert [band["id"] for band in asset["bands"]] == ["B1", "B2", "B3", "B4"]
    assert [band["dataType"] for band in asset["bands"]] == [
        {"precision": "INT", "range": {"min": 0, "max": 65535}},
        {"precision": "INT", "range": {"min": -128, "max": 127}},
        {"precision": "FLOAT"},
        {"precision": "DOUBLE"},
    ]
    band = asset["bands"][0]
    assert band["grid"] == {
        "dimensions": {"width": 2048, "height": 2048},
        "affineTransform": {
            "scaleX": 10.0, "shearX": 0.0, "translateX": 500000.0, "shearY": 0.0, "scaleY": -10.0, "translateY": 4200000.0
        },
        "crsCode": "EPSG:32610",
    }  # fmt: skip
    assert band["pyramidingPolicy"] == "MEAN"
    assert "missingData" not in band
    geometry = asset["geometry"]
    assert geometry["type"] == "Polygon"
    ring = geometry["coordinates"][0]
    assert ring[0] == ring[-1]
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    # UTM zone 10 easting 500000 is the central meridian -123.
    assert min(lons) == pytest.approx(-123.0, abs=1e-9)
    assert 37.7 < min(lats) < max(lats) < 38.0


def test_missing_data_and_legacy_ids(server):
    memory = get(server, f"v1/{PUBLIC}/test/memory").json()
    assert memory["bands"][0]["missingData"] == {"values": [-9999]}
    assert memory["bands"][1]["dataType"] == {"precision": "INT", "range": {"min": -32768, "max": 32767}}
    private = get(server, "v1/projects/earthengine-legacy/assets/users/alice/private").json()
    assert private["id"] == "users/alice/private"
    assert private["name"] == "projects/earthengine-legacy/assets/users/alice/private"
    assert "startTime" not in private  # an image without time has none


def test_collection_and_folder_json(server):
    collection = get(server, f"v1/{PUBLIC}/test/coll").json()
    assert collection == {
        "type": "IMAGE_COLLECTION",
        "name": f"{PUBLIC}/test/coll",
        "id": "test/coll",
        "updateTime": collection["updateTime"],
        "startTime": "2020-01-01T00:00:00Z",
        "endTime": "2020-01-07T00:00:00Z",
        "properties": {"title": "six days"},
    }
    folder = get(server, f"v1alpha/{PUBLIC}/test").json()
    assert folder == {"type": "FOLDER", "name": f"{PUBLIC}/test", "id": "test", "updateTime": folder["updateTime"]}


def test_unknown_asset_is_404_with_google_error_shape(server):
    response = get(server, f"v1/{PUBLIC}/test/nothing")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": 404, "message": f'Asset "{PUBLIC}/test/nothing" not found.', "status": "NOT_FOUND"}
    }
    # The same id in another project is another asset.
    assert get(server, "v1/projects/other-project/assets/test/procedural").status_code == 404


def test_list_folder_project_root_and_legacy_root(server):
    listed = get(server, f"v1/{PUBLIC}/test:listAssets").json()
    assert [(a["id"], a["type"]) for a in listed["assets"]] == [  # sorted by name
        ("test/coll", "IMAGE_COLLECTION"),
        ("test/huge", "IMAGE"),
        ("test/memory", "IMAGE"),
        ("test/procedural", "IMAGE"),
    ]
    assert "nextPageToken" not in listed
    root = get(server, "v1/projects/earthengine-public:listAssets").json()
    assert [a["name"] for a in root["assets"]] == [f"{PUBLIC}/test"]
    legacy = get(server, "v1/projects/earthengine-legacy:listAssets").json()
    assert [(a["id"], a["type"]) for a in legacy["assets"]] == [("users/alice", "FOLDER")]
    empty = get(server, "v1/projects/nobody-here:listAssets").json()
    assert empty == {"assets": []}


def test_list_collection_pages_with_opaque_tokens(server):
    seen, token, pages = [], None, 0
    while True:
        params = {"pageSize": 4, **({"pageToken": token} if token else {})}
        page = get(server, f"v1/{PUBLIC}/test/coll:listAssets", **params).json()
        pages += 1
        seen += [image["id"] for image in page["assets"]]
        token = page.get("nextPageToken")
        if token is None:
            break
    assert pages == 2
    assert seen == [f"test/coll/{index:05d}" for index in range(6)]
    # A token only works for the listing it came from.
    first = get(server, f"v1/{PUBLIC}/test/coll:listAssets", pageSize=2).json()
    replay = get(server, f"v1/{PUBLIC}/test:listAssets", pageToken=first["nextPageToken"])
    assert replay.status_code == 400
    assert "Invalid pageToken" in replay.json()["error"]["message"]
    assert get(server, f"v1/{PUBLIC}/test/coll:listAssets", pageToken="garbage!").status_code == 400
    assert get(server, f"v1/{PUBLIC}/test/coll:listAssets", pageSize=-1).status_code == 400
    assert get(server, f"v1/{PUBLIC}/test/coll:listAssets", pageSize="ten").status_code == 400


def test_list_basic_view_and_image_is_not_listable(server):
    basic = get(server, f"v1/{PUBLIC}/test/coll:listAssets", view="BASIC", pageSize=1).json()["assets"][0]
    assert set(basic) == {"type", "name", "id", "updateTime", "startTime", "endTime"}
    response = get(server, f"v1/{PUBLIC}/test/procedural:listAssets")
    assert response.status_code == 400
    assert "is an image" in response.json()["error"]["message"]
    assert get(server, f"v1/{PUBLIC}/test/coll:listAssets", view="SIDEWAYS").status_code == 400


def test_list_images_time_and_region(server):
    path = f"v1alpha/{PUBLIC}/test/coll:listImages"
    everything = get(server, path).json()
    assert len(everything["images"]) == 6
    window = get(server, path, startTime="2020-01-02T00:00:00Z", endTime="2020-01-05T00:00:00Z").json()
    # startTime >= start AND endTime < end (the official client's listImages semantics).
    assert [image["id"][-1] for image in window["images"]] == ["1", "2"]
    inside = {"type": "Point", "coordinates": [-122.95, 37.9]}
    outside = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    assert len(get(server, path, region=json.dumps(inside)).json()["images"]) == 6
    assert get(server, path, region=json.dumps(outside)).json() == {"images": []}
    bad = get(server, path, region="{not geojson")
    assert bad.status_code == 400
    assert "region" in bad.json()["error"]["message"]
    assert get(server, path, startTime="yesterday").status_code == 400


def test_list_assets_filter(server):
    path = f"v1/{PUBLIC}/test/coll:listAssets"
    result = get(server, path, filter='startTime >= "2020-01-03T00:00:00Z" AND properties.index < 5').json()
    assert [image["properties"]["index"] for image in result["assets"]] == [2, 3, 4]
    region = "{'type':'Point','coordinates':[-122.95,37.9]}"
    hit = get(server, path, filter=f'intersects("{region}") AND properties.index = 1').json()
    assert [image["id"] for image in hit["assets"]] == ["test/coll/00001"]
    malformed = get(server, path, filter="startTime >>> 3")
    assert malformed.status_code == 400
    assert malformed.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_unknown_query_parameter_and_routes(server):
    response = get(server, f"v1/{PUBLIC}/test/coll:listAssets", colour="blue")
    assert response.status_code == 400
    assert 'Unknown name "colour"' in response.json()["error"]["message"]
    assert get(server, f"v1/{PUBLIC}/test/coll", prettyPrint="false", alt="json").status_code == 200
    assert get(server, "v2/projects/p/assets/x").status_code == 404
    assert get(server, "nothing/here").status_code == 404
    wrong_method = requests.post(f"{server.url}/v1/{PUBLIC}/test/coll", timeout=10)
    assert wrong_method.status_code == 405


def test_algorithms_and_discovery(server):
    algorithms = get(server, "v1/projects/my-project/algorithms").json()["algorithms"]
    assert {a["name"] for a in algorithms} >= {"algorithms/Image.load", "algorithms/ImageCollection.load"}
    document = get(server, "$discovery/rest", version="v1").json()
    assert document["kind"] == "discovery#restDescription"
    assert document["rootUrl"] == server.url + "/"
    assets = document["resources"]["projects"]["resources"]["assets"]["methods"]
    assert set(assets) == {"get", "listAssets", "listImages", "getPixels"}
    assert assets["getPixels"]["path"] == "v1/{+name}:getPixels"
    assert "listAssets" in document["resources"]["projects"]["methods"]
    alpha = get(server, "$discovery/rest", version="v1alpha").json()
    assert alpha["resources"]["projects"]["resources"]["assets"]["methods"]["get"]["path"] == "v1alpha/{+name}"
    assert get(server, "$discovery/rest", version="v9").status_code == 404
