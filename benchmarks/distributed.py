"""distributed: the throughput read on a 2-worker ``LocalCluster(processes=True)`` vs dask's
threaded scheduler (eexarray defaults).

On a cluster, plans do not travel (see backend/prefetch.py): each worker task reads its own
block, so requests in flight = worker threads. Reported for the cluster's default of one
thread per worker (2 cores) and with 20 I/O threads per worker (40 in flight, the default
cap; the quick variant uses in-process workers). ``ratio`` = throughput on the cluster with
20 threads per worker / threaded scheduler.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import eexarray
from benchmarks.common import MIB, latency_model, square_grid, start_server, summarize, timed
from benchmarks.throughput import ASSET, BAND_IDS, DTYPES

IO_THREADS = 20


def cluster_read(url: str, threads_per_worker: int, rounds: int, processes: bool = True) -> list[float]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, processes=processes, threads_per_worker=threads_per_worker, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        seconds = []
        for _ in range(rounds + 1):  # the first round warms the workers up (imports, connections)
            ds = eexarray.open_dataset(ASSET, endpoint=url)
            seconds.append(timed(lambda ds=ds: client.compute(ds).result())[0])
        return seconds[1:]


def run(quick: bool) -> dict[str, Any]:
    from benchmarks.throughput import eexarray_read
    from eexarray.server import ProceduralImage

    side, rounds = (1024, 1) if quick else (8192, 2)
    nbytes = side * side * sum(np.dtype(d).itemsize for d in DTYPES)
    image = ProceduralImage(ASSET, square_grid(side), dtypes=DTYPES, band_ids=BAND_IDS)
    configs = [IO_THREADS] if quick else [1, IO_THREADS]
    with start_server([image]) as server:
        eexarray_read(server.url)
        threaded = [eexarray_read(server.url)[0] for _ in range(rounds)]
        print(f"threaded: {threaded}", flush=True)
        clusters = {}
        for threads in configs:
            # quick: worker threads instead of processes, which start too slowly for CI
            clusters[threads] = cluster_read(server.url, threads, rounds, processes=not quick)
            print(f"cluster, {threads} threads per worker: {clusters[threads]}", flush=True)
    result: dict[str, Any] = {
        "name": "distributed",
        "mib": round(nbytes / MIB, 1),
        "threaded": summarize(threaded, nbytes),
        **{f"cluster_2x{threads}_threads": summarize(s, nbytes) for threads, s in clusters.items()},
    }
    result["ratio"] = round(
        result[f"cluster_2x{IO_THREADS}_threads"]["best_mib_s"] / result["threaded"]["best_mib_s"], 3
    )
    result["ratio_means"] = f"2 workers x {IO_THREADS} threads (processes) / threaded scheduler"
    return {**result, **latency_model()}
