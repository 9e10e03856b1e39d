"""open_time: time, memory and dask graph size to open images of 1e3 .. 1e6 px a side.

Opening must be flat in the asset's size: the graph is generated lazily (one
``BandLayer`` per band, no task materialised), so a 1e6 x 1e6 image (1e12 px, ~180,000
chunks per band) opens as fast as a small one. Figures per size: best wall time of the
open (including its metadata requests, each charged the latency model), Python memory
allocated during the open (tracemalloc peak), the number of tasks the graph would hold and
how many are materialised, and the time of a first small compute (a 256 x 256 window),
which shows the graph is not walked as a whole. Target: under 1 s at 1e6, flat in size.
"""

from __future__ import annotations

import math
import time
import tracemalloc
from typing import Any

import eexarray
from benchmarks.common import latency_model, pixel_stats, reset_stats, square_grid, start_server
from eexarray.server import ProceduralImage

DTYPES = ("uint16",) * 4


def graph_figures(ds: Any) -> dict[str, int]:
    graph = ds["B1"].data.__dask_graph__()
    layers = getattr(graph, "layers", None)  # a plain dict under dask's array query planning
    materialised = (
        sum(len(layer) for layer in layers.values() if layer.is_materialized()) if layers is not None else len(graph)
    )
    return {
        "tasks_per_band": len(graph),
        "materialised_tasks": materialised,
        "chunks_per_band": math.prod(len(chunks) for chunks in ds["B1"].data.chunks),
    }


def run(quick: bool) -> dict[str, Any]:
    sides = [1_000, 1_000_000] if quick else [1_000, 10_000, 100_000, 1_000_000]
    repeats = 1 if quick else 3
    catalog = [ProceduralImage(f"bench/open{side}", square_grid(side, scale=1.0), dtypes=DTYPES) for side in sides]
    rows = []
    with start_server(catalog) as server:
        eexarray.open_dataset(f"bench/open{sides[0]}", endpoint=server.url)  # warm up imports and connections
        for side in sides:
            asset = f"bench/open{side}"
            seconds = []
            for _ in range(repeats):
                reset_stats(server)
                start = time.perf_counter()
                ds = eexarray.open_dataset(asset, endpoint=server.url)
                seconds.append(time.perf_counter() - start)
            requests = sum(pixel_stats(server)["requests"].values())
            tracemalloc.start()
            eexarray.open_dataset(asset, endpoint=server.url)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            start = time.perf_counter()
            ds.isel(x=slice(0, 256), y=slice(0, 256)).compute()
            window_seconds = time.perf_counter() - start
            row = {
                "side_px": side,
                "open_seconds": round(min(seconds), 3),
                "open_requests": requests,
                "open_alloc_mib": round(peak / 2**20, 2),
                **graph_figures(ds),
                "window_compute_seconds": round(window_seconds, 3),
            }
            print(row, flush=True)
            rows.append(row)
    largest = rows[-1]
    return {
        "name": "open_time",
        "sizes": rows,
        "open_seconds_at_largest": largest["open_seconds"],
        "ratio": round(largest["open_seconds"] / rows[0]["open_seconds"], 3),
        "ratio_means": f"open time at {sides[-1]:.0e} px a side / at {sides[0]:.0e}",
        "target": "< 1 s at 1e6 px a side, flat in size",
        **latency_model(),
    }
