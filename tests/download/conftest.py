"""Local servers with procedural assets for the download tests (pixels known by formula)."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pytest
from affine import Affine

import eexarray
from eexarray.geometry import PixelGrid, Window
from eexarray.server.images import ProceduralImage, procedural_collection

UTM = "EPSG:32610"
GRID = PixelGrid(UTM, Affine(10, 0, 500000, 0, -10, 4200000), 700, 500)
SMALL_GRID = PixelGrid(UTM, Affine(10, 0, 600000, 0, -10, 4100000), 400, 300)
SERIES_GRID = PixelGrid(UTM, Affine(20, 0, 500000, 0, -20, 4200000), 300, 200)
# 4 x uint16 x 5000 x 4000 = 160 MB of pixels: the memory test downloads it with a 40 MB limit.
BIG_GRID = PixelGrid(UTM, Affine(10, 0, 400000, 0, -10, 4300000), 5000, 4000)
MASKED = Window(40, 90, 100, 180)
IMAGE_BANDS = ("a", "b", "c", "d")
IMAGE_DTYPES = ("uint8", "int16", "float32", "float64")


def catalog() -> list:
    return [
        ProceduralImage("dl/image", GRID, dtypes=IMAGE_DTYPES, band_ids=IMAGE_BANDS, masked=[MASKED]),
        ProceduralImage("dl/small", SMALL_GRID, dtypes=IMAGE_DTYPES, band_ids=IMAGE_BANDS),
        procedural_collection(
            "dl/series",
            SERIES_GRID,
            4,
            dtypes=("uint16", "int16"),
            band_ids=("red", "nir"),
            start="2021-01-01T00:00:00Z",
            step=dt.timedelta(days=5),
        ),
        ProceduralImage("dl/big", BIG_GRID, dtypes=("uint16",) * 4),
    ]


@pytest.fixture(scope="session")
def server():
    with eexarray.serve(catalog=catalog()) as running:
        yield running


@pytest.fixture(scope="session")
def slow_server():
    """Every request takes 100 ms more: a download lasts long enough to be killed mid-way."""
    with eexarray.serve(catalog=catalog(), latency_ms=100) as running:
        yield running


class Counter:
    """Pixel requests (and all requests) a server answered since the last reset."""

    def __init__(self, server) -> None:
        self.server = server
        self.reset()

    def reset(self) -> None:
        """Zero the counters once requests of earlier (failed) downloads have drained."""
        deadline = time.monotonic() + 30
        while self.server.stats()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # a request a pool thread was still sending
        self.server.reset_stats()

    @property
    def pixels(self) -> int:
        return len(self.server.stats()["pixel_requests"])

    @property
    def requests(self) -> int:
        return sum(self.server.stats()["requests"].values())


@pytest.fixture()
def counter(server):
    return Counter(server)


def reference(server, asset: str, **options) -> dict[str, np.ndarray]:
    """Each band of ``asset`` as ``open_dataset`` reads it (native values), the ground truth."""
    dataset = eexarray.open_dataset(asset, endpoint=server.url, mask_and_scale=False, **options).compute()
    return {name: dataset[name].values for name in dataset.data_vars}
