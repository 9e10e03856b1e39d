"""Corruption detection: truncated or malformed NPY and GeoTIFF bodies never decode to data.

Unit tests of ``eexarray.transport.decode`` plus the transport against a stub server that
answers with bad bodies before a good one (the bad ones must be retried, not returned).
"""

from __future__ import annotations

import ast
import gc
import importlib
import io
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from eexarray.geometry import PixelGrid
from eexarray.server.encoding import encode_geotiff, encode_npy
from eexarray.transport import ConnectionConfig, CorruptResponseError, RestClient, RetriesExhaustedError
from eexarray.transport.api import get_pixels
from eexarray.transport.decode import decode_geotiff, decode_npy, npy_header, read_npy

GRID = PixelGrid("EPSG:32610", Affine(10, 0, 500000, 0, -10, 4200000), 30, 20)
BANDS = ["a", "b"]
DTYPES = [np.dtype("uint16"), np.dtype("float32")]
A = (np.arange(600).reshape(20, 30) * 7).astype("uint16")
B = np.linspace(-1, 1, 600, dtype="float32").reshape(20, 30)
NPY = bytes(encode_npy(BANDS, [A, B]))
TIFF = encode_geotiff(BANDS, [A, B], GRID)
EXPECT = {"shape": (20, 30), "band_ids": BANDS, "dtypes": DTYPES}


def npy_of(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def structured(fields: dict[str, np.ndarray]) -> np.ndarray:
    first = next(iter(fields.values()))
    out = np.empty(first.shape, dtype=[(name, value.dtype) for name, value in fields.items()])
    for name, value in fields.items():
        out[name] = value
    return out


def test_good_bodies_decode_exactly():
    for decoder, body in ((decode_npy, NPY), (decode_geotiff, TIFF)):
        result = decoder(body, **EXPECT)
        np.testing.assert_array_equal(result["a"], A)
        np.testing.assert_array_equal(result["b"], B)
        assert result["a"].dtype == np.uint16 and result["b"].dtype == np.float32


def test_npy_bands_are_views_into_the_body_buffer():
    # The transport reads bodies into a writable bytearray; decoded bands are views of it
    # (no copy), writable because the buffer is.
    body = bytearray(NPY)
    result = decode_npy(body, **EXPECT)
    assert np.shares_memory(result["a"], np.frombuffer(body, dtype=np.uint8))
    assert result["a"].flags.writeable
    result["a"][0, 0] = 9  # and a write lands in that buffer only
    assert decode_npy(bytes(NPY), **EXPECT)["a"][0, 0] == A[0, 0]


@pytest.mark.parametrize("decoder, body", [(decode_npy, NPY), (decode_geotiff, TIFF)], ids=["NPY", "GEO_TIFF"])
def test_every_truncation_is_detected(decoder, body):
    # Every cut inside the header and a spread of cuts through the pixels.
    cuts = sorted(set(range(0, 400)) | set(range(400, len(body), 97)) | {len(body) - 1})
    for cut in cuts:
        with pytest.raises(CorruptResponseError):
            decoder(body[:cut], **EXPECT)


def test_npy_with_trailing_bytes_is_refused():
    with pytest.raises(CorruptResponseError, match=f"{len(NPY) + 3} bytes, expected {len(NPY)}"):
        decode_npy(NPY + b"abc", **EXPECT)


@pytest.mark.parametrize(
    "body, message",
    [
        (npy_of(structured({"a": A[:10], "b": B[:10]})), r"NPY shape \(10, 30\), expected \(20, 30\)"),
        (npy_of(structured({"b": B, "a": A})), r"NPY fields \['b', 'a'\], expected \['a', 'b'\]"),
        (npy_of(structured({"a": A})), r"NPY fields \['a'\], expected \['a', 'b'\]"),
        (npy_of(structured({"a": A.astype("int16"), "b": B})), "band 'a' has dtype int16, expected uint16"),
        (npy_of(structured({"a": A, "b": B.astype("float64")})), "band 'b' has dtype float64, expected float32"),
        (npy_of(A), r"NPY fields \[\], expected"),
        (NPY[:10] + b"\xff" * 20 + NPY[30:], "NPY header does not decode"),
        (NPY.replace(b"'descr'", b"'dexcr'"), "NPY header does not decode"),
        (NPY.replace(b"(20, 30)", b"(20, 3) "), r"NPY shape \(20, 3\)"),
        (b"<html>Service Unavailable</html>", "not an NPY body"),
        (b"", "not an NPY body"),
        (npy_of(np.asfortranarray(structured({"a": A, "b": B}))), r"Fortran order \(fortran_order: True\)"),
        (NPY.replace(b"False", b"True "), r"Fortran order \(fortran_order: True\)"),
        (NPY.replace(b"'<u2'", b"'u2,u1'"), "NPY header does not decode .*not one scalar type"),
        (NPY.replace(b"(20, 30)", b"(20, 3.)"), "NPY header does not decode"),
        (NPY.replace(b"(20, 30)", b"(True,30)"), "NPY header does not decode .*not a tuple of sizes"),
        (NPY.replace(b"'shape'", b"'descr'"), "NPY header does not decode .*repeats"),
        (NPY[:6] + b"\x04\x00" + NPY[8:], r"unknown format version \(4, 0\)"),
    ],
    ids=[
        "short",
        "order",
        "missing-band",
        "int-dtype",
        "float-dtype",
        "plain",
        "garbled",
        "bad-key",
        "shape",
        "html",
        "empty",
        "fortran",
        "fortran-flag",
        "comma-dtype",
        "float-size",
        "bool-size",
        "repeated-key",
        "version",
    ],
)
def test_malformed_npy_is_detected_with_a_reason(body, message):
    with pytest.raises(CorruptResponseError, match=message):
        decode_npy(body, **EXPECT)


def test_big_endian_npy_decodes_to_the_same_values():
    body = npy_of(structured({"a": A.astype(">u2"), "b": B.astype(">f4")}))
    result = decode_npy(body, **EXPECT)
    np.testing.assert_array_equal(result["a"], A)
    assert result["a"].dtype == np.dtype("=u2")


@pytest.mark.parametrize(
    "body, message",
    [
        (encode_geotiff(["a"], [A], GRID), "holds 1 bands of 20x30, expected 2 of 20x30"),
        (encode_geotiff(BANDS, [A[:10], B[:10]], GRID.with_dimensions(30, 10)), "holds 2 bands of 10x30"),
        (encode_geotiff(BANDS, [A.astype("int32") - 5, B.astype("float32")], GRID), None),  # promoted: fine if exact
        (encode_geotiff(BANDS, [A.astype("int8"), B.astype("int8")], GRID), "has dtype int8, expected uint16"),
        (
            encode_geotiff(BANDS, [A + 0.5, B.astype("float64")], GRID),
            "arrived as float64 with values that are not uint16",
        ),
        (TIFF[:4] + b"\x00\x00\x00\x00" + TIFF[8:], "does not decode"),
        (b"PK\x03\x04 a zip, not a tiff", "not a TIFF body"),
    ],
    ids=["one-band", "short", "promoted", "int8", "fractions", "bad-ifd-offset", "zip"],
)
def test_malformed_geotiff_is_detected_with_a_reason(body, message):
    if message is None:  # int32 holds uint16 exactly: decodes to the requested dtype
        result = decode_geotiff(body, **{**EXPECT, "dtypes": [np.dtype("int32"), np.dtype("float32")]})
        np.testing.assert_array_equal(result["a"], A.astype("int32") - 5)
        return
    with pytest.raises(CorruptResponseError, match=message):
        decode_geotiff(body, **EXPECT)


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, 200), value=st.integers(0, 255))
def test_npy_header_mutations_never_return_wrong_shapes_or_dtypes(position, value):
    """Any single-byte change in the header: refused, or decoded to the requested shape and dtypes."""
    header_length = NPY.index(b"\n") + 1
    position %= header_length
    body = NPY[:position] + bytes([value]) + NPY[position + 1 :]
    try:
        result = decode_npy(body, **EXPECT)
    except CorruptResponseError:
        return
    assert list(result) == BANDS
    assert all(result[name].shape == (20, 30) for name in BANDS)
    assert result["a"].dtype == np.uint16 and result["b"].dtype == np.float32


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(0, len(TIFF) - 1), garbage=st.binary(max_size=64))
def test_geotiff_cut_and_garbage_tails_are_refused(cut, garbage):
    """A GeoTIFF cut short (then padded with garbage shorter than the cut) never decodes."""
    body = TIFF[:cut] + garbage[: max(0, len(TIFF) - cut - 1)]
    if len(body) >= len(TIFF):
        return
    with pytest.raises(CorruptResponseError):
        decode_geotiff(body, **EXPECT)


# -- end to end: a stub server answering with bad bodies first ------------------------------


class StubServer:
    """Answers every POST with the next body of ``bodies`` (the last one repeats); counts requests."""

    def __init__(self, bodies: list[bytes]):
        self.bodies = list(bodies)
        self.count = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = stub.bodies[min(stub.count, len(stub.bodies) - 1)]
                stub.count += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.mark.parametrize("file_format, good", [("NPY", NPY), ("GEO_TIFF", TIFF)])
def test_bad_bodies_are_retried_until_a_good_one(fast_retry, file_format, good):
    other = TIFF if file_format == "NPY" else NPY
    bad = [good[: len(good) // 2], good[:100], other, b"\x00" * len(good), b"{}"]
    with StubServer([*bad, good]) as stub:
        before = __import__("eexarray").transport_stats()["retries"]
        result = get_pixels(
            RestClient(ConnectionConfig.create(stub.url)),
            "projects/p/assets/x",
            GRID,
            BANDS,
            DTYPES,
            file_format=file_format,
        )
        retries = __import__("eexarray").transport_stats()["retries"] - before
        assert stub.count == len(bad) + 1
    assert retries == len(bad)
    np.testing.assert_array_equal(result["a"], A)
    np.testing.assert_array_equal(result["b"], B)


def test_a_body_that_never_decodes_exhausts_retries_naming_the_problem(fast_retry):
    wrong = npy_of(structured({"a": A[:5], "b": B[:5]}))
    with StubServer([wrong]) as stub:
        with pytest.raises(RetriesExhaustedError) as caught:
            get_pixels(RestClient(ConnectionConfig.create(stub.url)), "projects/p/assets/x", GRID, BANDS, DTYPES)
        assert stub.count == fast_retry.max_attempts
    error = caught.value
    assert error.attempts == fast_retry.max_attempts and error.last_status == 200
    assert "getPixels of projects/p/assets/x" in error.request
    assert "corrupt response: NPY shape (5, 30), expected (20, 30)" in str(error)


def test_wide_npy_headers_decode():
    """Thousands of fields (a packed time series) make headers far above numpy's 10 kB default."""
    names = [f"image{index:05d}_B{band}" for index in range(800) for band in (1, 2)]
    array = np.zeros((2, 3), dtype=[(name, "uint16") for name in names])
    array[names[-1]] = 7
    result = decode_npy(npy_of(array), shape=(2, 3), band_ids=names, dtypes=[np.dtype("uint16")] * len(names))
    assert len(result) == 1600 and result[names[-1]].tolist() == [[7] * 3] * 2


# numpy's reader of every header version (the public read_array_header_1_0/2_0 read two of three).
NUMPY_READ_HEADER = (
    getattr(np.lib.format, "_read_array_header", None)
    or importlib.import_module("numpy.lib._format_impl")._read_array_header
)


@settings(max_examples=300, deadline=None)
@given(
    names=st.lists(
        st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=8), min_size=1, max_size=5, unique=True
    ),
    types=st.lists(st.sampled_from(["<u2", ">i4", "<f8", "|u1", "|b1", "<M8[ns]", "<U3", "|S2", ">c8"]), min_size=5),
    shape=st.lists(st.integers(0, 4), max_size=3).map(tuple),
    version=st.sampled_from([(1, 0), (2, 0), (3, 0)]),
    mutation=st.none() | st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
)
def test_npy_header_parser_reads_what_numpy_reads(names, types, shape, version, mutation):
    """Headers numpy writes parse to numpy's own reading; a changed byte is refused or read as numpy reads it."""
    buffer = io.BytesIO()
    array = np.zeros(shape, dtype=list(zip(names, types)))
    try:
        np.lib.format.write_array(buffer, array, version=version)
    except ValueError:  # names that do not encode in this version's header
        return
    body = buffer.getvalue()
    if mutation is not None:
        header_length = body.index(b"\n") + 1
        position = mutation[0] % header_length
        body = body[:position] + bytes([mutation[1]]) + body[position + 1 :]
    try:
        ours = npy_header(body)
    except CorruptResponseError:
        assert mutation is not None  # everything numpy writes is read
        return
    stream = io.BytesIO(body)
    assert np.lib.format.read_magic(stream) == version
    numpy_shape, fortran_order, numpy_dtype = NUMPY_READ_HEADER(stream, version, max_header_size=2**22)
    assert (ours.shape, ours.dtype, ours.offset, fortran_order) == (numpy_shape, numpy_dtype, stream.tell(), False)


def test_npy_decoding_does_not_parse_with_ast(monkeypatch):
    """The header parser, and np.dtype as it is called, never reach ``ast`` (see the next test for why)."""

    def refuse(*args, **kwargs):
        raise AssertionError("ast used while decoding")

    monkeypatch.setattr(ast, "literal_eval", refuse)
    monkeypatch.setattr(ast, "parse", refuse)
    big_endian = npy_of(structured({"a": A.astype(">u2"), "b": B.astype(">f4")}))
    for body in (NPY, bytearray(NPY), big_endian):
        np.testing.assert_array_equal(decode_npy(body, **EXPECT)["b"], B)
    np.testing.assert_array_equal(read_npy(NPY)["a"], A)
    with pytest.raises(CorruptResponseError):
        decode_npy(NPY.replace(b"'<u2'", b"'u2,u1'"), **EXPECT)  # np.dtype would parse that with ast


class _CyclicGarbage:
    """Unreachable as soon as it is made; the GC pass that frees it runs a Python ``__del__``."""

    def __init__(self):
        self.cycle = self

    def __del__(self):
        pass


@pytest.fixture
def gc_passes_that_switch_threads():
    """A GC pass every few allocations, running Python code, with a thread switch due at every check."""
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(10, 1, 1)
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)


def test_concurrent_npy_decodes_are_pixel_exact(gc_passes_that_switch_threads):
    """Eight threads decoding their own bodies (bytearrays, as the transport reads them) for 2 s.

    The decoder used numpy's header reader, which parses with ``ast.literal_eval``. On CPython
    3.11 before gh-113035 the AST constructor counts recursion in one counter shared by all
    threads: a GC pass inside ``compile`` runs a finalizer, another thread parses meanwhile,
    and a good body fails with ``SystemError: AST constructor recursion depth mismatch``
    (retried as corrupt by the transport; a plain failure for ``np.load`` in threads). This
    test failed within its first second with that decoder; the decoder now parses the header
    itself.
    """
    threads, seconds = 8, 2.0
    bands = [f"B{index:02d}" for index in range(24)]  # a wide header: a long AST build under the old parser
    dtypes = [np.dtype(("uint16", "int32", "float32")[index % 3]) for index in range(len(bands))]

    def expected(thread: int) -> list[np.ndarray]:
        base = np.arange(12 * 16).reshape(12, 16) * (thread + 1)
        return [(base + index).astype(dtype) for index, dtype in enumerate(dtypes)]

    bodies = [bytes(encode_npy(bands, expected(thread))) for thread in range(threads)]
    failures: list[str] = []
    counts = [0] * threads
    deadline = time.monotonic() + seconds

    def decode_until_the_deadline(thread: int) -> None:
        truth = expected(thread)
        while time.monotonic() < deadline and not failures:
            _CyclicGarbage()
            try:
                result = decode_npy(bytearray(bodies[thread]), shape=(12, 16), band_ids=bands, dtypes=dtypes)
            except Exception as error:  # noqa: BLE001 - every failure is reported
                failures.append(f"thread {thread}: {type(error).__name__}: {error}")
                return
            for band, values in zip(bands, truth):
                if result[band].dtype != values.dtype or not np.array_equal(result[band], values):
                    failures.append(f"thread {thread}: band {band} differs")
                    return
            counts[thread] += 1

    workers = [threading.Thread(target=decode_until_the_deadline, args=(thread,)) for thread in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 60)
    assert not any(worker.is_alive() for worker in workers)
    assert failures == []
    assert min(counts) > 0, counts
