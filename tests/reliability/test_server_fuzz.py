"""Server hardening: fuzzed paths, query strings and JSON bodies never give a 5xx, never crash the
server and never read outside the root; bodies are bounded; idle connections time out."""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import threading
import urllib.parse

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eexarray
from eexarray.server import http_server

PUBLIC = "projects/earthengine-public/assets"
SECRET_VALUE = 77
SECRET_TEXT = b"TOPSECRET-do-not-serve"


def write_tif(path, value, dtype="uint8", description=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    profile = {"driver": "GTiff", "width": 8, "height": 6, "count": 1, "dtype": dtype, "crs": "EPSG:32633",
               "transform": Affine(30, 0, 300000, 0, -30, 5000000)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(np.full((1, 6, 8), value, dtype))
        if description:
            dataset.set_band_description(1, description)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    root, outside = base / "data", base / "outside"
    write_tif(str(root / "dem.tif"), 5, "int16")
    write_tif(str(root / "folder" / "sub" / "deep.tif"), 6)
    write_tif(str(root / "S2" / "a.tif"), 7)
    (root / "S2" / "collection.json").write_text('{"MISSION": "x"}')
    write_tif(str(outside / "secret.tif"), SECRET_VALUE, description="SECRETBAND")
    write_tif(str(base / "data-secret.tif"), SECRET_VALUE, description="SECRETBAND")  # shares the root's prefix
    (outside / "secret.txt").write_bytes(SECRET_TEXT)
    (base / "data.json").write_bytes(SECRET_TEXT)
    os.symlink(outside / "secret.tif", root / "escape.tif")
    os.symlink(outside, root / "linked")
    return base, root


@pytest.fixture(scope="module")
def fuzz_server(tree):
    base, root = tree
    opened: list[str] = []
    watching = threading.Event()

    def audit(event, args):
        if (
            watching.is_set()
            and event in ("open", "os.listdir", "os.scandir")
            and args
            and isinstance(args[0], (str, bytes, os.PathLike))
        ):
            opened.append(os.fsdecode(args[0]))

    sys.addaudithook(audit)  # hooks cannot be removed: it only records while `watching` is set
    original_open = rasterio.open

    def recording_open(path, *args, **kwargs):
        if watching.is_set():
            opened.append(os.fspath(path))
        return original_open(path, *args, **kwargs)

    rasterio.open = recording_open
    try:
        with eexarray.serve(root, max_body_bytes=4096) as server:
            watching.set()
            yield server, opened, str(base)
            watching.clear()
    finally:
        rasterio.open = original_open


def send(server, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None):
    """One raw HTTP/1.1 request on a fresh socket: (status, body). Targets go out byte for byte."""
    head = [
        f"{method} {target} HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Connection: close",
        f"Content-Length: {len(body)}",
    ]
    head += [f"{key}: {value}" for key, value in (headers or {}).items()]
    with socket.create_connection((server.host, server.port), timeout=30) as connection:
        connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body)
        chunks = []
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    response = b"".join(chunks)
    status_line, _, rest = response.partition(b"\r\n")
    status = int(status_line.split()[1])
    return status, rest.partition(b"\r\n\r\n")[2]


def check_answer(server, status, body, opened, base):
    assert 200 <= status < 500, (status, body[:300])
    assert SECRET_TEXT not in body and b"SECRETBAND" not in body
    if status >= 400 and body:
        assert json.loads(body)["error"]["code"] == status
    outside = [
        path
        for path in opened
        if os.path.realpath(path).startswith(base)
        and not os.path.realpath(path).startswith(os.path.join(base, "data") + os.sep)
        and os.path.realpath(path) != os.path.join(base, "data")
    ]
    assert outside == [], outside


PREFIXES = st.sampled_from(
    [
        "/",
        "/v1/",
        f"/v1/{PUBLIC}/",
        f"/v1alpha/{PUBLIC}/",
        "/v1/projects/",
        "/v1/projects/earthengine-legacy/assets/",
        f"/v1/{PUBLIC}/folder/",
        f"/v1/{PUBLIC}/S2/",
        "/$discovery/",
        "/v1/projects/p/",
    ]
)
SUFFIXES = st.sampled_from(["", ":getPixels", ":listAssets", ":listImages", "/algorithms", ":x", ":getPixels/"])
PIECES = st.sampled_from(
    [
        "..",
        ".",
        "/",
        "%2e%2e",
        "%2E%2E%2F",
        "%2f",
        "%5c",
        "\\",
        "%00",
        "dem",
        "escape",
        "linked",
        "secret",
        "S2",
        "folder",
        "sub",
        "deep",
        "data-secret",
        "data",
        "outside",
        "%",
        "%zz",
        "~",
        "..;",
        ":",
        "*",
        "a" * 300,
        "é",
        "%c3%a9",
        ".hidden",
        "projects",
        "assets",
        "//",
        "?",
        "#",
        "&",
        "=",
    ]
)
PATH_TEXT = st.lists(st.one_of(PIECES, st.text(alphabet="abc./%\\:-_~", max_size=8)), max_size=8).map("".join)
QUERY = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "pageSize",
                "pageToken",
                "filter",
                "view",
                "startTime",
                "endTime",
                "region",
                "alt",
                "fields",
                "bogus",
                "",
                "pageSize[]",
            ]
        ),
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(
                [
                    "-1",
                    "0",
                    "99999999999999999999",
                    "NaN",
                    "1e308",
                    "BASIC",
                    "FULL",
                    '{"type":"Point"}',
                    "x AND (",
                    'startTime > "2020"',
                    'intersects("{}")',
                ]
            ),
        ),
    ),
    max_size=4,
).map(lambda pairs: urllib.parse.urlencode(pairs))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    prefix=PREFIXES,
    text=PATH_TEXT,
    suffix=SUFFIXES,
    query=QUERY,
)
def test_fuzzed_paths_and_queries(fuzz_server, method, prefix, text, suffix, query):
    server, opened, base = fuzz_server
    target = prefix + urllib.parse.quote(text, safe="/%:.~\\") + suffix + (f"?{query}" if query else "")
    status, body = send(server, method, target, b"{}" if method == "POST" else b"")
    check_answer(server, status, body, opened, base)


JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.text(max_size=12),
        st.sampled_from(
            [
                "EPSG:4326",
                "EPSG:32633",
                "NPY",
                "GEO_TIFF",
                "PNG",
                "B1",
                "elevation",
                "EPSG:0",
                "Polygon",
                1e308,
                -0.0,
                32769,
            ]
        ),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
GRID_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "dimensions": st.one_of(
            JSON_VALUES, st.fixed_dictionaries({"width": st.integers(-5, 40000), "height": st.integers(-5, 40000)})
        ),
        "affineTransform": st.one_of(
            JSON_VALUES,
            st.fixed_dictionaries(
                {
                    key: st.one_of(
                        st.floats(allow_nan=False, allow_infinity=False, width=32), st.integers(-(10**6), 10**6)
                    )
                    for key in ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")
                }
            ),
        ),
        "crsCode": st.one_of(
            st.sampled_from(["EPSG:4326", "EPSG:3857", "EPSG:32633", "EPSG:999999", "foo"]), JSON_VALUES
        ),
        "crsWkt": st.one_of(st.just('GEOGCS["x"]'), JSON_VALUES),
    },
)
BODIES = st.fixed_dictionaries(
    {},
    optional={
        "fileFormat": st.one_of(
            st.sampled_from(
                [
                    "NPY",
                    "GEO_TIFF",
                    "PNG",
                    "JPEG",
                    "AUTO_JPEG_PNG",
                    "ZIPPED_GEO_TIFF",
                    "ZIPPED_GEO_TIFF_PER_BAND",
                    "TF_RECORD_IMAGE",
                ]
            ),
            JSON_VALUES,
        ),
        "bandIds": st.one_of(st.lists(st.sampled_from(["B1", "elevation", "nope", ""]), max_size=3), JSON_VALUES),
        "grid": st.one_of(GRID_VALUES, JSON_VALUES),
        "region": st.one_of(
            JSON_VALUES,
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["Polygon", "Point", "LineString", "MultiPolygon", "Bogus"]),
                    "coordinates": JSON_VALUES,
                }
            ),
        ),
        "visualizationOptions": JSON_VALUES,
        "workloadTag": JSON_VALUES,
        "extra": JSON_VALUES,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(asset=st.sampled_from(["dem", "folder/sub/deep", "S2", "S2/a", "escape", "linked/secret", "nope"]), body=BODIES)
def test_fuzzed_get_pixels_bodies(fuzz_server, asset, body):
    server, opened, base = fuzz_server
    status, answer = send(server, "POST", f"/v1/{PUBLIC}/{asset}:getPixels", json.dumps(body).encode())
    check_answer(server, status, answer, opened, base)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_fuzzed_raw_bodies(fuzz_server, raw):
    server, opened, base = fuzz_server
    status, answer = send(server, "POST", f"/v1/{PUBLIC}/dem:getPixels", raw)
    check_answer(server, status, answer, opened, base)


def test_the_server_survived_and_still_serves_exact_pixels(fuzz_server):
    server, opened, base = fuzz_server
    status, body = send(server, "POST", f"/v1/{PUBLIC}/dem:getPixels", b'{"fileFormat": "NPY"}')
    assert status == 200
    assert np.load(io.BytesIO(body))["B1"].tolist() == [[5] * 8] * 6
    assert server.stats()["statuses"].get("500", 0) == 0
    assert any(path.endswith("dem.tif") for path in opened)  # the file recorder does see the server's reads


def test_bodies_are_bounded(fuzz_server):
    server, *_ = fuzz_server
    status, body = send(server, "POST", f"/v1/{PUBLIC}/dem:getPixels", b" " * 5000)
    assert status == 413 and b"exceeds the limit of 4096 bytes" in body
    # A declared length far beyond the cap is refused before any of it is read.
    with socket.create_connection((server.host, server.port), timeout=10) as connection:
        connection.sendall(
            f"POST /v1/{PUBLIC}/dem:getPixels HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Length: {10**12}\r\n\r\n".encode()
        )
        assert b" 413 " in connection.recv(4096)
    # Chunked bodies are counted as they arrive.
    chunked = b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    with socket.create_connection((server.host, server.port), timeout=10) as connection:
        connection.sendall(
            f"POST /v1/{PUBLIC}/dem:getPixels HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            + chunked
        )
        assert b" 413 " in connection.recv(4096)
    # Header floods are refused by the HTTP layer with a 4xx.
    status, _ = send(server, "GET", f"/v1/{PUBLIC}/dem", b"", {f"X-{i}": "y" for i in range(200)})
    assert status == 431


def test_idle_connections_time_out(fuzz_server, monkeypatch):
    server, *_ = fuzz_server
    assert 0 < http_server.IDLE_TIMEOUT_SECONDS <= 300
    monkeypatch.setattr(http_server._Handler, "timeout", 0.5)
    for greeting in (
        b"",
        b"GET /v1/",
        f"POST /v1/{PUBLIC}/dem:getPixels HTTP/1.1\r\nContent-Length: 100\r\n\r\n{{".encode(),
    ):
        with socket.create_connection((server.host, server.port), timeout=20) as connection:
            connection.sendall(greeting)  # nothing, half a request line, or half a body: then silence
            while connection.recv(4096):  # a server that never closed would raise socket.timeout here
                pass
