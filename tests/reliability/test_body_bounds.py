"""The decoder refuses layouts it does not expect and bounds what a body may take (issue 12, item 7).

GeoTIFF bands are matched by description, not position; a body is never inflated beyond
the size its request can take (a gzip bomb costs a bounded amount of memory, then is
retried as a bad response); a declared length beyond that is refused before reading.
NPY in Fortran order is refused by tests/reliability/test_decode.py (``fortran`` cases).
"""

from __future__ import annotations

import gzip
import threading
import tracemalloc
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from affine import Affine
from rasterio.io import MemoryFile

from eexarray.geometry import PixelGrid
from eexarray.server.encoding import encode_geotiff, encode_npy
from eexarray.transport import ConnectionConfig, CorruptResponseError, RestClient, RetriesExhaustedError, http
from eexarray.transport.api import get_pixels
from eexarray.transport.decode import BODY_SLACK_BYTES, decode_geotiff, max_body_bytes

GRID = PixelGrid("EPSG:32610", Affine(10, 0, 500000, 0, -10, 4200000), 30, 20)
BANDS = ["a", "b"]
DTYPES = [np.dtype("uint16"), np.dtype("float32")]
A = (np.arange(600).reshape(20, 30) * 7).astype("uint16")
B = np.linspace(-1, 1, 600, dtype="float32").reshape(20, 30)
EXPECT = {"shape": (20, 30), "band_ids": BANDS, "dtypes": DTYPES}
BOMB_BYTES = 256 * 2**20  # what the bomb inflates to


def tiff_with(descriptions: list[str | None]) -> bytes:
    profile = {"driver": "GTiff", "width": 30, "height": 20, "count": 2, "dtype": "float32", "crs": "EPSG:32610",
               "transform": GRID.transform}  # fmt: skip
    with MemoryFile() as memory:
        with memory.open(**profile) as dataset:
            dataset.write(np.stack([A.astype("float32"), B]))
            for index, description in enumerate(descriptions, start=1):
                if description is not None:
                    dataset.set_band_description(index, description)
        return memory.read()


@pytest.mark.parametrize(
    "body, message",
    [
        (
            encode_geotiff(["b", "a"], [A, B], GRID),
            r"descriptions \['b', 'a'\] do not match the requested bands \['a', 'b'\]",
        ),
        (tiff_with(["a", "c"]), r"descriptions \['a', 'c'\] do not match"),
        (tiff_with(["a", None]), r"descriptions \['a', None\] do not match"),
        (tiff_with(["A", "B"]), r"descriptions \['A', 'B'\] do not match"),
    ],
    ids=["swapped", "renamed", "partly-described", "case"],
)
def test_geotiff_bands_are_matched_by_description(body, message):
    with pytest.raises(CorruptResponseError, match=message):
        decode_geotiff(body, **EXPECT)


def test_geotiff_without_descriptions_is_read_in_request_order():
    result = decode_geotiff(tiff_with([None, None]), **EXPECT)
    np.testing.assert_array_equal(result["a"], A)
    np.testing.assert_array_equal(result["b"], B)


def test_a_vrt_body_is_not_opened_as_a_geotiff():
    vrt = b'<VRTDataset rasterXSize="30" rasterYSize="20"></VRTDataset>'
    with pytest.raises(CorruptResponseError, match="not a TIFF body"):
        decode_geotiff(vrt, **EXPECT)
    with pytest.raises(CorruptResponseError, match="does not decode"):  # even behind TIFF magic
        decode_geotiff(b"II" + vrt, **EXPECT)


def test_the_size_bound_is_the_request_plus_slack():
    pixels = 20 * 30 * 2 * 8
    assert max_body_bytes("NPY", (20, 30), BANDS) == pixels + 2 * 16 * 17 + BODY_SLACK_BYTES
    assert max_body_bytes("GEO_TIFF", (20, 30), BANDS) == pixels + 600 + 16 * 20 * 2 + 2 * 16 * 17 + BODY_SLACK_BYTES
    # Every good body the server sends fits (the widest: float64 bands and long names).
    names = [f"band_with_a_long_name_{index}" for index in range(40)]
    wide = [np.zeros((20, 30), "float64")] * len(names)
    assert len(encode_npy(names, wide)) <= max_body_bytes("NPY", (20, 30), names)
    assert len(encode_geotiff(names, wide, GRID)) <= max_body_bytes("GEO_TIFF", (20, 30), names)


def gzip_bomb() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    zeros = bytes(16 * 2**20)
    return b"".join(compressor.compress(zeros) for _ in range(BOMB_BYTES // len(zeros))) + compressor.flush()


BOMB = gzip_bomb()


class Responder:
    """A server answering every request with ``status``, ``body`` and ``headers``; counts requests."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]):
        self.count = 0
        responder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                responder.count += 1
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up reading: what a bounded reader does

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def client(self) -> RestClient:
        return RestClient(ConnectionConfig.create(f"http://127.0.0.1:{self.httpd.server_address[1]}"))


def peak_traced(function) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        function()
        outcome = None
    except BaseException as error:  # noqa: BLE001 - returned to the test
        outcome = error
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return outcome, peak


def test_a_gzipped_good_body_decodes(fast_retry):
    body = gzip.compress(bytes(encode_npy(BANDS, [A, B])))
    headers = {"Content-Encoding": "gzip", "Content-Length": str(len(body)), "Content-Type": "application/octet-stream"}
    with Responder(200, body, headers) as responder:
        result = get_pixels(responder.client, "projects/p/assets/x", GRID, BANDS, DTYPES)
    np.testing.assert_array_equal(result["a"], A)
    np.testing.assert_array_equal(result["b"], B)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "close-delimited"])
def test_a_gzip_bomb_is_never_inflated_whole(fast_retry, declared):
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"}
    headers.update({"Content-Length": str(len(BOMB))} if declared else {"Connection": "close"})
    with Responder(200, BOMB, headers) as responder:
        error, peak = peak_traced(lambda: get_pixels(responder.client, "projects/p/assets/x", GRID, BANDS, DTYPES))
        assert responder.count == fast_retry.max_attempts  # a bad body, retried like any other
    assert isinstance(error, RetriesExhaustedError), error
    limit = max_body_bytes("NPY", (20, 30), BANDS)
    assert f"response too large (more than {limit} bytes once decompressed)" in str(error)
    assert peak < 4 * limit < BOMB_BYTES // 32  # bounded by the request, not by the bomb


def test_a_declared_length_beyond_the_request_is_refused_before_reading(fast_retry):
    headers = {"Content-Length": str(10**12), "Content-Type": "application/octet-stream"}
    with Responder(200, b"\x93NUMPY" + bytes(100), headers) as responder:
        error, peak = peak_traced(lambda: get_pixels(responder.client, "projects/p/assets/x", GRID, BANDS, DTYPES))
    assert isinstance(error, RetriesExhaustedError)
    limit = max_body_bytes("NPY", (20, 30), BANDS)
    assert f"response too large (Content-Length {10**12} bytes, at most {limit} expected)" in str(error)
    assert peak < 2**20


@pytest.mark.parametrize("status", [200, 503])
def test_json_and_error_bodies_are_bounded_too(fast_retry, monkeypatch, status):
    monkeypatch.setattr(http, "MAX_JSON_BODY_BYTES", 4 * 2**20)
    headers = {"Content-Encoding": "gzip", "Content-Length": str(len(BOMB)), "Content-Type": "application/json"}
    with Responder(status, BOMB, headers) as responder:
        error, peak = peak_traced(lambda: responder.client.get_json("projects/p/assets/x"))
    assert isinstance(error, RetriesExhaustedError), error
    assert f"response too large (more than {4 * 2**20} bytes once decompressed)" in str(error)
    assert peak < 16 * 2**20
