"""Fault soak and load: ``python -m benchmarks soak`` (``--quick`` for a small run).

* **Fault soak**: a 512 MiB read (8192 x 8192 px, bands uint16 + int16 + float32) of a
  procedural image through a local server injecting ``429=0.2,503=0.1,reset=0.05,
  truncate=0.02`` must hash identically to the same read from a clean server. Reports
  the retries made, the faults injected and the time relative to the clean read. The
  client uses its production retry policy.
* **Load**: 64 client threads x 2,000 requests (getAsset, every fourth a small getPixels
  checked against the formula) against one server: errors must be 0.

``run(quick=False) -> dict`` starts its own servers and prints nothing.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import requests
from affine import Affine

import eexarray
from eexarray.geometry import PixelGrid
from eexarray.server import ProceduralImage, procedural_values
from eexarray.transport.decode import read_npy

FAULTS = "429=0.2,503=0.1,reset=0.05,truncate=0.02"
DTYPES = ("uint16", "int16", "float32")  # 8 bytes per pixel
CHUNKS = {"y": 512, "x": 1024}  # 4 MiB per getPixels: 128 requests for 512 MiB
PIXELS_BODY = {"fileFormat": "NPY", "bandIds": ["a"], "grid": {"dimensions": {"width": 4, "height": 4}}}


def _image(side_rows: int, side_cols: int) -> ProceduralImage:
    grid = PixelGrid("EPSG:32610", Affine(10, 0, 400000, 0, -10, 4600000), side_cols, side_rows)
    return ProceduralImage("soak/image", grid, dtypes=DTYPES, band_ids=("a", "b", "c"))


def _timed_hash(url: str) -> tuple[str, float, int, dict[str, int]]:
    """SHA-256 of every band's bytes (one band in memory at a time), seconds, bytes, transport counters."""
    before = eexarray.transport_stats()
    start = time.perf_counter()
    # Native values: the getPixels reads this benchmark compares
    ds = eexarray.open_dataset("soak/image", endpoint=url, chunks=CHUNKS, mask_and_scale=False)
    digest, nbytes = hashlib.sha256(), 0
    for name in sorted(ds.data_vars):
        values = np.ascontiguousarray(ds[name].values)
        digest.update(values.tobytes())
        nbytes += values.nbytes
        del values
    seconds = time.perf_counter() - start
    after = eexarray.transport_stats()
    return digest.hexdigest(), seconds, nbytes, {key: after[key] - before[key] for key in after}


def fault_soak(quick: bool = False, seed: int = 2024) -> dict[str, Any]:
    image = _image(2048, 4096) if quick else _image(8192, 8192)
    with eexarray.serve(catalog=[image]) as clean:
        clean_hash, clean_seconds, nbytes, clean_counts = _timed_hash(clean.url)
    with eexarray.serve(catalog=[image], faults=FAULTS, seed=seed) as faulty:
        faulty_hash, faulty_seconds, _, faulty_counts = _timed_hash(faulty.url)
        served = faulty.stats()
    return {
        "identical": clean_hash == faulty_hash,
        "sha256": faulty_hash,
        "mib": round(nbytes / 2**20, 1),
        "faults_setting": FAULTS,
        "faults_injected": served["faults"],
        "retries": faulty_counts["retries"],
        "requests_clean": clean_counts["requests"],
        "requests_faulty": faulty_counts["requests"],
        "clean_seconds": round(clean_seconds, 2),
        "faulty_seconds": round(faulty_seconds, 2),
        "relative_time": round(faulty_seconds / clean_seconds, 2),
    }


def load(quick: bool = False, threads: int = 64) -> dict[str, Any]:
    per_thread = 100 if quick else 2000
    image = _image(256, 256)
    truth = procedural_values(0, np.arange(4)[:, None], np.arange(4)[None, :], 0, "uint16")
    with eexarray.serve(catalog=[image]) as server:
        base = f"{server.url}/v1/projects/earthengine-public/assets/soak/image"
        barrier = threading.Barrier(threads)

        def client(_: int) -> int:
            session, errors = requests.Session(), 0
            barrier.wait()
            for number in range(per_thread):
                try:
                    if number % 4 == 3:
                        response = session.post(f"{base}:getPixels", json=PIXELS_BODY, timeout=120)
                        pixels = (
                            read_npy(response.content)["a"] if response.status_code == 200 else None
                        )  # no ast (decode.py)
                        ok = pixels is not None and np.array_equal(pixels, truth)
                    else:
                        response = session.get(base, timeout=120)
                        ok = response.status_code == 200 and response.json()["type"] == "IMAGE"
                except requests.RequestException:
                    ok = False
                errors += not ok
            return errors

        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            errors = sum(pool.map(client, range(threads)))
        seconds = time.perf_counter() - start
        served = server.stats()
    total = threads * per_thread
    return {
        "threads": threads,
        "requests_per_thread": per_thread,
        "requests": total,
        "errors": errors,
        "server_statuses": served["statuses"],
        "server_max_in_flight": served["max_in_flight"],
        "seconds": round(seconds, 2),
        "requests_per_second": round(total / seconds),
    }


def run(quick: bool = False) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # chunk-alignment advice from xarray: not a result
        soak = fault_soak(quick)
        return {**soak, "load": load(quick), "quick": quick}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv[1:])))
