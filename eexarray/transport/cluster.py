"""One cap on requests in flight for a whole dask.distributed cluster.

Earth Engine's concurrent-request quota is per project, not per process. Inside a
dask.distributed worker, every request to an endpoint also holds a lease of a
``distributed.Semaphore`` named after the endpoint, project and cap, so all the
workers of a cluster together keep at most ``max_concurrency`` requests in flight.
Outside a cluster only the per-process semaphore applies (session.py).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eexarray.transport.config import ConnectionConfig
from eexarray.transport.session import endpoint_state

_lock = threading.Lock()


def semaphore_name(config: ConnectionConfig) -> str:
    """The same name on every worker for one endpoint, project and cap (no secrets in it)."""
    identity = f"{config.endpoint}|{config.project or ''}".encode()
    return f"eexarray-requests-{hashlib.sha256(identity).hexdigest()[:16]}-{config.max_concurrency}"


def use_cluster_cap(config: ConnectionConfig) -> None:
    """From a task running on a dask.distributed worker: share the cluster-wide cap from now on.

    Must be called from a worker's task thread (where ``distributed.Semaphore`` finds
    the worker's client); the requests themselves then acquire leases from any thread.
    """
    state = endpoint_state(config)
    if state.cluster_cap is not None:
        return
    from distributed import Semaphore

    with _lock:
        if state.cluster_cap is None:
            state.cluster_cap = Semaphore(max_leases=config.max_concurrency, name=semaphore_name(config))


@contextmanager
def request_slot(state: Any) -> Iterator[None]:
    """Hold a cluster lease (when on a cluster) and a slot of this process's cap for one request."""
    cluster = state.cluster_cap
    if cluster is None:
        with state.in_flight:
            yield
        return
    cluster.acquire()
    try:
        with state.in_flight:
            yield
    finally:
        cluster.release()
