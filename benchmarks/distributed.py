"""distributed: the same jobs on dask's threaded scheduler and on a ``LocalCluster`` of processes.

What is measured is fetching (the read tasks run where dask puts them and results go to
Zarr from there), not gathering pixels back to the client.

* **NDVI job** (``threaded`` vs ``cluster_2x1``): a procedural collection of 120 images
  x 2 uint16 bands, 64 x 64 px, opened with chunks ``{"time": 1, "y": 32, "x": 32}``
  (4 spatial blocks), ``ndvi = (nir - red) / (nir + red)`` in float32,
  ``.median("time")``, ``.to_zarr(tmpdir)``; server latency 300 ms per request. Runs
  alternate threaded, cluster (``LocalCluster(n_workers=2, threads_per_worker=1,
  processes=True)``), threaded, cluster... after one warm-up each. Per scheduler:
  seconds (best, median), pixel requests (getPixels + computePixels, from the server's
  stats) and the server's max requests in flight. Targets: cluster requests within
  +-10% of threaded; cluster time <= 1.5 x threaded (``ratio`` = cluster best seconds /
  threaded best seconds); cluster max in flight > its 2 worker threads. Each cluster
  run also reports its ``timelines`` from the workers' task stream (seconds since the
  job started): when the first task and the last read finished, when the last task
  ended, how many tasks ran and their summed durations (a read's includes its network
  wait, spent seceded). ``no_latency`` runs the same job against a server without
  latency: the schedulers' own cost of the job's graph (the floor under both timings).
* **Demo collection** (``demo``, full run only, one run each): ``eexarray/demo/S2_LANDSCAPE``
  (the default catalog of ``eexarray.serve()``), NDVI median of B4/B8 with
  ``mask_and_scale`` in 512-px chunks to Zarr, threaded vs the same cluster: requests and
  seconds. Only its first 8 images (January to April): the server synthesises every
  pixel, about a second of its CPU per 512-px block of 25 images, so all 25 would cost
  20-40 s per run here.
* **Cluster-wide cap** (``capped``): 3 workers x 4 threads (processes) opened with
  ``max_concurrency=6`` against a server that answers 429 above 6 requests in flight;
  ``compute()`` of a 12-image collection in 32 spatial blocks of 32 x 32 px (32 packed
  requests that all want to run at once). Targets: zero 429s, the server never saw more
  than 6 in flight, results exactly equal to a threaded compute.

The quick variant uses 24 images, 100 ms of latency, one round, 4 images in the capped
case, and no demo or ``no_latency`` case; it still starts both ``LocalCluster``s of
processes.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import eexarray
from benchmarks.common import LATENCY_MS_PER_MB, MIB, latency_model, reset_stats, square_grid, start_server, timed
from eexarray.server import procedural_collection

ASSET = "bench/ndvi"
SIDE = 64
CHUNKS = {"time": 1, "y": 32, "x": 32}
CLUSTER_WORKERS, CLUSTER_THREADS = 2, 1
DEMO_ASSET = "eexarray/demo/S2_LANDSCAPE"
DEMO_CHUNKS = {"y": 512, "x": 512}
DEMO_DATES = {"start": "2023-01-01", "end": "2023-05-01"}  # 8 of the 25 images: the server synthesises each one
CAPPED_ASSET = "bench/capped"
CAP = 6
CAPPED_WORKERS, CAPPED_THREADS = 3, 4


def settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"images": 24, "latency_ms": 100.0, "rounds": 1, "demo_rounds": 0, "floor_rounds": 0, "capped_images": 4}
    return {"images": 120, "latency_ms": 300.0, "rounds": 3, "demo_rounds": 1, "floor_rounds": 1, "capped_images": 12}


@contextlib.contextmanager
def cluster(workers: int, threads: int) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None
        ) as local_cluster,
        Client(local_cluster) as client,
    ):
        yield client


def scheduler_of(client: Any) -> Any:
    """``dask.config`` scheduler for a run: the cluster's client, or dask's threaded scheduler."""
    return client if client is not None else "threads"


def ndvi_to_zarr(url: str, asset: str, chunks: dict[str, int], directory: str, **options: Any) -> None:
    """The user's job: open, NDVI, median over time, to Zarr (computed where the scheduler runs it)."""
    ds = eexarray.open_dataset(asset, endpoint=url, chunks=chunks, **options)
    red, nir = (ds[band].astype("float32") for band in ds.data_vars)
    ndvi = ((nir - red) / (nir + red)).median("time")
    ndvi.to_dataset(name="ndvi").to_zarr(f"{directory}/ndvi.zarr", mode="w")


def server_figures(server: Any) -> dict[str, Any]:
    stats = server.stats()
    requests = stats["requests"]
    return {
        "pixel_requests": requests.get("getPixels", 0) + requests.get("computePixels", 0),
        "max_in_flight": stats["max_in_flight"],
        "pixels_bytes": stats["pixels_bytes"],
        "statuses": dict(stats["statuses"]),
    }


def task_timeline(records: list[dict[str, Any]], started: float) -> dict[str, Any]:
    """Where a cluster run's time went, from the workers' task stream (seconds since the job started)."""
    spans = []
    reads = []
    for record in records:
        computes = [s for s in record["startstops"] if s["action"] == "compute"]
        if not computes:
            continue
        span = (computes[0]["start"] - started, computes[-1]["stop"] - started)
        spans.append(span)
        if "eexarray-read-" in str(record["key"]):
            reads.append(span)
    if not spans:
        return {}
    return {
        "tasks": len(spans),
        "first_task_s": round(min(a for a, _ in spans), 2),
        "reads_done_s": round(max(b for _, b in reads), 2) if reads else None,
        "last_task_s": round(max(b for _, b in spans), 2),
        "task_seconds": round(sum(b - a for a, b in spans), 2),
    }


def measured_run(server: Any, client: Any, job: Callable[[str], None]) -> tuple[float, dict[str, Any]]:
    import dask

    reset_stats(server)
    stream = contextlib.nullcontext(None)
    if client is not None:
        from distributed import get_task_stream

        stream = get_task_stream(client)
    with (
        tempfile.TemporaryDirectory() as directory,
        dask.config.set(scheduler=scheduler_of(client)),
        stream as tasks,
    ):
        started = time.time()
        seconds, _ = timed(lambda: job(directory))
    figures = server_figures(server)
    if tasks is not None:
        figures["timeline"] = task_timeline(tasks.data, started)
    return seconds, figures


def summary(runs: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    seconds = [s for s, _ in runs]
    figures = [f for _, f in runs]
    nbytes = figures[-1]["pixels_bytes"]
    return {
        "seconds": [round(s, 3) for s in seconds],
        "best_seconds": round(min(seconds), 3),
        "median_seconds": round(statistics.median(seconds), 3),
        "pixel_requests": [f["pixel_requests"] for f in figures],
        "max_in_flight": [f["max_in_flight"] for f in figures],
        "fetched_mib": round(nbytes / MIB, 2),
        # fetched bytes / seconds of the whole job (the report's headline unit)
        "best_mib_s": round(nbytes / MIB / min(seconds), 2),
        "median_mib_s": round(nbytes / MIB / statistics.median(seconds), 2),
        **({"timelines": [f["timeline"] for f in figures]} if "timeline" in figures[0] else {}),
    }


def alternate(
    server: Any, client: Any, job: Callable[[str], None], rounds: int, label: str, warm: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Warm-ups (unmeasured, unless ``warm`` is False), then ``rounds`` of threaded, cluster, threaded..."""
    if warm:
        measured_run(server, None, job)  # this process's imports and connections; the server's caches
        measured_run(server, client, job)  # the workers' imports, connections and cluster semaphore
    threaded, clustered = [], []
    for round_ in range(rounds):
        threaded.append(measured_run(server, None, job))
        clustered.append(measured_run(server, client, job))
        print(
            f"{label} round {round_ + 1}: threaded {threaded[-1][0]:.2f} s {threaded[-1][1]['pixel_requests']} req "
            f"max {threaded[-1][1]['max_in_flight']} in flight; cluster {clustered[-1][0]:.2f} s "
            f"{clustered[-1][1]['pixel_requests']} req max {clustered[-1][1]['max_in_flight']} in flight",
            flush=True,
        )
    return summary(threaded), summary(clustered)


def capped_case(images: int, latency_ms: float) -> dict[str, Any]:
    """3 x 4 worker threads, cluster-wide ``max_concurrency=CAP`` against a server that 429s above CAP."""
    import dask

    rows, cols, block = 256, 128, 32  # 8 x 4 blocks: 32 reads, one (packed) request each
    chunks = {"y": block, "x": block}
    collection = procedural_collection(
        CAPPED_ASSET, square_grid(rows, width=cols), images, dtypes=("uint16", "uint16"), band_ids=("red", "nir")
    )
    options = {"chunks": chunks, "max_concurrency": CAP}
    with start_server([collection], latency_ms=latency_ms, max_concurrency=CAP) as server:

        def load() -> dict[str, np.ndarray]:
            ds = eexarray.open_dataset(CAPPED_ASSET, endpoint=server.url, **options)
            loaded = ds.compute()
            return {band: loaded[band].values for band in loaded.data_vars}

        with dask.config.set(scheduler="threads"):
            reset_stats(server)
            threaded_seconds, reference = timed(load)
            threaded = server_figures(server)
        with cluster(CAPPED_WORKERS, CAPPED_THREADS) as client, dask.config.set(scheduler=client):
            reset_stats(server)
            cluster_seconds, result = timed(load)
            clustered = server_figures(server)
            rejected = server.stats()["rejected"]
    identical = reference.keys() == result.keys() and all(np.array_equal(reference[b], result[b]) for b in reference)
    too_many = clustered["statuses"].get("429", 0)
    print(f"capped: threaded {threaded}, cluster {clustered}, identical {identical}", flush=True)
    return {
        "workers": CAPPED_WORKERS,
        "threads_per_worker": CAPPED_THREADS,
        "max_concurrency": CAP,
        "server_max_concurrency": CAP,
        "blocks": (rows // block) * (cols // block),
        "images": images,
        "threaded": {
            "seconds": round(threaded_seconds, 3),
            "pixel_requests": threaded["pixel_requests"],
            "max_in_flight": threaded["max_in_flight"],
            "statuses": threaded["statuses"],
        },
        "cluster": {
            "seconds": round(cluster_seconds, 3),
            "pixel_requests": clustered["pixel_requests"],
            "max_in_flight": clustered["max_in_flight"],
            "statuses": clustered["statuses"],
            "rejected": rejected,
        },
        "status_429": too_many,
        "identical": identical,
    }


def demo_case(client: Any, rounds: int, latency_ms: float) -> dict[str, Any]:
    options = {"bands": ["B4", "B8"], "mask_and_scale": True, **DEMO_DATES}

    def job(directory: str) -> None:
        ndvi_to_zarr(url, DEMO_ASSET, DEMO_CHUNKS, directory, **options)

    with eexarray.serve(process=True, latency_ms=latency_ms, latency_ms_per_mb=LATENCY_MS_PER_MB) as server:
        url = server.url
        # The server builds its static landscape on the first read (about a second): not measured.
        eexarray.open_dataset(DEMO_ASSET, endpoint=url, **options).isel(time=0, y=slice(0, 1), x=slice(0, 1)).load()
        threaded, clustered = alternate(server, client, job, rounds, "demo", warm=False)
    return {
        "asset": DEMO_ASSET,
        "options": options,
        "chunks": DEMO_CHUNKS,
        "threaded": threaded,
        "cluster": clustered,
        "time_ratio": round(clustered["best_seconds"] / threaded["best_seconds"], 3),
    }


def target(description: str, value: Any, met: bool) -> dict[str, Any]:
    return {"target": description, "value": value, "met": bool(met)}


def run(quick: bool) -> dict[str, Any]:
    config = settings(quick)
    latency_ms = config["latency_ms"]
    collection = procedural_collection(
        ASSET, square_grid(SIDE), config["images"], dtypes=("uint16", "uint16"), band_ids=("red", "nir")
    )

    def job_at(url: str) -> Callable[[str], None]:
        return lambda directory: ndvi_to_zarr(url, ASSET, CHUNKS, directory)

    warnings.filterwarnings("ignore", message=".*separate the stored chunks.*")  # 32-px chunks are the point
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # all-NaN medians of masked demo pixels
    started = time.perf_counter()
    with (
        start_server([collection], latency_ms=latency_ms) as server,
        cluster(CLUSTER_WORKERS, CLUSTER_THREADS) as client,
    ):
        threaded, clustered = alternate(server, client, job_at(server.url), config["rounds"], "ndvi")
        print(f"ndvi: {time.perf_counter() - started:.0f} s", flush=True)
        floor = None
        if config["floor_rounds"]:
            with start_server([collection], latency_ms=0.0, latency_ms_per_mb=0.0) as instant:
                floor_threaded, floor_cluster = alternate(
                    instant, client, job_at(instant.url), config["floor_rounds"], "no latency", warm=False
                )
            floor = {"threaded": floor_threaded, "cluster": floor_cluster}
        demo = demo_case(client, config["demo_rounds"], latency_ms) if config["demo_rounds"] else None
        print(f"no latency, demo: {time.perf_counter() - started:.0f} s", flush=True)
    capped = capped_case(config["capped_images"], latency_ms)
    print(f"took {time.perf_counter() - started:.0f} s", flush=True)

    requests_threaded, requests_cluster = threaded["pixel_requests"][-1], clustered["pixel_requests"][-1]
    time_ratio = round(clustered["best_seconds"] / threaded["best_seconds"], 3)
    targets = {
        "cluster_requests_within_10pct": target(
            "cluster pixel requests within +-10% of threaded",
            round(requests_cluster / requests_threaded, 3),
            abs(requests_cluster - requests_threaded) <= 0.1 * requests_threaded,
        ),
        "cluster_time_le_1_5x": target("cluster seconds <= 1.5 x threaded (best runs)", time_ratio, time_ratio <= 1.5),
        "cluster_in_flight_gt_threads": target(
            f"cluster max in flight > {CLUSTER_WORKERS * CLUSTER_THREADS} worker threads",
            max(clustered["max_in_flight"]),
            max(clustered["max_in_flight"]) > CLUSTER_WORKERS * CLUSTER_THREADS,
        ),
        "capped_no_429": target("capped cluster: zero 429s", capped["status_429"], capped["status_429"] == 0),
        "capped_in_flight_le_cap": target(
            f"capped cluster: server max in flight <= {CAP}",
            capped["cluster"]["max_in_flight"],
            capped["cluster"]["max_in_flight"] <= CAP,
        ),
        "capped_identical": target(
            "capped cluster results == threaded results", capped["identical"], capped["identical"]
        ),
    }
    return {
        "name": "distributed",
        "job": "ndvi = (nir - red) / (nir + red); median over time; to_zarr",
        "images": config["images"],
        "side_px": SIDE,
        "chunks": CHUNKS,
        "cluster": f"LocalCluster(n_workers={CLUSTER_WORKERS}, threads_per_worker={CLUSTER_THREADS}, processes=True)",
        "threaded": threaded,
        f"cluster_{CLUSTER_WORKERS}x{CLUSTER_THREADS}": clustered,
        **({"no_latency": floor} if floor else {}),
        "ratio": time_ratio,
        "ratio_means": "NDVI job: cluster best seconds / threaded best seconds (target <= 1.5)",
        **({"demo": demo} if demo else {}),
        "capped": capped,
        "targets": targets,
        "targets_met": all(t["met"] for t in targets.values()),
        **latency_model(latency_ms),
    }
