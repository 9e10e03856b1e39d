"""Server hardening of issue 12: odd band names never give a 500, ``/_stats`` needs the token
(tests/server/test_knobs.py), error bodies hide the root's absolute path, a loopback server
checks ``Host`` (DNS rebinding), and band ids become safe file names inside per-band zips."""

from __future__ import annotations

import io
import itertools
import json
import os
import zipfile

import numpy as np
import pytest
import rasterio
import requests
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eexarray
from eexarray.download.names import zip_member_names
from eexarray.geometry import PixelGrid
from eexarray.server import InMemoryImage
from eexarray.transport import EarthEngineRequestError
from eexarray.transport.decode import decode_geotiff, decode_npy

PUBLIC = "projects/earthengine-public/assets"
TRANSFORM = Affine(30, 0, 300000, 0, -30, 5000000)
HEIGHT, WIDTH = 6, 8
FORMATS = ("NPY", "GEO_TIFF", "ZIPPED_GEO_TIFF", "ZIPPED_GEO_TIFF_PER_BAND", "PNG")
ODD_NAMES = [
    "NDVI_é",
    "波段",
    "a\x01b",
    "\n",
    "../../evil",
    "a/b",
    "a_b",
    "'\"",
    "\\",
    "\ud800x",
    "a\x00b",
    "é" * 60,
    " 0",
    "x\x0b",
    "a\tb\n",
]


def band_values(count: int) -> np.ndarray:
    return (np.arange(count * HEIGHT * WIDTH) % 251).astype("uint8").reshape(count, HEIGHT, WIDTH)


def unencodable_in_a_description(name: str) -> bool:
    """GDAL strips a description's leading whitespace and drops C0 controls but tab, newline, CR."""
    return (
        name[0] in " \t\n\r"
        or any(ord(char) < 0x20 and char not in "\t\n\r" for char in name)
        or any(0xD800 <= ord(char) <= 0xDFFF for char in name)
    )


def safe_member(member: str) -> bool:
    return "/" not in member and "\\" not in member and not member.startswith(".") and "\x00" not in member


@pytest.fixture(scope="module")
def named_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("names")
    with eexarray.serve(root) as server:
        yield root, server


_counter = itertools.count()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(
        st.one_of(st.sampled_from(ODD_NAMES), st.text(min_size=1, max_size=10)), min_size=1, max_size=3, unique=True
    )
)
def test_any_band_names_work_or_get_a_clear_400_never_a_500(named_root, names):
    root, server = named_root
    asset = f"img{next(_counter)}"
    profile = {"driver": "GTiff", "width": WIDTH, "height": HEIGHT, "count": len(names), "dtype": "uint8",
               "crs": "EPSG:32633", "transform": TRANSFORM}  # fmt: skip
    values = band_values(len(names))
    with rasterio.open(root / f"{asset}.tif", "w", **profile) as dataset:
        dataset.write(values)
    (root / f"{asset}.json").write_text(json.dumps({"bands": names}), encoding="utf-8")
    url = f"{server.url}/v1/{PUBLIC}/{asset}"
    metadata = requests.get(url, timeout=30)
    assert metadata.status_code == 200
    assert [band["id"] for band in metadata.json()["bands"]] == names
    shape = (HEIGHT, WIDTH)
    dtypes = [np.dtype("uint8")] * len(names)
    for file_format in FORMATS:
        response = requests.post(f"{url}:getPixels", json={"fileFormat": file_format, "bandIds": names}, timeout=30)
        assert response.status_code in (200, 400), (file_format, response.status_code, response.text[:300])
        if response.status_code == 400:
            message = response.json()["error"]["message"]
            if file_format == "PNG":
                assert len(names) == 2 and "1 or 3 bands" in message
            else:
                bad = [name for name in names if unencodable_in_a_description(name)]
                assert file_format != "NPY" and bad and repr(bad[0]) in message and file_format in message
            continue
        assert file_format in ("NPY", "PNG") or not any(map(unencodable_in_a_description, names))
        if file_format == "NPY":
            decoded = decode_npy(bytearray(response.content), shape=shape, band_ids=names, dtypes=dtypes)
        elif file_format == "GEO_TIFF":
            decoded = decode_geotiff(response.content, shape=shape, band_ids=names, dtypes=dtypes)
        elif file_format.startswith("ZIPPED"):
            members = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
            assert all(safe_member(member) and member.startswith(f"{asset}.") for member in members), members
            assert len(set(members)) == (len(names) if file_format.endswith("PER_BAND") else 1)
            continue
        else:
            assert response.content.startswith(b"\x89PNG")
            continue
        for index, name in enumerate(names):
            assert decoded[name].tolist() == values[index].tolist()


def test_odd_band_names_from_a_python_client():
    """NPY carries any name (format 3.0 header beyond latin-1); a 400 is raised at once, never retried."""
    grid = PixelGrid("EPSG:32633", TRANSFORM, WIDTH, HEIGHT)
    values = band_values(4)
    names = ["NDVI_é", "波段", "a\x01b", "\ud800x"]
    image = InMemoryImage("odd/names", dict(zip(names, values)), grid)
    with eexarray.serve(catalog=[image]) as server:
        ds = eexarray.open_dataset("odd/names", endpoint=server.url).load()
        assert list(ds.data_vars) == names
        for index, name in enumerate(names):
            assert ds[name].values.tolist() == values[index].tolist()
        server.reset_stats()
        with pytest.raises(EarthEngineRequestError) as refused:
            eexarray.open_dataset("odd/names", endpoint=server.url, file_format="GEO_TIFF").load()
        assert refused.value.status == 400
        assert (
            "Band id 'a\\x01b' cannot be written in a GEO_TIFF band description: it holds a control character"
            in str(refused.value)
        )
        counts = server.stats()["requests"]
        assert counts.get("getPixels", 0) + counts.get("computePixels", 0) == 1  # a 400 is not retried
        # A band named like a coordinate: a clear error at open, before any pixel request.
        clash = InMemoryImage("odd/clash", {"y": values[0], "v": values[1]}, grid)
    with eexarray.serve(catalog=[clash]) as server:
        with pytest.raises(ValueError, match=r"band\(s\) \['y'\] have the name of a coordinate"):
            eexarray.open_dataset("odd/clash", endpoint=server.url)
        assert server.stats()["requests"].get("getPixels", 0) == 0
        ds = eexarray.open_dataset("odd/clash", endpoint=server.url, bands=["v"]).load()
        assert ds["v"].values.tolist() == values[1].tolist()


def test_band_ids_become_safe_distinct_file_names_in_zips(tmp_path):
    assert zip_member_names("img", ["../../evil", "a/b", "a_b", "a\\b", "波段"], per_band=True) == [
        "img..._.._evil.tif",
        "img.a_b.tif",
        "img.a_b_2.tif",
        "img.a_b_3.tif",
        "img.波段.tif",
    ]
    grid = PixelGrid("EPSG:32633", TRANSFORM, WIDTH, HEIGHT)
    values = band_values(3)
    image = InMemoryImage("zips/img", dict(zip(["../../evil", "a/b", "a_b"], values)), grid)
    scratch = tmp_path / "deep" / "er"
    scratch.mkdir(parents=True)
    with eexarray.serve(catalog=[image]) as server:
        output = eexarray.download(
            "zips/img", scratch / "out.zip", format="ZIPPED_GEO_TIFF_PER_BAND", endpoint=server.url, progress=False
        )
        served = requests.post(
            f"{server.url}/v1/{PUBLIC}/zips/img:getPixels",
            json={"fileFormat": "ZIPPED_GEO_TIFF_PER_BAND"},
            timeout=30,
        )
    expected = ["img..._.._evil.tif", "img.a_b.tif", "img.a_b_2.tif"]
    assert zipfile.ZipFile(io.BytesIO(served.content)).namelist() == expected  # the server's zip
    with zipfile.ZipFile(output) as archive:  # the client's own zip
        assert archive.namelist() == expected
        for member, truth in zip(expected, values):
            with rasterio.open(io.BytesIO(archive.read(member))) as dataset:
                assert dataset.read(1).tolist() == truth.tolist()
    assert sorted(os.listdir(tmp_path)) == ["deep"] and not (tmp_path / "evil.tif").exists()
    assert sorted(os.listdir(scratch)) == ["out.zip"]


# -- error bodies and Host -------------------------------------------------------------------


@pytest.fixture(scope="module")
def rooted(tmp_path_factory):
    base = tmp_path_factory.mktemp("paths")
    root = base / "root"
    root.mkdir()
    (root / "broken.tif").write_bytes(b"II*\x00\x08\x00\x00\x00" + b"\xff" * 50)  # an unreadable IFD
    (root / "linked").symlink_to(root)  # a second spelling of the root
    with rasterio.open(root / "ok.tif", "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=TRANSFORM) as dataset:  # fmt: skip
        dataset.write(np.ones((1, 4, 4), "uint8"))
    (root / "ok.json").write_text('{"startTime": "2020-01-01T00:00:00Z", "bands": "not a list"}')
    with eexarray.serve(root / "linked") as server:  # served through the symlink: both spellings hidden
        yield root, server


def test_error_bodies_never_show_the_roots_absolute_path(rooted):
    root, server = rooted
    broken = requests.get(f"{server.url}/v1/{PUBLIC}/broken", timeout=30)
    assert broken.status_code == 400
    assert "broken.tif is not a readable GeoTIFF: broken.tif: TIFFReadDirectory" in broken.json()["error"]["message"]
    sidecar = requests.get(f"{server.url}/v1/{PUBLIC}/ok", timeout=30)
    assert sidecar.status_code == 400 and "Sidecar ok.json: bands must be a list" in sidecar.text
    for response in (broken, sidecar):
        assert str(root) not in response.text and str(root.parent) not in response.text


def test_the_http_layer_hides_root_paths_in_any_error(rooted, monkeypatch):
    """The backstop: an error message that does name the root (here a server bug) is rewritten."""
    root, server = rooted

    def failing(*args, **kwargs):
        raise OSError(f"cannot read {root}/secret/place.tif nor {root / 'linked'}/x")

    monkeypatch.setattr(type(server._httpd.api.catalog), "get", failing)
    response = requests.get(f"{server.url}/v1/{PUBLIC}/anything", timeout=30)
    assert response.status_code == 500
    assert (
        response.json()["error"]["message"]
        == "Internal error: OSError: cannot read <root>/secret/place.tif nor <root>/x"
    )


def raw_request(server, host: str | None, path: str = f"/v1/{PUBLIC}/ok") -> tuple[int, bytes]:
    import http.client

    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.putrequest("GET", path, skip_host=True)
    if host is not None:
        connection.putheader("Host", host)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


@pytest.fixture(scope="module")
def loopback():
    image = InMemoryImage(
        "h/img", {"v": np.ones((2, 2), "uint8")}, PixelGrid("EPSG:4326", Affine(1, 0, 0, 0, -1, 0), 2, 2)
    )
    with eexarray.serve(catalog=[image], token="tok") as server:
        yield server


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:{port}",
        "localhost:{port}",
        "[::1]:{port}",
        "LOCALHOST:{port}",
        " localhost:{port} ",
        None,
        "127.0.0.1",
        "localhost:{other}",
    ],  # fmt: skip
    ids=["ipv4", "localhost", "ipv6", "case", "spaces", "no-host", "no-port", "tunnel"],
)
def test_a_loopback_server_answers_its_own_names(loopback, host):
    host = None if host is None else host.format(port=loopback.port, other=loopback.port + 1)
    status, _ = raw_request(loopback, host, "/v1/projects/earthengine-public/assets/h/img")
    assert status == 401  # past the Host check, stopped by the token


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",
        "evil.example",
        "127.0.0.1.nip.io:{port}",
        "localhost.:{port}",
        "",
        "localhost:x",
        "localhost:{port}:1",
        "[::2]:{port}",
        "user@localhost:{port}",
    ],  # fmt: skip
)
@pytest.mark.parametrize("path", ["/v1/projects/earthengine-public/assets/h/img", "/_stats", "/$discovery/rest"])
def test_a_loopback_server_refuses_other_host_names(loopback, host, path):
    host = host.format(port=loopback.port, other=loopback.port + 1)
    before = loopback.stats()
    status, body = raw_request(loopback, host, path)
    assert status == 403
    message = json.loads(body)["error"]["message"]
    assert f"Host {host!r} is not this server's name" in message and "DNS rebinding" in message
    assert "127.0.0.1, [::1], localhost (with any port" in message
    assert loopback.stats()["requests"] == before["requests"]  # refused before anything else


def test_a_server_bound_to_all_addresses_answers_any_host():
    image = InMemoryImage(
        "h/img", {"v": np.ones((2, 2), "uint8")}, PixelGrid("EPSG:4326", Affine(1, 0, 0, 0, -1, 0), 2, 2)
    )
    with eexarray.serve(catalog=[image], host="0.0.0.0") as server:
        status, _ = raw_request(
            server, f"my-machine.example:{server.port}", "/v1/projects/earthengine-public/assets/h/img"
        )
        assert status == 200


# -- computed requests -------------------------------------------------------------------------

ALGORITHMS = [
    (entry["name"].removeprefix("algorithms/"), [argument["argumentName"] for argument in entry.get("arguments", [])])
    for entry in __import__("eexarray.server.algorithms", fromlist=["x"]).list_algorithms()["algorithms"]
]
ATOMS = [None, True, 0, -1, 0.5, 1e308, -1e20, 2**70, "", "x", "B1", "v", "EPSG:4326", [], {}, [1, 2],
         "2020-01-01", "0999-01-01", "0000-01-01", "test/memory", "test/img", "NDVI_é", "\ud800"]  # fmt: skip
SMALL_GRID = {"crsCode": "EPSG:4326", "dimensions": {"width": 4, "height": 3},
              "affineTransform": {"scaleX": 0.001, "shearX": 0, "translateX": -122.4,
                                  "shearY": 0, "scaleY": -0.001, "translateY": 37.8}}  # fmt: skip


def random_node(rng, depth: int = 0) -> dict:
    """A ValueNode: an invocation of any listed algorithm (arguments random nodes) or a constant."""
    if depth < 3 and rng.random() < 0.4:
        name, arguments = rng.choice(ALGORITHMS)
        chosen = {argument: random_node(rng, depth + 1) for argument in arguments if rng.random() < 0.8}
        return {"functionInvocationValue": {"functionName": name, "arguments": chosen}}
    return {"constantValue": rng.choice(ATOMS)}


@pytest.fixture(scope="module")
def compute_server():
    from tests.server.helpers import standard_catalog

    with eexarray.serve(catalog=standard_catalog()) as server:
        yield server


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rng=st.randoms(use_true_random=False), file_format=st.sampled_from(["NPY", "GEO_TIFF", "PNG"]))
def test_random_expressions_never_give_a_500(compute_server, rng, file_format):
    expression = {"result": "0", "values": {"0": random_node(rng)}}
    for path, body in (
        ("/v1/projects/p/value:compute", {"expression": expression}),
        (
            "/v1/projects/p/image:computePixels",
            {"expression": expression, "fileFormat": file_format, "grid": SMALL_GRID},
        ),
    ):
        response = requests.post(compute_server.url + path, json=body, timeout=60)
        assert response.status_code in (200, 400), (path, response.status_code, response.text[:300], body)
        if response.status_code == 400:
            assert response.json()["error"]["message"]


def raw_exchange(server, request: bytes) -> bytes:
    import socket

    with socket.create_connection((server.host, server.port), timeout=30) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "TRACE", "CONNECT", "FOO"])
def test_methods_the_api_has_not_are_a_405_never_a_501(compute_server, method):
    path = "/v1/projects/earthengine-public/assets/test/memory"
    answer = raw_exchange(
        compute_server, f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{compute_server.port}\r\n\r\n".encode()
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ") and b"Connection: close" in head
    if method == "HEAD":
        assert body == b""
    else:
        error = json.loads(body)["error"]
        assert error["status"] == "METHOD_NOT_ALLOWED" and f"Method '{method}' is not allowed" in error["message"]
    assert requests.get(compute_server.url + path, timeout=30).status_code == 200  # still serving


SIDECAR_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.text(max_size=12),
        st.sampled_from(
            [
                "2020-01-01T00:00:00Z",
                "0001-01-01T00:00:00+01:00",
                "9999-12-31T23:59:59-01:00",
                "0999-01-01",
                "2020-13-01",
                "",
                "B1",
            ]
        ),  # fmt: skip
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
SIDECARS = st.one_of(
    SIDECAR_VALUES,
    st.fixed_dictionaries(
        {},
        optional={
            "startTime": SIDECAR_VALUES,
            "endTime": SIDECAR_VALUES,
            "properties": SIDECAR_VALUES,
            "bands": st.one_of(SIDECAR_VALUES, st.lists(st.text(max_size=6), max_size=3)),
            "other": SIDECAR_VALUES,
        },
    ),
)


@pytest.fixture(scope="module")
def sidecar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sidecars")
    (root / "col").mkdir()
    (root / "col" / "collection.json").write_text("{}")
    with eexarray.serve(root) as server:
        yield root, server


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sidecar=SIDECARS)
def test_any_sidecar_content_is_served_or_refused_never_a_500(sidecar_root, sidecar):
    """Root files are the operator's input: a sidecar of any JSON gives a 200 or a 400 naming it."""
    root, server = sidecar_root
    asset = f"img{next(_counter)}"
    with rasterio.open(root / "col" / f"{asset}.tif", "w", driver="GTiff", width=4, height=3, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=TRANSFORM) as dataset:  # fmt: skip
        dataset.write(np.full((1, 3, 4), 9, "uint8"))
    (root / "col" / f"{asset}.json").write_text(json.dumps(sidecar))
    base = f"{server.url}/v1/{PUBLIC}/col"
    answers = [
        requests.get(f"{base}/{asset}", timeout=30),
        requests.post(f"{base}/{asset}:getPixels", json={"fileFormat": "NPY"}, timeout=30),
        requests.get(f"{base}:listImages", params={"startTime": "0500-01-01T00:00:00Z"}, timeout=30),
        requests.get(
            f"{base}:listAssets", params={"filter": 'startTime > "1990-01-01" AND properties.x < 3'}, timeout=30
        ),
    ]
    for response in answers:
        assert response.status_code in (200, 400), (response.request.url, response.status_code, response.text[:300])
    if answers[0].status_code == 400:
        assert f'col/{asset}" cannot be read: ' in answers[0].json()["error"]["message"]
        assert answers[1].status_code == 400
    (root / "col" / f"{asset}.json").unlink()  # the listings of later examples list only valid files
    (root / "col" / f"{asset}.tif").unlink()


def test_npy_headers_beyond_latin1_are_numpys_own_format_3():
    from eexarray.server.encoding import encode_npy

    arrays = [np.arange(6, dtype="uint16").reshape(2, 3), np.ones((2, 3), "float32")]
    body = bytes(encode_npy(["波段", "NDVI_é"], arrays))
    loaded = np.load(io.BytesIO(body))
    assert loaded.dtype.names == ("波段", "NDVI_é") and loaded["波段"].tolist() == [[0, 1, 2], [3, 4, 5]]
    reference = io.BytesIO()
    np.lib.format.write_array(reference, np.zeros((2, 3), loaded.dtype), version=(3, 0))
    header_length = len(body) - 6 * loaded.dtype.itemsize
    assert body[:header_length] == reference.getvalue()[:header_length]
    assert header_length % 64 == 0 and body.startswith(b"\x93NUMPY\x03\x00")
    latin = bytes(encode_npy(["NDVI_é"], arrays[:1]))
    assert latin.startswith(b"\x93NUMPY\x01\x00")  # format 1.0 whenever the names allow
