"""request_efficiency: how full each request is, and how many requests selections cost.

1. Per dtype (4 bands of uint8, int16, int32, float32, float64, and a mixed set), on a
   large region (32768 px a side): the byte cost of each auto-chunk request (width x
   height x (bands' bytes + 1 mask byte)) over the 50,331,648-byte budget, as the server
   saw it for the first chunk, and averaged over every chunk of the region (edge chunks
   are what is left over). Target >= 0.9 on the first chunk of a large region.
2. Request counts and bytes for selections of an 8192 px, 4-band uint16 image:
   ``isel`` windows inside one chunk and across chunk corners, a band subset, and the same
   window with ``chunks=None`` (lazily indexed, no dask).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import eexarray
from benchmarks.common import latency_model, pixel_stats, reset_stats, square_grid, start_server
from eexarray.planning import DEFAULT_LIMITS
from eexarray.server import ProceduralImage

BUDGET = DEFAULT_LIMITS.max_bytes
DTYPE_SETS = {
    "uint8": ("uint8",) * 4,
    "int16": ("int16",) * 4,
    "int32": ("int32",) * 4,
    "float32": ("float32",) * 4,
    "float64": ("float64",) * 4,
    "mixed": ("uint8", "int16", "float32", "float64"),
}
LARGE_SIDE = 32768
SELECTION_SIDE = 8192


def request_cost(record: dict[str, Any], dtypes_by_band: dict[str, str]) -> int:
    bands = record["bandIds"]
    return record["width"] * record["height"] * (sum(np.dtype(dtypes_by_band[b]).itemsize for b in bands) + 1)


def planned_mean_efficiency(ds: Any, dtypes: tuple[str, ...]) -> float:
    """Mean over every auto chunk of the region of its request's share of the budget."""
    chunks = ds["B1"].chunks
    per_pixel = DEFAULT_LIMITS.bytes_per_pixel(dtypes)
    costs = [rows * cols * per_pixel for rows in chunks[0] for cols in chunks[1]]
    return sum(costs) / len(costs) / BUDGET


def dtype_efficiency(server: Any, name: str, dtypes: tuple[str, ...]) -> dict[str, Any]:
    # Native values: the getPixels reads this benchmark compares
    ds = eexarray.open_dataset(f"bench/eff_{name}", endpoint=server.url, mask_and_scale=False)
    rows, cols = ds["B1"].chunks[0][0], ds["B1"].chunks[1][0]
    reset_stats(server)
    ds.isel(y=slice(0, rows), x=slice(0, cols)).compute()  # exactly the first chunk
    stats = pixel_stats(server)
    by_band = dict(zip(ds.data_vars, dtypes))
    costs = [request_cost(record, by_band) for record in stats["pixel_requests"]]
    return {
        "dtypes": name,
        "chunk": [rows, cols],
        "requests": stats["get_pixels"],
        "first_chunk_efficiency": round(max(costs) / BUDGET, 4),
        "region_mean_efficiency": round(planned_mean_efficiency(ds, dtypes), 4),
    }


def count(server: Any, compute: Any) -> dict[str, Any]:
    reset_stats(server)
    result = compute()
    stats = pixel_stats(server)
    needed = sum(int(np.asarray(v).nbytes) for v in result.data_vars.values())
    return {
        "requests": stats["get_pixels"],
        "bands_per_request": sorted({len(r["bandIds"]) for r in stats["pixel_requests"]}),
        "mib_fetched": round(stats["pixels_bytes"] / 2**20, 2),
        "mib_needed": round(needed / 2**20, 2),
    }


def selection_counts(server: Any) -> dict[str, Any]:
    asset = "bench/eff_select"
    ds = eexarray.open_dataset(asset, endpoint=server.url, mask_and_scale=False)
    rows, cols = ds["B1"].chunks[0][0], ds["B1"].chunks[1][0]
    inside = {"y": slice(100, 612), "x": slice(100, 612)}
    corner = {"y": slice(rows - 256, rows + 256), "x": slice(cols - 256, cols + 256)}
    lazy = eexarray.open_dataset(asset, endpoint=server.url, chunks=None, mask_and_scale=False)
    return {
        "auto_chunk": [rows, cols],
        "chunks_in_region": math.prod(len(chunks) for chunks in ds["B1"].data.chunks),
        "isel_512_inside_one_chunk": count(server, lambda: ds.isel(**inside).compute()),
        "isel_512_across_4_chunks": count(server, lambda: ds.isel(**corner).compute()),
        "one_band_of_4_whole_region": count(server, lambda: ds[["B1"]].compute()),
        "two_bands_of_4_whole_region": count(server, lambda: ds[["B2", "B3"]].compute()),
        "lazy_isel_512_across_4_chunks": count(server, lambda: lazy.isel(**corner).load()),
    }


def run(quick: bool) -> dict[str, Any]:
    names = ["mixed"] if quick else list(DTYPE_SETS)
    catalog = [ProceduralImage(f"bench/eff_{name}", square_grid(LARGE_SIDE), dtypes=DTYPE_SETS[name]) for name in names]
    side = 2048 if quick else SELECTION_SIDE
    catalog.append(ProceduralImage("bench/eff_select", square_grid(side), dtypes=("uint16",) * 4))
    with start_server(catalog) as server:
        per_dtype = []
        for name in names:
            row = dtype_efficiency(server, name, DTYPE_SETS[name])
            print(row, flush=True)
            per_dtype.append(row)
        selections = selection_counts(server)
        print(selections, flush=True)
    worst = min(row["first_chunk_efficiency"] for row in per_dtype)
    return {
        "name": "request_efficiency",
        "budget_bytes": BUDGET,
        "per_dtype": per_dtype,
        "min_efficiency": worst,
        "selection_side_px": side,
        "selections": selections,
        "target": ">= 0.9 of the budget per request on large regions",
        **latency_model(),
    }
