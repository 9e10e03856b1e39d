"""Load: 64 concurrent clients without an error; the server never sees more than the client's cap.

The full 64 threads x 2,000 requests run is ``python -m benchmarks soak`` (its ``load`` section).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests

import eexarray
from eexarray.server import procedural_values
from eexarray.transport.decode import read_npy

from .conftest import catalog

THREADS = 64
REQUESTS_PER_THREAD = 40  # 2,560 requests: seconds; the benchmark does 2,000 per thread


def test_64_threads_of_mixed_requests_finish_without_errors():
    with eexarray.serve(catalog=catalog()) as server:
        base = f"{server.url}/v1/projects/earthengine-public/assets/rel/small"
        barrier = threading.Barrier(THREADS)
        truth = procedural_values(0, np.arange(4)[:, None], np.arange(4)[None, :], 0, "uint16")

        def client(index: int) -> list[str]:
            session, problems = requests.Session(), []
            barrier.wait()
            for number in range(REQUESTS_PER_THREAD):
                if number % 4 == 3:  # every fourth request fetches pixels and checks them
                    body = {"fileFormat": "NPY", "bandIds": ["u"], "grid": {"dimensions": {"width": 4, "height": 4}}}
                    response = session.post(f"{base}:getPixels", json=body, timeout=60)
                    ok = response.status_code == 200 and np.array_equal(
                        read_npy(response.content)["u"],
                        truth,  # read_npy: no ast (CPython 3.11.7 race, decode.py)
                    )
                else:
                    response = session.get(base, timeout=60)
                    ok = response.status_code == 200 and response.json()["type"] == "IMAGE"
                if not ok:
                    problems.append(f"thread {index} request {number}: HTTP {response.status_code}")
            return problems

        with ThreadPoolExecutor(THREADS) as pool:
            problems = [problem for result in pool.map(client, range(THREADS)) for problem in result]
        stats = server.stats()
    assert problems == []
    total = THREADS * REQUESTS_PER_THREAD
    assert stats["requests"] == {"getAsset": total * 3 // 4, "getPixels": total // 4}
    assert stats["statuses"] == {"200": total}
    assert stats["in_flight"] == 0


def test_server_in_flight_never_exceeds_the_client_cap():
    cap = 8
    with eexarray.serve(catalog=catalog(), latency_ms=5, max_concurrency=cap) as capped:
        # The server also refuses beyond the cap (429): a client that respects it never sees one.
        ds = eexarray.open_dataset(
            "rel/soak", endpoint=capped.url, chunks={"y": 128, "x": 256}, max_concurrency=cap, mask_and_scale=False
        )  # native values: integer sums, exact
        parts = [ds.a.isel(y=slice(512 * k, 512 * (k + 1))) for k in range(4)] + [ds.c.isel(x=slice(0, 1024))]
        with ThreadPoolExecutor(len(parts)) as pool:  # five computes at once, each with its own prefetcher
            sums = list(pool.map(lambda part: float(part.compute().values.sum()), parts))
        served = capped.stats()
    assert served["max_in_flight"] <= cap
    assert served["max_in_flight"] >= cap // 2  # the load was real
    assert served["rejected"] == 0 and "429" not in served["statuses"]
    rows = np.arange(2048)[:, None]
    expected = procedural_values(0, rows, np.arange(4096)[None, :], 0, "uint16").astype("float64")
    assert sums[:4] == [expected[512 * k : 512 * (k + 1)].sum() for k in range(4)]
