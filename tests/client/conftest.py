"""A module-wide local server with procedural and in-memory assets whose pixels are known."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import requests
from affine import Affine

import eexarray
from eexarray.geometry import PixelGrid, Window
from eexarray.server.images import InMemoryImage, ProceduralImage, procedural_collection

UTM = "EPSG:32610"
# A 2**20 px square procedural image: nothing is stored, windows are computed on demand.
HUGE = PixelGrid(UTM, Affine(10, 0, 400000, 0, -10, 4600000), 2**20, 2**20)
SMALL = PixelGrid(UTM, Affine(10, 0, 500000, 0, -10, 4200000), 600, 400)
MIXED_DTYPES = ("uint8", "int16", "float32", "float64")


def catalog():
    coarse = PixelGrid(UTM, Affine(20, 0, 500000, 0, -20, 4200000), 300, 200)
    rng = np.random.default_rng(0)
    return [
        ProceduralImage("test/huge", HUGE, dtypes=("uint16",) * 4),
        ProceduralImage("test/mixed", SMALL, dtypes=MIXED_DTYPES, band_ids=("u8", "i16", "f32", "f64")),
        ProceduralImage("test/masked", SMALL, dtypes=("uint16",), masked=[Window(10, 20, 30, 50)]),
        ProceduralImage(
            "test/multigrid", SMALL, dtypes=("uint16", "uint16"), band_ids=("fine", "coarse"), grids={"coarse": coarse}
        ),
        InMemoryImage(
            "test/memory",
            {"a": rng.integers(0, 1000, SMALL.shape, dtype="int16"), "b": rng.random(SMALL.shape, dtype="float32")},
            SMALL,
            start_time=dt.datetime(2021, 5, 1, tzinfo=dt.timezone.utc),
            properties={"CLOUD": 3.5, "NAME": "memory"},
            nodata={"a": -1},
        ),
        procedural_collection(
            "test/long",
            SMALL,
            500,
            dtypes=("uint16", "int16"),
            band_ids=("red", "nir"),
            start="2000-01-01T00:00:00Z",
            step=dt.timedelta(days=8),
        ),
        procedural_collection(
            "test/series",
            SMALL,
            30,
            dtypes=("uint16", "uint16"),
            band_ids=("red", "nir"),
            start="2020-01-01T00:00:00Z",
            step=dt.timedelta(days=10),
        ),
    ]


@pytest.fixture(scope="session")
def server():
    with eexarray.serve(catalog=catalog()) as running:
        yield running


@pytest.fixture()
def stats(server):
    """Reset the server's counters; call the returned function to read them."""
    requests.post(f"{server.url}/_stats/reset", timeout=10).raise_for_status()

    def read():
        return requests.get(f"{server.url}/_stats", timeout=10).json()

    return read


def bands_fetched(needed: list[str], dataset_bands: list[str], masks: bool = False) -> list[str]:
    """The bands a compute of ``needed`` fetches: only those with dask's classic graphs; every
    band of the Dataset under array query planning (narrowing.py's documented fallback).
    ``masks``: followed by their mask bands (``mask_and_scale=True``, the default)."""
    import dask.array as da

    bands = list(dataset_bands) if da.array_expr_enabled() else list(needed)
    return with_masks(bands) if masks else bands


def with_masks(bands: list[str]) -> list[str]:
    """The band ids of a request with exact masks: the bands, then one mask band per 8 bands."""
    from eexarray.planning.expressions import mask_band_names

    return [*bands, *mask_band_names(bands)]
