"""memory: peak RSS while reducing (``ds.mean().compute()``) or downloading to Zarr a region
several times larger than the memory the client may hold.

What the client may hold: ``max_concurrency`` requests in flight (set to 4 here, so the
regions stay quick to serve), each one auto chunk of 4 uint16 bands (~44 MB decoded):
``in_flight_mib``. Each measurement runs in a fresh process (peak RSS is per process) and
reports the peak RSS above the process's baseline for regions of 1x and 4x (quick: 1x, 2x)
that budget (quick: one region of 0.25x). Target: the peak is bounded by the requests in flight (about the same for
both regions), not by the region's size.
"""

from __future__ import annotations

import math
import multiprocessing
import tempfile
from typing import Any

import numpy as np

from benchmarks.common import MIB, PeakRss, latency_model, square_grid, start_server, timed
from eexarray.planning import auto_tile_shape
from eexarray.server import ProceduralImage

DTYPES = ("uint16",) * 4
MAX_CONCURRENCY = 4


def in_flight_bytes() -> int:
    rows, cols = auto_tile_shape(32768, 32768, DTYPES)
    return MAX_CONCURRENCY * rows * cols * sum(np.dtype(d).itemsize for d in DTYPES)


def side_for(factor: float) -> int:
    """Side of a square region whose decoded size is ``factor`` x the in-flight budget."""
    return math.ceil(math.sqrt(factor * in_flight_bytes() / sum(np.dtype(d).itemsize for d in DTYPES)))


def download_function() -> Any:
    import eexarray

    return getattr(eexarray, "download", None)


def _measure(url: str, asset: str, variant: str, queue: Any) -> None:
    """In a fresh process: open, then reduce or download, sampling RSS."""
    import eexarray

    # Native values, as the figures in docs/performance.md were measured
    ds = eexarray.open_dataset(asset, endpoint=url, max_concurrency=MAX_CONCURRENCY, mask_and_scale=False)
    nbytes = sum(v.nbytes for v in ds.data_vars.values())
    sampler = PeakRss().start()
    if variant == "reduce":
        seconds, _ = timed(lambda: ds.mean().compute())
    else:
        with tempfile.TemporaryDirectory() as directory:
            target = f"{directory}/out.zarr"
            seconds, _ = timed(
                lambda: eexarray.download(
                    asset, target, format="ZARR", endpoint=url, max_concurrency=MAX_CONCURRENCY, progress=False
                )
            )
    peak = sampler.stop()
    queue.put(
        {"region_mib": round(nbytes / MIB, 1), "peak_rss_mib": round(peak / MIB, 1), "seconds": round(seconds, 2)}
    )


def measure(url: str, asset: str, variant: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_measure, args=(url, asset, variant, queue))
    process.start()
    try:
        result = queue.get(timeout=900)
    finally:
        process.join(timeout=60)
    return result


def run(quick: bool) -> dict[str, Any]:
    # 1x: the whole region fits the requests in flight; 4x and 16x: it does not. Bounded memory
    # means the peak stops growing once the region outgrows the in-flight budget (growing with
    # the region would make the 16x peak about 4 times the 4x one).
    factors = [0.25] if quick else [1.0, 4.0, 16.0]
    catalog = [
        ProceduralImage(f"bench/memory{i}", square_grid(side_for(f)), dtypes=DTYPES) for i, f in enumerate(factors)
    ]
    variants = ["reduce"] + (["zarr"] if download_function() is not None else [])
    results: dict[str, Any] = {}
    with start_server(catalog) as server:
        for variant in variants:
            rows = []
            for index, factor in enumerate(factors):
                row = {"region_factor": factor, **measure(server.url, f"bench/memory{index}", variant)}
                print(variant, row, flush=True)
                rows.append(row)
            results[variant] = rows
    budget = in_flight_bytes() / MIB
    largest = results["reduce"][-1]
    out: dict[str, Any] = {
        "name": "memory",
        "max_concurrency": MAX_CONCURRENCY,
        "in_flight_mib": round(budget, 1),
        **results,
        "peak_over_in_flight": round(largest["peak_rss_mib"] / budget, 2),
        "ratio": round(largest["peak_rss_mib"] / results["reduce"][-2 if len(factors) > 1 else 0]["peak_rss_mib"], 2),
        "ratio_means": (
            f"reduce: peak RSS at {factors[-1]}x / at {factors[-2] if len(factors) > 1 else factors[0]}x "
            "the in-flight budget (1.0 = flat = bounded)"
        ),
        "target": "peak bounded by requests in flight, not by region size",
        **latency_model(),
    }
    if "zarr" not in results:
        out["zarr"] = {"status": "unavailable", "reason": "eexarray.download does not exist yet"}
    return out
