"""What the benchmarks share: the latency model, servers, a bare reference client, timing, RSS.

The latency model charges every request ``LATENCY_MS`` plus ``LATENCY_MS_PER_MB`` per
1,000,000 response bytes (the server sleeps that long in the request's own thread), so a
client wins by keeping requests in flight, and huge requests are not free.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import requests
from affine import Affine

from eexarray.geometry import PixelGrid, Window
from eexarray.geometry.window import tile_window
from eexarray.planning import auto_tile_shape
from eexarray.transport.decode import read_npy

LATENCY_MS = 100.0
LATENCY_MS_PER_MB = 4.0
MIB = 2**20
UTM = "EPSG:32610"
PUBLIC_PREFIX = "projects/earthengine-public/assets/"


def latency_model(latency_ms: float = LATENCY_MS, latency_ms_per_mb: float = LATENCY_MS_PER_MB) -> dict[str, float]:
    return {"latency_ms_per_request": latency_ms, "latency_ms_per_mb": latency_ms_per_mb}


def square_grid(side: int, scale: float = 10.0, *, width: int | None = None) -> PixelGrid:
    """A north-up UTM grid of ``side`` rows (and ``width`` or ``side`` columns)."""
    return PixelGrid(UTM, Affine(scale, 0, 400000, 0, -scale, 4600000), width or side, side)


def start_server(
    catalog: Sequence[Any],
    *,
    latency_ms: float = LATENCY_MS,
    latency_ms_per_mb: float = LATENCY_MS_PER_MB,
    **knobs: Any,
):
    """A local server in its own process (the client keeps its GIL to itself)."""
    import eexarray

    return eexarray.serve(
        catalog=list(catalog), process=True, latency_ms=latency_ms, latency_ms_per_mb=latency_ms_per_mb, **knobs
    )


def reset_stats(server: Any) -> None:
    server.reset_stats()


def pixel_stats(server: Any) -> dict[str, Any]:
    stats = server.stats()
    return {
        "requests": dict(stats["requests"]),
        "get_pixels": stats["requests"].get("getPixels", 0),
        "compute_pixels": stats["requests"].get("computePixels", 0),
        "pixels_bytes": stats["pixels_bytes"],
        "max_in_flight": stats["max_in_flight"],
        "pixel_requests": stats["pixel_requests"],
    }


def auto_windows(height: int, width: int, dtypes: Sequence[str]) -> list[Window]:
    """The windows eexarray's auto chunks make of a ``height`` x ``width`` region: the same requests."""
    rows, cols = auto_tile_shape(height, width, dtypes)
    return list(tile_window(Window(0, height, 0, width), rows, cols))


@dataclass
class BareClient:
    """The reference: ``requests`` + numpy in a thread pool, one getPixels per window, nothing else."""

    url: str
    asset: str
    grid: PixelGrid
    band_ids: Sequence[str]
    dtypes: Sequence[str]
    concurrency: int

    def read(self, windows: Sequence[Window]) -> dict[str, np.ndarray]:
        height = max(w.row_stop for w in windows)
        width = max(w.col_stop for w in windows)
        out = {band: np.empty((height, width), dtype=dtype) for band, dtype in zip(self.band_ids, self.dtypes)}
        local = threading.local()
        endpoint = f"{self.url}/v1/{PUBLIC_PREFIX}{self.asset}:getPixels"

        def fetch(window: Window) -> None:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            body = {"fileFormat": "NPY", "grid": self.grid.window(window).to_rest(), "bandIds": list(self.band_ids)}
            response = session.post(endpoint, json=body, timeout=300)
            response.raise_for_status()
            array = read_npy(response.content)  # no ast: CPython 3.11.7 AST race (decode.py)
            rows, cols = window.slices()
            for band in self.band_ids:
                out[band][rows, cols] = array[band]

        with ThreadPoolExecutor(self.concurrency) as pool:
            for future in [pool.submit(fetch, window) for window in windows]:
                future.result()
        return out


@dataclass
class TransportLimitClient:
    """The transport limit: the same getPixels bodies as :class:`BareClient`, the same thread pool,
    and each response only read into one buffer of its ``Content-Length`` (no decoding, no copy)."""

    url: str
    asset: str
    grid: PixelGrid
    band_ids: Sequence[str]
    concurrency: int

    def read(self, windows: Sequence[Window]) -> int:
        """Fetch every window; returns the response bytes read."""
        endpoint = f"{self.url}/v1/{PUBLIC_PREFIX}{self.asset}:getPixels"
        bodies = [
            {"fileFormat": "NPY", "grid": self.grid.window(window).to_rest(), "bandIds": list(self.band_ids)}
            for window in windows
        ]
        return ReplayLimitClient([(endpoint, json.dumps(body).encode()) for body in bodies], self.concurrency).read()


@dataclass
class ReplayLimitClient:
    """The transport limit of any read: the exact (URL, body) requests a client made, posted
    again from the same number of threads, each response only read into one buffer."""

    requests: Sequence[tuple[str, bytes]]
    concurrency: int

    def read(self) -> int:
        local = threading.local()

        def fetch(request: tuple[str, bytes]) -> int:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            url, body = request
            headers = {"Content-Type": "application/json"}
            with session.post(url, data=body, headers=headers, timeout=300, stream=True) as response:
                response.raise_for_status()
                size = int(response.headers["Content-Length"])
                buffer = memoryview(bytearray(size))
                filled = 0
                while filled < size:
                    count = response.raw.readinto(buffer[filled:])
                    if not count:
                        raise OSError(f"body cut short: {filled} of {size} bytes")
                    filled += count
            return filled

        with ThreadPoolExecutor(self.concurrency) as pool:
            return sum(future.result() for future in [pool.submit(fetch, r) for r in self.requests])


def recorded_pixel_requests(function: Callable[[], Any]) -> tuple[Any, list[tuple[str, bytes]]]:
    """Run ``function`` and return its value and the (URL, JSON body) of every pixel request it
    posted through eexarray's transport (to replay them as the transport limit)."""
    from eexarray.transport.http import RestClient

    recorded: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    original = RestClient.post_bytes

    def recording(self: Any, path: str, body: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        with lock:
            recorded.append((self.config.url(path), json.dumps(body).encode()))
        return original(self, path, body, *args, **kwargs)

    RestClient.post_bytes = recording  # type: ignore[method-assign]
    try:
        value = function()
    finally:
        RestClient.post_bytes = original  # type: ignore[method-assign]
    return value, recorded


# warm_memory's amount, in multiples of a benchmark's output bytes: enough for the largest
# client run (the default read: responses, float32 blocks and dask's float32 assembly, ~5x).
WARM_FACTOR = 6


def warm_memory(nbytes: int) -> None:
    """Touch and free ``nbytes``, so that the run that follows finds that much recently used memory.

    This VM's balloon driver hands memory freed more than about 2 s earlier back to the
    host (free page reporting), and touching it again costs about 15x touching memory freed
    just before (512 MiB: 1.27 s after 8 s, 0.08 s at once). Runs that follow a run freeing
    a lot would otherwise get cheap memory and runs after a pause expensive memory: the
    order of the clients, not the clients, would set the ratio. Calling this before every
    timed run gives each client the same start, and the figures are those of a machine
    whose memory is not reclaimed by a hypervisor (most machines).
    """
    if nbytes > 0:
        np.ones(nbytes, dtype=np.uint8)


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def summarize(seconds: Sequence[float], nbytes: int) -> dict[str, Any]:
    """Best and median of repeated runs, in MiB/s (best is the least disturbed by a shared machine)."""
    return {
        "seconds": [round(s, 3) for s in seconds],
        "best_mib_s": round(nbytes / MIB / min(seconds), 1),
        "median_mib_s": round(nbytes / MIB / statistics.median(seconds), 1),
    }


class PeakRss:
    """Samples this process's RSS every few ms (psutil) between ``start()`` and ``stop()``."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._process = psutil.Process()
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def rss(self) -> int:
        return int(self._process.memory_info().rss)

    def start(self) -> PeakRss:
        self.baseline = self.peak = self.rss()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.rss())

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.rss())
        return self.peak - self.baseline


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The machine and versions the figures were measured on."""
    import dask
    import xarray

    import eexarray

    memory = None
    try:
        import psutil

        memory = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "eexarray": eexarray.__version__,
        "numpy": np.__version__,
        "dask": dask.__version__,
        "xarray": xarray.__version__,
        "requests": requests.__version__,
    }


def unavailable(name: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "status": "unavailable", "reason": reason, **extra, **latency_model()}
