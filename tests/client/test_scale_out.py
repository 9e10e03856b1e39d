"""The read engine on a cluster and after failures: same requests everywhere, one cap, nothing held.

Request counts, never timings (those are in benchmarks/distributed.py).
"""

from __future__ import annotations

import gc
import time

import dask
import numpy as np
import pytest

import eexarray
from eexarray.engine import run
from eexarray.engine.source import PendingRead
from eexarray.server.images import procedural_values
from tests.qp import REDUCTIONS, TO_DELAYED, dask_expr_gap

from .conftest import catalog

SERIES_WINDOW = {"y": slice(0, 64), "x": slice(0, 64)}


def _ndvi_median(ds):
    red, nir = ds.red.astype("float32"), ds.nir.astype("float32")
    return ((nir - red) / (nir + red)).median("time")


def _pixel_requests(server) -> int:
    counts = server.stats()["requests"]
    return counts.get("getPixels", 0) + counts.get("computePixels", 0)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="the distributed extra is not installed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local_cluster:
        yield local_cluster


@dask_expr_gap(REDUCTIONS, NotImplementedError)  # the median
def test_a_cluster_makes_the_requests_of_the_threaded_scheduler(cluster):
    """Packing across images and bands sharing a request survive the trip to the workers."""
    from distributed import Client

    with eexarray.serve(catalog=catalog()) as server:
        ds = eexarray.open_dataset("test/series", endpoint=server.url, chunks={"time": 1, "y": 32, "x": 32})
        job = _ndvi_median(ds.isel(**SERIES_WINDOW))
        threaded = job.compute(scheduler="threads")
        threaded_requests = _pixel_requests(server)
        server.reset_stats()
        with Client(cluster):
            clustered = job.compute()
        cluster_requests = _pixel_requests(server)
        kinds = server.stats()["requests"]
    # 30 images x 2 bands of 32 x 32 px pack into one computePixels per block: 4 blocks.
    assert threaded_requests == cluster_requests == 4
    assert kinds.get("computePixels") == 4 and not kinds.get("getPixels")
    np.testing.assert_array_equal(clustered.values, threaded.values)
    rows, cols = np.arange(64)[:, None], np.arange(64)[None, :]
    red = np.stack([procedural_values(0, rows, cols, t, "uint16") for t in range(30)]).astype("float32")
    nir = np.stack([procedural_values(1, rows, cols, t, "uint16") for t in range(30)]).astype("float32")
    np.testing.assert_allclose(threaded.values, np.median((nir - red) / (nir + red), axis=0), rtol=1e-6)


def test_one_cap_for_the_whole_cluster_and_many_reads_per_worker_thread(cluster):
    """Two one-thread workers keep more than two requests in flight (tasks secede while they
    wait), and never more than max_concurrency across the cluster: the server, which refuses
    anything beyond that, answers no 429."""
    from distributed import Client

    with eexarray.serve(catalog=catalog(), latency_ms=200, max_concurrency=3) as server:
        ds = eexarray.open_dataset(
            "test/mixed", endpoint=server.url, chunks={"y": 100, "x": 100}, max_concurrency=3, bands=["u8"]
        )
        with Client(cluster):
            values = ds.u8.compute().values
        stats = server.stats()
    # 4 x 6 blocks; exact masks (the default) make them computePixels
    assert stats["requests"]["computePixels"] == 24 and not stats["requests"].get("getPixels")
    assert stats["statuses"].get("429", 0) == 0
    assert 2 < stats["max_in_flight"] <= 3
    rows, cols = np.arange(400)[:, None], np.arange(600)[None, :]
    np.testing.assert_array_equal(values, procedural_values(0, rows, cols, 0, "uint8"))


def _live_reads() -> int:
    """Reads (pending or done) anything still refers to, once running requests had time to end."""
    time.sleep(0.5)
    gc.collect()
    return sum(isinstance(obj, PendingRead) for obj in gc.get_objects())


def test_a_failed_compute_holds_no_pixels():
    """Reads started ahead for a compute that then fails are dropped at once, even while the
    exception (and its traceback, which holds the graph) is still alive."""
    with eexarray.serve(catalog=catalog(), latency_ms=20) as server:
        ds = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks={"y": 50, "x": 50})

        def fail_late(block, block_info=None):
            if block_info[None]["chunk-location"] == (7, 11):
                raise RuntimeError("injected failure")
            return block

        with pytest.raises(RuntimeError, match="injected failure") as caught:
            ds.f64.data.map_blocks(fail_late, dtype="float64").sum().compute(scheduler="threads")
        assert caught.value is not None  # the traceback is alive here
        assert run._computes == []
        assert _live_reads() == 0
        # the next compute starts clean and is exact
        rows, cols = np.arange(10)[:, None], np.arange(10)[None, :]
        with dask.config.set(scheduler="threads"):
            np.testing.assert_array_equal(
                ds.f64.isel(y=slice(0, 10), x=slice(0, 10)).values, procedural_values(3, rows, cols, 0, "float64")
            )


def test_repeated_failed_computes_hold_no_memory():
    """Issue 12's case: five failing computes in a row, each with reads started ahead (32 MiB
    of pixels per compute, native values), leave no pixel memory behind (traced by numpy's
    allocations)."""
    import tracemalloc

    # The server in its own process: its caches are not this process's memory.
    with eexarray.serve(catalog=catalog(), latency_ms=20, process=True) as server:
        ds = eexarray.open_dataset("test/huge", endpoint=server.url, chunks={"y": 512, "x": 512}, mask_and_scale=False)
        window = ds.isel(y=slice(0, 2048), x=slice(0, 2048))
        assert sum(v.nbytes for v in window.data_vars.values()) == 32 * 2**20

        def fail_late(block, block_info=None):
            if block_info[None]["chunk-location"] == (3, 3):  # the last block
                raise RuntimeError("injected failure")
            return block[:1, :1]

        # Every band's blocks, reduced to a pixel each so only the reads hold memory.
        failing = [
            band.data.map_blocks(fail_late, dtype=np.dtype("uint16"), chunks=((1,) * 4, (1,) * 4))
            for band in window.data_vars.values()
        ]
        with pytest.raises(RuntimeError, match="injected failure"):
            dask.compute(*failing, scheduler="threads")  # first use: imports, connections (not measured)
        gc.collect()
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            for _ in range(5):
                with pytest.raises(RuntimeError, match="injected failure") as caught:
                    dask.compute(*failing, scheduler="threads")
            assert _live_reads() == 0
            del caught  # the last exception's traceback holds dask's results of that compute
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - baseline
        finally:
            tracemalloc.stop()
    assert held < 4 * 2**20, f"{held / 2**20:.1f} MiB still held after 5 failed computes"


def test_look_ahead_survives_dask_task_fusion():
    """One band reduced: dask fuses read, take and reduce into one task per block and renames
    it; the compute still keeps many requests in flight on 2 threads (not one per thread)."""
    with eexarray.serve(catalog=catalog(), latency_ms=100) as server:
        ds = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks={"y": 50, "x": 50}, max_concurrency=8)
        total = ds.f64.data.sum().compute(scheduler="threads")
        stats = server.stats()
    rows, cols = np.arange(400)[:, None], np.arange(600)[None, :]
    np.testing.assert_allclose(total, procedural_values(3, rows, cols, 0, "float64").sum(), rtol=1e-12)
    assert stats["requests"]["computePixels"] == 96 and not stats["requests"].get("getPixels")
    assert 2 < stats["max_in_flight"] <= 8


def test_concurrent_computes_of_other_bands_of_one_dataset():
    """Two threads compute different variables of one Dataset at once (same plan, narrowed to
    other bands): each gets its own band's exact pixels."""
    from concurrent.futures import ThreadPoolExecutor

    with eexarray.serve(catalog=catalog(), latency_ms=20) as server:
        ds = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks={"y": 50, "x": 50})
        with ThreadPoolExecutor(2) as pool:
            u8, f64 = pool.map(lambda name: ds[name].compute(scheduler="threads").values, ["u8", "f64"])
    rows, cols = np.arange(400)[:, None], np.arange(600)[None, :]
    np.testing.assert_array_equal(u8, procedural_values(0, rows, cols, 0, "uint8"))
    np.testing.assert_array_equal(f64, procedural_values(3, rows, cols, 0, "float64"))
    # Parallel local computes can leave dask's global callback set empty; later computes still look ahead.
    with eexarray.serve(catalog=catalog(), latency_ms=100) as slow:
        again = eexarray.open_dataset("test/mixed", endpoint=slow.url, chunks={"y": 100, "x": 100}, max_concurrency=8)
        again.u8.compute(scheduler="threads")
        assert slow.stats()["max_in_flight"] > 2


def test_many_point_selections_keep_a_bounded_graph_cache():
    """Each isel window builds its own arrays (pushdown); a loop over points must not keep them all."""
    from eexarray.backend.arrays import origin_of
    from eexarray.backend.dataset import GRAPH_CACHE_SIZE

    with eexarray.serve(catalog=catalog()) as server:
        ds = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks={"y": 100, "x": 100})
        points = [ds.u8.isel(y=k, x=2 * k) for k in range(GRAPH_CACHE_SIZE + 20)]
        values = [int(point.compute()) for point in points[-3:]]
        opened = origin_of(ds.u8).opened
    assert len(opened._arrays) <= GRAPH_CACHE_SIZE
    for k, value in zip(range(GRAPH_CACHE_SIZE + 17, GRAPH_CACHE_SIZE + 20), values):
        assert value == int(procedural_values(0, np.array([[k]]), np.array([[2 * k]]), 0, "uint8")[0, 0])


def _computed_with_graph(array) -> tuple[np.ndarray, dict]:
    """``array``'s values and the graph dask's threaded scheduler ran (after dask's optimisations)."""
    from dask.callbacks import Callback

    graphs = []
    with Callback(start=lambda dsk: graphs.append(dict(dsk))):
        values = array.compute(scheduler="threads")
    return np.asarray(values), graphs[-1]


def _ndvi(ds):
    red, nir = ds.red.astype("float32"), ds.nir.astype("float32")
    return (nir - red) / (nir + red)


def _expected_ndvi(times: range) -> np.ndarray:
    rows, cols = np.arange(64)[:, None], np.arange(64)[None, :]
    red = np.stack([procedural_values(0, rows, cols, t, "uint16") for t in times]).astype("float32")
    nir = np.stack([procedural_values(1, rows, cols, t, "uint16") for t in times]).astype("float32")
    return (nir - red) / (nir + red)


@pytest.mark.parametrize("images_per_request", [None, 8])
def test_one_task_per_block_of_a_packed_series(server, monkeypatch, images_per_request):
    """Task counts matter on dask.distributed (about a millisecond each): a packed series read
    costs one task per read, and each block of the user's elementwise work stays one task.

    One group per spatial block (every image in one request): the bands' takes read their
    time step straight from the read (classic graphs). Groups of 8 images: one split task
    per block as well. Under query planning only requests and values are checked.
    """
    from eexarray.engine.source import PixelSource

    if images_per_request:
        monkeypatch.setattr(PixelSource, "images_per_packed_request", lambda self, window, bands: images_per_request)
    ds = eexarray.open_dataset("test/series", endpoint=server.url, chunks={"time": 1, "y": 32, "x": 32})
    ndvi = _ndvi(ds.isel(**SERIES_WINDOW))
    blocks = 30 * 4
    reads = 4 * (-(-30 // images_per_request) if images_per_request else 1)
    server.reset_stats()
    values, tasks = _computed_with_graph(ndvi.data)
    assert _pixel_requests(server) == reads
    np.testing.assert_allclose(values, _expected_ndvi(range(30)), rtol=1e-6)
    names = [key[0] if isinstance(key, tuple) else key for key in tasks]
    if not dask.array.array_expr_enabled():  # query planning (dask 2026.8) leaves every elementwise step a task
        assert sum(name.startswith("eexarray-read-") for name in names) == reads
        splits = blocks if images_per_request else 0
        assert len(tasks) == reads + splits + blocks + 2 + 1  # + a marker per band (narrowing.py), dask's finalize


def test_classic_graph_tricks_fall_back_to_the_public_graph(server, monkeypatch):
    """If dask's HighLevelGraph stops behaving as narrowing.py expects, the arrays are built
    with public API only: same requests per block (all bands), exact values, one warning."""
    from eexarray.backend import narrowing

    def broken(*args, **kwargs):
        raise TypeError("a HighLevelGraph change")

    monkeypatch.setattr(narrowing, "narrow", broken)
    monkeypatch.setattr("eexarray.backend.graph.narrow", broken)
    monkeypatch.setattr(narrowing, "_warned", False)
    # Query planning builds the public graph from the start (and says so instead).
    reason = "query planning is on" if dask.array.array_expr_enabled() else "a HighLevelGraph change"
    with pytest.warns(narrowing.NarrowingUnavailableWarning, match=reason):
        ds = eexarray.open_dataset("test/series", endpoint=server.url, chunks={"time": 1, "y": 32, "x": 32})
        ndvi = _ndvi(ds.isel(**SERIES_WINDOW))
    server.reset_stats()
    values = ndvi.compute(scheduler="threads").values
    assert _pixel_requests(server) == 4
    np.testing.assert_allclose(values, _expected_ndvi(range(30)), rtol=1e-6)


@dask_expr_gap(TO_DELAYED, AttributeError)
def test_variables_optimised_apart_then_computed_together(server):
    """``to_delayed()`` optimises each variable's graph on its own, so each narrows the shared
    read tasks to its own band under the same keys; computed together, one of those reads
    serves every variable. Each block still gets its own band's exact pixels."""
    ds = eexarray.open_dataset(
        "test/series", endpoint=server.url, chunks={"time": 1, "y": 32, "x": 32}, mask_and_scale=False
    )
    window = ds.isel(**SERIES_WINDOW)
    blocks = {name: list(window[name].data.to_delayed().ravel()) for name in ("red", "nir")}
    server.reset_stats()
    (computed,) = dask.compute(blocks, scheduler="threads")
    # 4 reads (one per spatial block, narrowed to one band), then at most one read of the other
    # band per spatial block, shared by its 30 time blocks (classic graphs; all bands: 4).
    assert _pixel_requests(server) <= 8
    rows, cols = np.arange(64)[:, None], np.arange(64)[None, :]
    for position, name in enumerate(("red", "nir")):
        expected = np.stack([procedural_values(position, rows, cols, t, "uint16") for t in range(30)])
        assembled = np.empty_like(expected)
        for index, block in enumerate(computed[name]):  # blocks in C order of (30, 2, 2)
            t, r, c = index // 4, index // 2 % 2, index % 2
            assembled[t : t + 1, r * 32 : r * 32 + 32, c * 32 : c * 32 + 32] = block
        np.testing.assert_array_equal(assembled, expected)


def test_a_holder_travels_without_its_plan(server, monkeypatch):
    """Holders move between workers as pixels only; a narrowed one still reads a missing band
    where this process ran a read of the plan, and says what to do where it did not."""
    import pickle

    monkeypatch.setattr(run, "_seen_plans", {})
    ds = eexarray.open_dataset("test/series", endpoint=server.url, chunks={"time": 1, "y": 32, "x": 32})
    ds.red.isel(time=0, y=slice(0, 32), x=slice(0, 32)).compute(scheduler="threads")  # a read ran here
    (plan,) = run._seen_plans.values()
    pixels = {0: np.zeros((1, 32, 32), dtype="uint16")}
    holder = run.BlockPixels(pixels, plan, (0, 0, 0), (0, 1))
    payload = pickle.dumps(holder)
    travelled = pickle.loads(payload)
    assert b"ReadPlan" not in payload and len(payload) < len(pickle.dumps(pixels)) + 300
    rows, cols = np.arange(32)[:, None], np.arange(32)[None, :]
    np.testing.assert_array_equal(
        travelled.band(1)[0], procedural_values(1, rows, cols, plan.read_of(0, 0, 0)[0][0], "uint16")
    )
    monkeypatch.setattr(run, "_seen_plans", {})
    with pytest.raises(run.BandNotReadError, match="compute these variables together"):
        pickle.loads(pickle.dumps(holder)).band(1)
