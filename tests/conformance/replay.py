"""A loopback HTTP server that answers Earth Engine REST requests from recorded responses.

The recordings (``fixtures/*.json``, provenance in ``fixtures/SOURCES.md``) are
"exchanges": a method, a path under ``/v1`` (``/v1alpha`` and ``/v1beta`` are the same
paths), optional query parameters the request must carry with exactly those values,
and the status, headers and JSON body to answer. Nothing else is invented, except:

* pixels. ``getPixels`` and ``computePixels`` answer NPY or GEO_TIFF bodies computed
  from the documented procedural formula (``eexarray.server.procedural_values``) on the
  native grid of each requested band, as recorded in the asset JSON (getAsset or a
  listing entry) or in the getInfo document of ``value:compute``. Band ``b`` is the
  band's position in that recorded band list; ``t`` is the image's position in its
  recorded collection listing (0 for a lone image). The request grid must be a window of
  that native lattice (same CRS and scale, integer offsets); anything else is a 400,
  since a replay cannot resample. Pixels outside the native footprint are 0, as Earth
  Engine encodes missing data.
* query values. A recorded ``null`` means the parameter must be absent (the first page
  of a listing has no ``pageToken``). A recorded ``filter`` matches the one sent up to spacing and parentheses
  enclosing the whole filter (``(a AND b)`` is ``a AND b``).
* a request no recording matches. A known path with other query parameters (a listing
  with a filter nobody recorded) gets the recorded 400 body; any other unknown path gets
  the recorded 404 body.

``arm_next(answer, times)`` queues an answer (e.g. a 429 with ``Retry-After``) for the
next ``times`` requests, whatever they are, before the recordings are consulted.
"""

from __future__ import annotations

import collections
import http.server
import json
import struct
import threading
import time
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.errors import NotGeoreferencedWarning

from eexarray.server import procedural_values

FIXTURES = Path(__file__).parent / "fixtures"
VERSIONS = ("v1", "v1alpha", "v1beta")


def load_fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, status: int, value: Any, headers: dict[str, str] | None = None) -> Answer:
        return cls(status, json.dumps(value).encode(), "application/json", tuple((headers or {}).items()))


@dataclass(frozen=True)
class NativeBand:
    """One band as a recording describes it: where its pixels are and their dtype."""

    index: int
    dtype: str
    crs: str
    transform: tuple[float, float, float, float, float, float]  # scaleX shearX translateX shearY scaleY translateY
    width: int
    height: int
    time_index: int


def dtype_of_data_type(data_type: dict[str, Any]) -> str:
    """A REST ``dataType`` (``precision`` INT/FLOAT/DOUBLE, ``range``) as a numpy dtype name."""
    precision = str(data_type.get("precision", "FLOAT")).upper()
    if precision == "FLOAT":
        return "float32"
    if precision == "DOUBLE":
        return "float64"
    bounds = data_type.get("range", {})
    low, high = float(bounds.get("min", 0)), float(bounds.get("max", 0))
    for name in ("uint8", "int8", "uint16", "int16", "uint32", "int32"):
        info = np.iinfo(name)
        if info.min <= low and high <= info.max:
            return name
    return "int64"


def dtype_of_pixel_type(data_type: dict[str, Any]) -> str:
    """A getInfo ``data_type`` (``PixelType`` with ``precision`` int/float/double) as a dtype name."""
    precision = data_type.get("precision", "float")
    if precision != "int":
        return {"float": "float32", "double": "float64"}[precision]
    return dtype_of_data_type(
        {"precision": "INT", "range": {"min": data_type.get("min", 0), "max": data_type.get("max", 0)}}
    )


def _bands_of_asset(asset: dict[str, Any], time_index: int) -> dict[str, NativeBand]:
    bands = {}
    for index, band in enumerate(asset.get("bands", [])):
        grid = band["grid"]
        affine = grid["affineTransform"]
        transform = tuple(
            float(affine.get(key, 0)) for key in ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")
        )
        bands[band["id"]] = NativeBand(
            index,
            dtype_of_data_type(band["dataType"]),
            grid["crsCode"],
            transform,  # type: ignore[arg-type]
            int(grid["dimensions"]["width"]),
            int(grid["dimensions"]["height"]),
            time_index,
        )
    return bands


def _bands_of_info(info: dict[str, Any]) -> dict[str, NativeBand]:
    return {
        band["id"]: NativeBand(
            index,
            dtype_of_pixel_type(band["data_type"]),
            band["crs"],
            tuple(float(v) for v in band["crs_transform"]),  # type: ignore[arg-type]
            int(band["dimensions"][0]),
            int(band["dimensions"][1]),
            0,
        )
        for index, band in enumerate(info["bands"])
    }


class Recordings:
    """The exchanges of some fixtures, and the native bands they describe."""

    def __init__(self, fixtures: list[dict[str, Any]], errors: dict[str, Any]) -> None:
        self.exchanges = [exchange for fixture in fixtures for exchange in fixture.get("exchanges", [])]
        self.errors = errors
        self.asset_bands: dict[str, dict[str, NativeBand]] = {}
        self.computed_bands: dict[str, dict[str, NativeBand]] = {}  # by the image id the expression loads
        listed: collections.Counter[str] = collections.Counter()
        for fixture in fixtures:
            for exchange in fixture.get("exchanges", []):
                body = exchange.get("body", {})
                path = exchange["path"]
                if path.endswith(":listAssets"):
                    for asset in body.get("assets", []):  # pages in order: t runs on across them
                        self.asset_bands[asset["name"]] = _bands_of_asset(asset, listed[path])
                        listed[path] += 1
                elif body.get("type") == "IMAGE":
                    self.asset_bands[path.removeprefix("/v1/")] = _bands_of_asset(body, 0)
                elif path.endswith("value:compute") and fixture.get("image_id"):
                    self.computed_bands[fixture["image_id"]] = _bands_of_info(body["result"])

    def find(self, method: str, path: str, query: dict[str, str]) -> Answer | None:
        known_path = False
        for exchange in self.exchanges:
            if exchange["method"] != method or exchange["path"] != path:
                continue
            known_path = True
            wanted = exchange.get("query", {})
            if all(_same_value(key, query.get(key), value) for key, value in wanted.items()):
                return Answer.json(exchange["status"], exchange["body"], exchange.get("headers"))
        if known_path:
            return self.error("bad_request")
        return None

    def error(self, kind: str) -> Answer:
        recorded = self.errors[kind]
        return Answer.json(recorded["status"], recorded["body"], recorded.get("headers"))


class ReplayServer:
    """``with ReplayServer(recordings) as replay: replay.url``; ``.requests`` logs what came in."""

    def __init__(self, recordings: Recordings) -> None:
        self.recordings = recordings
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[tuple[str, str, int, bytes]] = []  # (method, path, status, body start) as answered
        self._armed: collections.deque[Answer] = collections.deque()
        self._lock = threading.Lock()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.replay = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def arm_next(self, answer: Answer, times: int = 1) -> None:
        with self._lock:
            self._armed.extend([answer] * times)

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        return [record for record in self.requests if record["path"] == path]

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, method: str, target: str, body: bytes) -> Answer:
        split = urllib.parse.urlsplit(target)
        path = urllib.parse.unquote(split.path)
        query = {key: values[-1] for key, values in urllib.parse.parse_qs(split.query).items()}
        version, _, rest = path.lstrip("/").partition("/")
        if version not in VERSIONS:
            return self.recordings.error("not_found")
        path = "/v1/" + rest
        with self._lock:
            record = {"method": method, "path": path, "version": version, "query": query, "at": time.monotonic()}
            self.requests.append(record)
            if self._armed:
                return self._armed.popleft()
        if method == "POST" and path.endswith(":getPixels"):
            bands = self.recordings.asset_bands.get(path.removeprefix("/v1/").removesuffix(":getPixels"))
            return self._pixels(json.loads(body), bands) if bands else self.recordings.error("not_found")
        if method == "POST" and path.endswith("/image:computePixels"):
            request = json.loads(body)
            expression = json.dumps(request.get("expression", {}))
            for image_id, bands in self.recordings.computed_bands.items():
                if json.dumps(image_id) in expression:
                    return self._pixels(request, bands)
            return self.recordings.error("bad_request")
        found = self.recordings.find(method, path, query)
        if found is not None:
            return found
        if method == "GET" and path == "/v1/" + self.recordings.errors["forbidden"]["asset"]:
            return self.recordings.error("forbidden")
        return self.recordings.error("not_found")

    def _pixels(self, request: dict[str, Any], bands: dict[str, NativeBand]) -> Answer:
        band_ids = request.get("bandIds") or list(bands)
        grid = request["grid"]
        affine = grid["affineTransform"]
        width, height = int(grid["dimensions"]["width"]), int(grid["dimensions"]["height"])
        values = {}
        for band_id in band_ids:
            native = bands.get(band_id)
            if native is None:
                return self.recordings.error("bad_request")
            window = _window_of(native, grid.get("crsCode", native.crs), affine)
            if window is None:
                return self.recordings.error("bad_request")
            row0, col0 = window
            rows = np.arange(row0, row0 + height)[:, None]
            cols = np.arange(col0, col0 + width)[None, :]
            pixels = procedural_values(native.index, rows, cols, native.time_index, native.dtype)
            pixels = np.broadcast_to(pixels, (height, width)).copy()
            outside = (rows < 0) | (rows >= native.height) | (cols < 0) | (cols >= native.width)
            pixels[np.broadcast_to(outside, (height, width))] = 0  # missing data is encoded as 0
            values[band_id] = pixels
        if request.get("fileFormat") == "NPY":
            return Answer(200, _npy(values), "application/octet-stream")
        if request.get("fileFormat") == "GEO_TIFF":
            return Answer(200, _geotiff(values), "image/tiff")
        return self.recordings.error("bad_request")


def _same_value(key: str, sent: str | None, recorded: str | None) -> bool:
    """A query value as recorded (None: must be absent); a ``filter`` may differ in spacing and
    enclosing parentheses."""
    if sent is None or recorded is None:
        return sent is recorded
    if key != "filter":
        return sent == recorded
    return _bare_filter(sent) == _bare_filter(recorded)


def _bare_filter(text: str) -> str:
    """An AIP-160 filter without outer parentheses enclosing all of it, spaces collapsed."""
    text = " ".join(text.split())
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for position, char in enumerate(text):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and position < len(text) - 1:
                return text  # the first "(" closes before the end: not one enclosing pair
        text = text[1:-1].strip()
    return text


def _window_of(native: NativeBand, crs: str, affine: dict[str, Any]) -> tuple[int, int] | None:
    """(row, col) of the request grid's origin on the native lattice, or None when not a window of it."""
    scale_x, shear_x, translate_x, shear_y, scale_y, translate_y = native.transform
    asked = [float(affine.get(key, 0)) for key in ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")]
    if crs != native.crs or shear_x or shear_y or asked[1] or asked[3]:
        return None
    if asked[0] != scale_x or asked[4] != scale_y:
        return None
    col = (asked[2] - translate_x) / scale_x
    row = (asked[5] - translate_y) / scale_y
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(row), round(col)


def _npy(values: dict[str, np.ndarray]) -> bytes:
    """An NPY body byte for byte as GDAL's EEDAI autotest builds its recorded answer: magic,
    version 1.0, the header length, and the header dict written as
    ``{'descr': [('B1', '<u2'), ...], 'fortran_order': False, 'shape': (h, w), }`` with no
    padding and no closing newline (numpy's own writer pads to 64 bytes and ends with one)."""
    first = next(iter(values.values()))
    descr = ", ".join(f"({band_id!r}, {pixels.dtype.str!r})" for band_id, pixels in values.items())
    header = f"{{'descr': [{descr}], 'fortran_order': False, 'shape': {first.shape}, }}".encode("latin-1")
    array = np.zeros(
        first.shape, dtype=[(band_id, pixels.dtype.newbyteorder("<")) for band_id, pixels in values.items()]
    )
    for band_id, pixels in values.items():
        array[band_id] = pixels
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + array.tobytes()


def _geotiff(values: dict[str, np.ndarray]) -> bytes:
    """A GeoTIFF shaped like the one GDAL's EEDAI autotest answers getPixels with (a plain
    GTiff copy of an in-memory dataset): one dtype for all bands, no band descriptions and
    no georeferencing. A client must take the bands in request order and the grid it asked for."""
    from rasterio.io import MemoryFile

    dtype = np.result_type(*values.values())
    first = next(iter(values.values()))
    profile = {
        "driver": "GTiff",
        "width": first.shape[1],
        "height": first.shape[0],
        "count": len(values),
        "dtype": dtype,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile() as memory:
            with memory.open(**profile) as dataset:
                for number, pixels in enumerate(values.values(), start=1):
                    dataset.write(pixels.astype(dtype), number)
            return bytes(memory.read())


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        replay = self.server.replay  # type: ignore[attr-defined]
        answer = replay.answer(self.command, self.path, body)
        replay.statuses.append((self.command, urllib.parse.urlsplit(self.path).path, answer.status, body[:2000]))
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST = _serve
