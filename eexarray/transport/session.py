"""Per-process HTTP state: one pooled ``requests.Session``, one in-flight cap, one fetch pool.

State is created lazily on first use in each process (and again after a fork),
so objects that reference it pickle as plain configuration and a dask worker
builds its own sessions and credentials.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from eexarray.transport.config import SCOPES, ConnectionConfig
from eexarray.transport.errors import CredentialsError


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


class EndpointState:
    """Session, semaphore, pool and credentials for one endpoint in one process."""

    def __init__(self, config: ConnectionConfig) -> None:
        self.config = config
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=config.max_concurrency + 8, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.in_flight = threading.BoundedSemaphore(config.max_concurrency)
        # On a dask.distributed worker: a distributed.Semaphore shared by the cluster (cluster.py).
        self.cluster_cap: Any = None
        # More workers than the cap: threads waiting on the semaphore cost nothing,
        # and decoding can overlap with the next request's wait.
        self.pool = ThreadPoolExecutor(max_workers=config.max_concurrency + 4, thread_name_prefix="eexarray-fetch")
        self._credentials: Any = config.credentials
        self._credentials_lock = threading.Lock()

    def authorization(self, force_refresh: bool = False) -> str | None:
        """The ``Authorization`` header value, refreshing the token when needed."""
        token = os.environ.get("EEXARRAY_TOKEN")
        source = self.config.credentials_source
        if source == "none":
            return f"Bearer {token}" if token else None
        import google.auth.exceptions

        with self._credentials_lock:
            if self._credentials is None:
                import google.auth

                try:
                    self._credentials, _ = google.auth.default(scopes=list(SCOPES))
                except google.auth.exceptions.DefaultCredentialsError as error:
                    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
                    where = f"GOOGLE_APPLICATION_CREDENTIALS={path!r}" if path else "Application Default Credentials"
                    raise CredentialsError(
                        f"Cannot load Google credentials for {self.config.endpoint} from {where}: {error} "
                        "Point GOOGLE_APPLICATION_CREDENTIALS at a service-account or authorized-user JSON file, "
                        "run `gcloud auth application-default login`, or pass credentials=."
                    ) from None
            credentials = self._credentials
            if force_refresh or not getattr(credentials, "valid", False):
                import google.auth.transport.requests

                try:
                    credentials.refresh(google.auth.transport.requests.Request())
                except google.auth.exceptions.RefreshError as error:
                    raise CredentialsError(
                        f"Cannot refresh the Google credentials ({type(credentials).__name__}) for "
                        f"{self.config.endpoint}: {error}"
                    ) from None
            headers: dict[str, str] = {}
            credentials.apply(headers)
            return headers.get("authorization") or headers.get("Authorization")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.session.close()


_states: dict[tuple[Any, ...], EndpointState] = {}
_states_lock = threading.Lock()
_state_pid = os.getpid()
COUNTERS = TransportCounters()


def endpoint_state(config: ConnectionConfig) -> EndpointState:
    """This process's state for ``config`` (rebuilt after a fork: sockets and locks do not survive one)."""
    global _state_pid
    key = (config.endpoint, config.project, config.max_concurrency, config.credentials_source, id(config.credentials))
    with _states_lock:
        if _state_pid != os.getpid():
            _states.clear()
            _state_pid = os.getpid()
        state = _states.get(key)
        if state is None:
            state = _states[key] = EndpointState(config)
        return state


def transport_stats() -> dict[str, int]:
    """Requests, retries and response bytes of this process so far."""
    return COUNTERS.snapshot()
