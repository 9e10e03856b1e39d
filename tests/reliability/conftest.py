"""Fixtures of the reliability tests: a procedural catalog whose pixels are known, and a fast retry policy."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import requests
from affine import Affine

import eexarray
from eexarray.geometry import PixelGrid
from eexarray.server import ProceduralImage
from eexarray.transport import RetryPolicy, set_default_retry_policy

UTM = "EPSG:32610"
# 4096 x 2048 px x (2 + 2 + 4) bytes = 64 MiB of pixels: "tens of MB" for the fault soak test.
SOAK_GRID = PixelGrid(UTM, Affine(10, 0, 400000, 0, -10, 4600000), 4096, 2048)
SMALL_GRID = PixelGrid(UTM, Affine(10, 0, 500000, 0, -10, 4200000), 256, 128)
SOAK_FAULTS = "429=0.2,503=0.1,reset=0.05,truncate=0.02"
# Fast, yet patient enough that a 37 % fault rate never exhausts it (0.37 ** 12 ~ 7e-6 per request).
FAST_RETRY = RetryPolicy(max_attempts=12, initial_delay=0.005, max_delay=0.05)


def catalog():
    return [
        ProceduralImage("rel/soak", SOAK_GRID, dtypes=("uint16", "int16", "float32"), band_ids=("a", "b", "c")),
        ProceduralImage("rel/small", SMALL_GRID, dtypes=("uint16", "float32"), band_ids=("u", "f")),
    ]


def dataset_hash(ds) -> str:
    """SHA-256 over every variable's bytes, in name order: equal hashes = byte-identical reads."""
    digest = hashlib.sha256()
    for name in sorted(ds.data_vars):
        values = np.ascontiguousarray(ds[name].values)
        digest.update(name.encode() + str(values.dtype).encode() + str(values.shape).encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="package")
def server():
    with eexarray.serve(catalog=catalog()) as running:
        yield running


@pytest.fixture()
def stats(server):
    """Reset the server's counters; the returned function reads them."""
    requests.post(f"{server.url}/_stats/reset", timeout=10).raise_for_status()
    return lambda: requests.get(f"{server.url}/_stats", timeout=10).json()


@pytest.fixture()
def fast_retry():
    """Retries without the production backoff delays, set through the public knob."""
    previous = set_default_retry_policy(FAST_RETRY)
    yield FAST_RETRY
    set_default_retry_policy(previous)
