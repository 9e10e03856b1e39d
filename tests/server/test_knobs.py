"""Testing knobs (latency, faults, token, concurrency cap, body cap), /_stats, and 64 parallel clients."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from eexarray.geometry import PixelGrid
from eexarray.server import FaultPlan, ProceduralImage, procedural_values, serve
from eexarray.transport.decode import read_npy
from tests.server.helpers import UTM_GRID, standard_catalog

PUBLIC = "projects/earthengine-public/assets"
ASSET_URL = "v1/" + PUBLIC + "/test/procedural"


def parallel(count, function):
    barrier = threading.Barrier(count)

    def run(index):
        barrier.wait()
        return function(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_stats_counts_each_method_and_resets(fresh_stats):
    server = fresh_stats
    requests.get(f"{server.url}/{ASSET_URL}", timeout=10)
    requests.get(f"{server.url}/{ASSET_URL}", timeout=10)
    requests.get(f"{server.url}/v1/{PUBLIC}/test:listAssets", timeout=10)
    requests.get(f"{server.url}/v1alpha/{PUBLIC}/test/coll:listImages", timeout=10)
    requests.get(f"{server.url}/v1/projects/p/algorithms", timeout=10)
    requests.get(f"{server.url}/$discovery/rest", timeout=10)
    body = {"fileFormat": "NPY", "bandIds": ["B1"], "grid": {"dimensions": {"width": 8, "height": 8}}}
    requests.post(f"{server.url}/{ASSET_URL}:getPixels", json=body, timeout=10)
    stats = requests.get(f"{server.url}/_stats", timeout=10).json()
    assert stats["requests"] == {
        "getAsset": 2, "listAssets": 1, "listImages": 1, "listAlgorithms": 1, "discovery": 1, "getPixels": 1
    }  # fmt: skip
    assert stats["statuses"] == {"200": 7}
    assert stats["pixels_bytes"] == stats["pixel_requests"][0]["bytes"] > 8 * 8 * 2
    assert stats["in_flight"] == 0 and stats["max_in_flight"] >= 1
    assert requests.post(f"{server.url}/_stats/reset", timeout=10).status_code == 200
    after = server.stats()
    assert after["requests"] == {} and after["pixels_bytes"] == 0 and after["pixel_requests"] == []
    assert after["max_in_flight"] == 0
    assert requests.delete(f"{server.url}/_stats", timeout=10).status_code == 405


def test_latency_is_added_without_blocking_other_requests():
    with serve(catalog=standard_catalog(), latency_ms=400) as server:
        started = time.perf_counter()
        statuses = parallel(8, lambda _: requests.get(f"{server.url}/{ASSET_URL}", timeout=30).status_code)
        elapsed = time.perf_counter() - started
        stats = server.stats()
    assert statuses == [200] * 8
    assert elapsed >= 0.4  # every request waited its latency...
    assert stats["max_in_flight"] == 8  # ...and all eight waited at the same time


def test_latency_per_megabyte_charges_large_responses():
    with serve(catalog=standard_catalog(), latency_ms_per_mb=200) as server:
        body = {"fileFormat": "NPY", "bandIds": ["B1"], "grid": {"dimensions": {"width": 2048, "height": 2048}}}
        started = time.perf_counter()
        response = requests.post(f"{server.url}/{ASSET_URL}:getPixels", json=body, timeout=60)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert len(response.content) > 8_000_000
    assert elapsed >= 0.2 * len(response.content) / 1e6  # 200 ms per 1,000,000 bytes of response


def _outcome(url):
    try:
        response = requests.get(url, timeout=30)
    except requests.exceptions.ChunkedEncodingError:
        return "truncate"
    except requests.exceptions.ConnectionError:
        return "reset"
    return str(response.status_code)


def test_faults_happen_in_the_given_fractions_and_are_reproducible():
    plan = "429=0.2,503=0.2,reset=0.2,truncate=0.2,seed=11"
    outcomes = []
    for _ in range(2):
        with serve(catalog=standard_catalog(), faults=plan) as server:
            # One connection per request, so a dropped connection affects only its request.
            run = [_outcome(f"{server.url}/{ASSET_URL}") for _ in range(100)]
            stats = server.stats()
        outcomes.append(run)
        counts = {kind: run.count(kind) for kind in ("200", "429", "503", "reset", "truncate")}
        assert stats["faults"] == {k: v for k, v in counts.items() if k != "200" and v}
        assert stats["requests"] == {"getAsset": 100}
        for kind in ("200", "429", "503", "reset", "truncate"):
            assert 5 <= counts[kind] <= 40, counts  # 20 expected of each
    assert outcomes[0] == outcomes[1]  # same seed, same sequence


def test_fault_responses_have_google_error_bodies_and_discovery_is_exempt():
    with serve(catalog=standard_catalog(), faults={"503": 1.0}) as server:
        response = requests.get(f"{server.url}/{ASSET_URL}", timeout=10)
        assert response.status_code == 503
        assert response.json()["error"]["status"] == "UNAVAILABLE"
        assert requests.get(f"{server.url}/$discovery/rest", timeout=10).status_code == 200


def test_truncated_body_is_cut_short_of_its_content_length():
    with serve(catalog=standard_catalog(), faults="truncate=1") as server:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
        connection.request("GET", "/" + ASSET_URL)
        response = connection.getresponse()
        length = int(response.getheader("Content-Length"))
        with pytest.raises(http.client.IncompleteRead) as caught:
            response.read()
        assert 0 < len(caught.value.partial) < length


def test_reset_drops_the_connection_without_a_response():
    with serve(catalog=standard_catalog(), faults="reset=1") as server:
        with socket.create_connection((server.host, server.port), timeout=10) as raw:
            raw.sendall(f"GET /{ASSET_URL} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
            try:
                received = raw.recv(1024)
            except ConnectionResetError:
                received = b""
        assert received == b""


def test_token_is_required_except_for_discovery():
    with serve(catalog=standard_catalog(), token="s3cret") as server:
        missing = requests.get(f"{server.url}/{ASSET_URL}", timeout=10)
        wrong = requests.get(f"{server.url}/{ASSET_URL}", headers={"Authorization": "Bearer nope"}, timeout=10)
        right = requests.get(f"{server.url}/{ASSET_URL}", headers={"Authorization": "Bearer s3cret"}, timeout=10)
        assert missing.status_code == wrong.status_code == 401
        assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
        assert right.status_code == 200
        assert requests.get(f"{server.url}/$discovery/rest", timeout=10).status_code == 200
        assert server.stats()["statuses"] == {"401": 2, "200": 2}


def test_stats_need_the_token_for_reading_and_resetting():
    good = {"Authorization": "Bearer s3cret"}
    with serve(catalog=standard_catalog(), token="s3cret") as server:
        assert requests.get(f"{server.url}/{ASSET_URL}", headers=good, timeout=10).status_code == 200
        for method, path in (("GET", "/_stats"), ("POST", "/_stats/reset")):
            for headers in ({}, {"Authorization": "Bearer nope"}):
                refused = requests.request(method, server.url + path, headers=headers, timeout=10)
                assert refused.status_code == 401 and refused.json()["error"]["status"] == "UNAUTHENTICATED"
        assert server.stats()["statuses"] == {"200": 1}  # not reset by the refused POSTs
        assert requests.get(f"{server.url}/_stats", headers=good, timeout=10).json()["requests"] == {"getAsset": 1}
        assert requests.post(f"{server.url}/_stats/reset", headers=good, timeout=10).status_code == 200
        assert server.stats()["requests"] == {}
    with serve(catalog=standard_catalog(), token="s3cret", process=True) as child:  # the handle sends the token
        assert requests.get(f"{child.url}/_stats", timeout=10).status_code == 401
        requests.get(f"{child.url}/{ASSET_URL}", headers=good, timeout=10)
        assert child.stats()["requests"] == {"getAsset": 1}
        child.reset_stats()
        assert child.stats()["requests"] == {}
        assert "s3cret" not in repr(child)


def test_max_concurrency_answers_429_beyond_the_cap():
    with serve(catalog=standard_catalog(), max_concurrency=2, latency_ms=800) as server:
        statuses = parallel(6, lambda _: requests.get(f"{server.url}/{ASSET_URL}", timeout=30).status_code)
        stats = server.stats()
    assert sorted(statuses) == [200, 200, 429, 429, 429, 429]
    assert stats["max_in_flight"] == 2
    assert stats["rejected"] == 4 and stats["statuses"] == {"200": 2, "429": 4}


def test_request_body_cap():
    with serve(catalog=standard_catalog(), max_body_bytes=1000) as server:
        small = requests.post(
            f"{server.url}/{ASSET_URL}:getPixels", json={"fileFormat": "NPY", "bandIds": ["B9"]}, timeout=10
        )
        assert small.status_code == 400  # read and parsed: an unknown band
        big = requests.post(f"{server.url}/{ASSET_URL}:getPixels", data=b" " * 5000, timeout=10)
        assert big.status_code == 413
        assert "exceeds the limit of 1000 bytes" in big.json()["error"]["message"]


def test_64_parallel_keep_alive_clients_get_exact_pixels():
    grid = PixelGrid("EPSG:32610", UTM_GRID.transform, 4096, 4096)
    image = ProceduralImage("test/parallel", grid, dtypes=("uint16", "uint16"))
    with serve(catalog=[image], latency_ms=300) as server:

        def fetch(index):
            session = requests.Session()
            row, col = 64 * index, 32 * index
            body = {"fileFormat": "NPY", "grid": {
                "dimensions": {"width": 64, "height": 48},
                "affineTransform": {"scaleX": 10, "scaleY": -10, "translateX": 500000 + 10 * col, "translateY": 4200000 - 10 * row},
                "crsCode": grid.crs}}  # fmt: skip
            results = []
            for _ in range(2):  # the second request reuses the connection
                response = session.post(f"{server.url}/v1/{PUBLIC}/test/parallel:getPixels", json=body, timeout=60)
                array = read_npy(response.content)  # no ast: CPython 3.11.7 AST race (decode.py)
                truth = procedural_values(
                    1, np.arange(row, row + 48)[:, None], np.arange(col, col + 64)[None, :], 0, "uint16"
                )
                results.append(np.array_equal(array["B2"], truth))
            return all(results)

        outcomes = parallel(64, fetch)
        stats = server.stats()
    assert all(outcomes)
    assert stats["requests"] == {"getPixels": 128}
    assert stats["max_in_flight"] == 64


def test_fault_plan_validation():
    assert FaultPlan.parse("429=0.2, reset=0.1,seed=4") == FaultPlan((("429", 0.2), ("reset", 0.1)), 4)
    for bad in ("429=1.5", "teapot=0.1", "429=0.6,503=0.6", "429", "200=0.1", "seed=x"):
        with pytest.raises(ValueError):
            FaultPlan.parse(bad)
    with pytest.raises(ValueError):
        serve(catalog=[], latency_ms=-1)
    with pytest.raises(ValueError):
        serve(catalog=[], max_concurrency=0)


def test_compute_budget_answers_earth_engines_memory_error_beyond_it():
    # Output pixels x Image.load calls per computePixels; the answer is the real service's
    # (gee-community/geemap#1465: {"error": {"code": 400, "message": "User memory limit exceeded.",
    # "status": "INVALID_ARGUMENT"}}).
    def load(asset):
        return {
            "functionInvocationValue": {"functionName": "Image.load", "arguments": {"id": {"constantValue": asset}}}
        }

    def body(width, height, loads):
        image = load("test/procedural")
        for _ in range(loads - 1):
            image = {
                "functionInvocationValue": {
                    "functionName": "Image.add",
                    "arguments": {"image1": image, "image2": load("test/procedural")},
                }
            }
        grid = {"dimensions": {"width": width, "height": height}}
        return {
            "expression": {"result": "0", "values": {"0": image}},
            "fileFormat": "NPY",
            "grid": grid,
            "bandIds": ["B1"],
        }

    with serve(catalog=standard_catalog(), compute_budget=100) as server:
        url = f"{server.url}/v1/projects/p/image:computePixels"
        assert requests.post(url, json=body(10, 10, 1), timeout=10).status_code == 200  # 100: at the budget
        refused = requests.post(url, json=body(10, 11, 1), timeout=10)  # 110 px x 1 image
        assert refused.status_code == 400
        assert refused.json() == {
            "error": {"code": 400, "message": "User memory limit exceeded.", "status": "INVALID_ARGUMENT"}
        }
        assert requests.post(url, json=body(10, 5, 2), timeout=10).status_code == 200  # 50 px x 2 images
        assert requests.post(url, json=body(10, 6, 2), timeout=10).status_code == 400  # 60 px x 2 images
        pixels = requests.post(
            f"{server.url}/v1/{PUBLIC}/test/procedural:getPixels",
            json={"fileFormat": "NPY", "bandIds": ["B1"], "grid": {"dimensions": {"width": 50, "height": 50}}},
            timeout=10,
        )
        assert pixels.status_code == 200  # getPixels is not a computation: no budget
    for bad in (0, -5, 2.5, True, "100"):
        with pytest.raises(ValueError, match="compute_budget must be a positive integer"):
            serve(catalog=[], compute_budget=bad)
