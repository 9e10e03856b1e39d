"""Per-process HTTP state, shared per endpoint: pooled sessions, in-flight caps, fetch pools.

* One ``requests.Session`` per endpoint (its connection pool), whoever the caller and
  whatever the credentials: credentials are applied per request (credentials.py), so a
  new credentials object per open costs no session and no thread.
* One ``EndpointState`` per (endpoint, project, cap): the in-flight semaphore (Earth
  Engine's concurrency quota is per project) and a fetch pool whose daemon threads leave
  when idle (pool.py).

Both are bounded (least recently used first out), created lazily in each process and again
after a fork, so objects that reference them pickle as plain configuration and a dask
worker builds its own.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import requests

from eexarray.transport.config import ConnectionConfig
from eexarray.transport.deadline import WatchedAdapter
from eexarray.transport.pool import FetchPool

MAX_SESSIONS = 16  # endpoints with a live connection pool
MAX_STATES = 64  # (endpoint, project, cap) with a live semaphore and fetch pool
POOL_HEADROOM = 4  # fetch threads beyond the cap: decoding overlaps the next request's wait


@dataclass
class TransportCounters:
    """What this process fetched: for the demo's summary and for benchmarks."""

    requests: int = 0
    retries: int = 0
    bytes: int = 0
    cache_hits: int = 0  # pixel responses answered by the request cache (no request made)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, requests: int = 0, retries: int = 0, nbytes: int = 0, cache_hits: int = 0) -> None:
        with self.lock:
            self.requests += requests
            self.retries += retries
            self.bytes += nbytes
            self.cache_hits += cache_hits

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "bytes": self.bytes,
                "cache_hits": self.cache_hits,
            }


def _mount(session: requests.Session, max_connections: int) -> None:
    adapter = WatchedAdapter(pool_connections=4, pool_maxsize=max_connections, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.eexarray_pool_size = max_connections  # type: ignore[attr-defined]


class EndpointState:
    """Session (shared by the endpoint), in-flight cap and fetch pool for one endpoint, project and cap."""

    def __init__(self, config: ConnectionConfig) -> None:
        self.config = config.without_credentials()  # shared by every credentials object: holds none
        self.in_flight = threading.BoundedSemaphore(config.max_concurrency)
        # On a dask.distributed worker: a distributed.Semaphore shared by the cluster (cluster.py).
        self.cluster_cap: Any = None
        # More threads than the cap: threads waiting on the semaphore cost nothing,
        # and decoding can overlap with the next request's wait.
        self.pool = FetchPool(config.max_concurrency + POOL_HEADROOM)

    @property
    def session(self) -> requests.Session:
        return _session_for(self.config.endpoint, self.config.max_concurrency + 8)


_sessions: OrderedDict[str, requests.Session] = OrderedDict()
_states: OrderedDict[tuple[Any, ...], EndpointState] = OrderedDict()
_lock = threading.Lock()
_pid = os.getpid()
COUNTERS = TransportCounters()


def _check_fork() -> None:
    global _pid
    if _pid != os.getpid():  # sockets, locks and threads do not survive a fork
        _sessions.clear()
        _states.clear()
        _pid = os.getpid()


def _session_for(endpoint: str, max_connections: int) -> requests.Session:
    with _lock:
        _check_fork()
        session = _sessions.get(endpoint)
        if session is None:
            session = _sessions[endpoint] = requests.Session()
            _mount(session, max_connections)
        elif session.eexarray_pool_size < max_connections:  # type: ignore[attr-defined]
            # A larger cap for this endpoint: a larger pool (the old one's connections
            # finish their responses and close).
            _mount(session, max_connections)
        _sessions.move_to_end(endpoint)
        evicted = _sessions.popitem(last=False)[1] if len(_sessions) > MAX_SESSIONS else None
    if evicted is not None:
        # Idle connections close now; one still in use closes when its response is done.
        evicted.close()
    return session


def endpoint_state(config: ConnectionConfig) -> EndpointState:
    """This process's state for ``config``'s endpoint, project and cap (any credentials)."""
    key = (config.endpoint, config.project, config.max_concurrency)
    with _lock:
        _check_fork()
        state = _states.get(key)
        if state is None:
            state = _states[key] = EndpointState(config)
        _states.move_to_end(key)
        if len(_states) > MAX_STATES:
            # Forgotten: its pool's idle threads leave by themselves, running fetches finish.
            _states.popitem(last=False)
        return state


def transport_stats() -> dict[str, int]:
    """Requests, retries and response bytes of this process so far."""
    return COUNTERS.snapshot()
