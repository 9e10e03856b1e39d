"""seed_recipe: eexarray vs the Earth Engine guide's recipe, on the throughput read.

The recipe: the official client (``earthengine-api``), ``ee.data.getPixels`` with
``fileFormat: NPY`` in a ``ThreadPoolExecutor`` of the same concurrency, each patch
decoded with ``np.load`` and written into the output, the client pointed at the local
server the way the tests do (``ee.Initialize(credentials=..., opt_url=server.url)``). It
issues the same windows as eexarray's auto chunks. ``ratio`` = eexarray throughput /
recipe throughput; target >= 1.0.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from benchmarks.common import (
    MIB,
    WARM_FACTOR,
    auto_windows,
    latency_model,
    square_grid,
    start_server,
    summarize,
    timed,
    warm_memory,
)
from benchmarks.throughput import ASSET, BAND_IDS, DTYPES, eexarray_read, sizes
from eexarray.geometry import PixelGrid, Window
from eexarray.server import ProceduralImage
from eexarray.transport.config import DEFAULT_MAX_CONCURRENCY

_ORIGINAL_FETCH: dict[str, Any] = {}


def reset_ee(ee: Any) -> None:
    """Undo ``initialize_ee`` (the process may go on, e.g. under pytest)."""
    ee.Reset()
    if "fetch" in _ORIGINAL_FETCH:
        ee.deprecation._FetchDataCatalogStac = _ORIGINAL_FETCH.pop("fetch")


def initialize_ee(url: str) -> Any:
    import ee
    import google.oauth2.credentials

    # Initialize also fetches a list of deprecated public assets from Google: unreachable here.
    _ORIGINAL_FETCH.setdefault("fetch", ee.deprecation._FetchDataCatalogStac)
    ee.deprecation._FetchDataCatalogStac = dict
    ee.Initialize(credentials=google.oauth2.credentials.Credentials("benchmark"), project="benchmark", opt_url=url)
    return ee


def recipe_read(ee: Any, grid: PixelGrid, windows: list[Window], concurrency: int) -> dict[str, np.ndarray]:
    height = max(w.row_stop for w in windows)
    width = max(w.col_stop for w in windows)
    out = {band: np.empty((height, width), dtype=dtype) for band, dtype in zip(BAND_IDS, DTYPES)}

    def get_patch(window: Window) -> None:
        request = {
            "assetId": ASSET,
            "fileFormat": "NPY",
            "bandIds": list(BAND_IDS),
            "grid": grid.window(window).to_rest(),
        }
        patch = np.load(io.BytesIO(ee.data.getPixels(request)))
        rows, cols = window.slices()
        for band in BAND_IDS:
            out[band][rows, cols] = patch[band]

    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        for future in [executor.submit(get_patch, window) for window in windows]:
            future.result()
    return out


def run(quick: bool) -> dict[str, Any]:
    side, rounds = sizes(quick)
    grid = square_grid(side)
    image = ProceduralImage(ASSET, grid, dtypes=DTYPES, band_ids=BAND_IDS)
    windows = auto_windows(side, side, DTYPES)
    nbytes = side * side * sum(np.dtype(d).itemsize for d in DTYPES)
    warm = WARM_FACTOR * nbytes  # the same start for both clients (common.warm_memory)
    with start_server([image]) as server:
        ee = initialize_ee(server.url)
        try:
            eexarray_read(server.url, 0)
            recipe_read(ee, grid, windows[:1], DEFAULT_MAX_CONCURRENCY)
            eex_seconds, recipe_seconds = [], []
            for round_ in range(rounds):
                seconds, eex_arrays = eexarray_read(server.url, warm)
                eex_seconds.append(seconds)
                warm_memory(warm)
                seconds, recipe_arrays = timed(lambda: recipe_read(ee, grid, windows, DEFAULT_MAX_CONCURRENCY))
                recipe_seconds.append(seconds)
                print(
                    f"round {round_ + 1}: eexarray {eex_seconds[-1]:.2f} s, recipe {recipe_seconds[-1]:.2f} s",
                    flush=True,
                )
            identical = all(np.array_equal(eex_arrays[b], recipe_arrays[b]) for b in BAND_IDS)
        finally:
            reset_ee(ee)
    eex, recipe = summarize(eex_seconds, nbytes), summarize(recipe_seconds, nbytes)
    return {
        "name": "seed_recipe",
        "mib": round(nbytes / MIB, 1),
        "requests": len(windows),
        "concurrency": DEFAULT_MAX_CONCURRENCY,
        "eexarray": eex,
        "recipe": recipe,
        "identical": identical,
        "ratio": round(eex["best_mib_s"] / recipe["best_mib_s"], 3),
        "target": ">= 1.0",
        **latency_model(),
    }
