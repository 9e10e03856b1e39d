"""xee: Xee 0.1.x and eexarray reading the same region of the same collection, same server.

Both read every image of a procedural collection (2 uint16 bands) on its native grid,
with the same latency model: Xee through the official client (``ee.Initialize`` pointed
at the local server; its ``computePixels`` requests in its own thread pool), eexarray
with default settings. ``ratio`` = eexarray throughput / Xee throughput, with both
request counts. Target >= 3. Needs Xee installed and a server that evaluates what Xee
asks for (``computePixels``, ``value:compute``): checked at run time.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import xarray as xr

import eexarray
from benchmarks.common import (
    MIB,
    WARM_FACTOR,
    latency_model,
    pixel_stats,
    reset_stats,
    square_grid,
    start_server,
    summarize,
    timed,
    unavailable,
    warm_memory,
)
from benchmarks.seed_recipe import initialize_ee, reset_ee
from benchmarks.timeseries import server_computes
from eexarray.server import procedural_collection

ASSET = "bench/xee"
BANDS = ("red", "nir")


def xee_read(ee: Any, grid: Any) -> xr.Dataset:
    t = grid.transform
    ds = xr.open_dataset(
        ee.ImageCollection(ASSET),
        engine="ee",
        crs=grid.crs,
        crs_transform=(t.a, t.b, t.c, t.d, t.e, t.f),
        shape_2d=(grid.width, grid.height),
    )
    return ds.load()


def run(quick: bool) -> dict[str, Any]:
    images, side, rounds = (4, 512, 1) if quick else (24, 2048, 2)
    grid = square_grid(side)
    collection = procedural_collection(ASSET, grid, images, dtypes=("uint16", "uint16"), band_ids=BANDS)
    nbytes = images * side * side * 2 * len(BANDS)
    warm = WARM_FACTOR * nbytes  # the same start for both clients (common.warm_memory)
    if importlib.util.find_spec("xee") is None:
        return unavailable("xee", "Xee is not installed (pip install 'xee>=0.1,<0.2')")
    with start_server([collection]) as server:
        if not server_computes(server.url):
            return unavailable("xee", "the local server does not offer computePixels, which Xee reads with")
        ee = initialize_ee(server.url)
        try:
            try:
                xee_read(ee, grid)  # warm-up, and the capability check of the server's expression support
            except Exception as error:  # noqa: BLE001 - any failure means the server cannot serve Xee yet
                return unavailable(
                    "xee", f"Xee cannot read from the local server: {type(error).__name__}: {error}"[:500]
                )
            eex_seconds, xee_seconds, eex_requests, xee_requests = [], [], 0, 0
            for round_ in range(rounds):
                reset_stats(server)
                ds = eexarray.open_dataset(ASSET, endpoint=server.url)
                warm_memory(warm)
                seconds, eex = timed(ds.load)
                eex_seconds.append(seconds)
                stats = pixel_stats(server)
                eex_requests = stats["get_pixels"] + stats["compute_pixels"]
                reset_stats(server)
                warm_memory(warm)
                seconds, xds = timed(lambda: xee_read(ee, grid))
                xee_seconds.append(seconds)
                stats = pixel_stats(server)
                xee_requests = stats["get_pixels"] + stats["compute_pixels"]
                print(f"round {round_ + 1}: eexarray {eex_seconds[-1]:.2f} s, xee {xee_seconds[-1]:.2f} s", flush=True)
            same = bool(
                np.array_equal(
                    np.asarray(eex["red"].values, dtype="float64"),
                    np.asarray(xds["red"].transpose("time", "y", "x").values, dtype="float64"),
                )
            )
        finally:
            reset_ee(ee)
    eex_summary, xee_summary = summarize(eex_seconds, nbytes), summarize(xee_seconds, nbytes)
    import xee as xee_module

    return {
        "name": "xee",
        "xee_version": getattr(xee_module, "__version__", "unknown"),
        "images": images,
        "side_px": side,
        "bands": len(BANDS),
        "mib": round(nbytes / MIB, 1),
        "eexarray": eex_summary,
        "xee": xee_summary,
        "eexarray_requests": eex_requests,
        "xee_requests": xee_requests,
        "same_values": same,
        "ratio": round(eex_summary["best_mib_s"] / xee_summary["best_mib_s"], 3),
        "target": ">= 3",
        **latency_model(),
    }
