"""Grids, images and helpers shared by the server tests."""

from __future__ import annotations

import numpy as np
from affine import Affine

from eexarray.geometry import PixelGrid, Window
from eexarray.server import InMemoryImage, ProceduralImage, procedural_collection

UTM_GRID = PixelGrid("EPSG:32610", Affine(10, 0, 500000, 0, -10, 4200000), 2048, 2048)
BIG_GRID = PixelGrid("EPSG:32610", Affine(10, 0, 0, 0, -10, 10_000_000), 2**20, 2**20)
MASKED_WINDOW = Window(100, 200, 300, 400)


def make_in_memory(asset_id: str = "test/memory") -> InMemoryImage:
    """Two bands of known random data (float32 with a nodata value, and int16)."""
    rng = np.random.default_rng(42)
    grid = PixelGrid("EPSG:32610", Affine(30, 0, 600000, 0, -30, 4100000), 300, 200)
    first = rng.uniform(1, 100, size=grid.shape).astype("float32")
    first[10:20, 30:40] = -9999
    second = rng.integers(1, 30000, size=grid.shape).astype("int16")
    return InMemoryImage(
        asset_id,
        {"temp": first, "count": second},
        grid,
        start_time="2021-06-01T00:00:00Z",
        properties={"kind": "random", "cloud": 12.5},
        nodata={"temp": -9999},
    )


def standard_catalog() -> list:
    return [
        ProceduralImage(
            "test/procedural",
            UTM_GRID,
            dtypes=("uint16", "int8", "float32", "float64"),
            band_ids=("B1", "B2", "B3", "B4"),
            masked=(MASKED_WINDOW,),
            start_time="2020-05-01T00:00:00Z",
            properties={"CLOUD": 3},
        ),
        ProceduralImage("test/huge", BIG_GRID, dtypes=("uint16", "uint16")),
        make_in_memory(),
        procedural_collection("test/coll", UTM_GRID, 6, dtypes=("uint16",), properties={"title": "six days"}),
        ProceduralImage("users/alice/private", UTM_GRID),
    ]


def rest_grid(transform: Affine, width: int, height: int, crs: str = "EPSG:32610") -> dict:
    return PixelGrid(crs, transform, width, height).to_rest()
