"""Deadlines and cancellation for requests on the wire: one watchdog thread per process.

``requests``' ``timeout`` bounds each socket operation, not a request: a server that sends
a byte every 0.5 s never trips a 300 s read timeout, and one that sends nothing costs the
full read timeout on every attempt. Here each attempt of a request gets a deadline that
covers the connection and the whole response (status line, headers and body). When it
passes, the watchdog shuts the attempt's socket down, which wakes the reading thread at
once, whatever it is reading.

The same shutdown serves cancellation: a fetch whose future is cancelled while running
(``FetchFuture.cancel``), ``abort_in_flight()``, and interpreter exit (run before Python
joins its threads), so that threads blocked in reads never keep a process alive after Ctrl-C.

Sockets are found through the connection classes of the adapter below: whenever a
connection opens a socket or sends a request on a kept-alive one, it hands the socket to
the attempt running in the current thread.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager

EXPIRED = "expired"
CANCELLED = "cancelled"
DONE = "done"

_current = threading.local()  # .attempt: the Attempt of this thread; .scope: its CancelScope


def _shutdown_socket(sock: Any) -> None:
    """Wake every thread blocked on ``sock``. ``socket.socket.shutdown`` on purpose: an
    SSLSocket's own ``shutdown`` also drops its SSL object under the feet of the reader."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, TypeError, ValueError):
        pass  # already closed, or not a socket (nothing to wake)


class Attempt:
    """One attempt of one request: its deadline and the sockets it uses."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[Any] = []
        self.outcome: str | None = None  # None while running; DONE, EXPIRED or CANCELLED once over

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def watch(self, sock: Any) -> None:
        with self._lock:
            if self.outcome is None:
                self._sockets.append(sock)
                return
            aborted = self.outcome != DONE
        if aborted:
            _shutdown_socket(sock)  # aborted before the socket existed

    def abort(self, reason: str) -> bool:
        """End the attempt with ``reason`` (EXPIRED or CANCELLED) unless it is already over."""
        with self._lock:
            if self.outcome is not None:
                return False
            self.outcome = reason
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown_socket(sock)
        return True

    def finish(self) -> str | None:
        """Mark the attempt done; returns EXPIRED or CANCELLED if it was aborted first."""
        with self._lock:
            if self.outcome is None:
                self.outcome = DONE
                self._sockets = []
            return None if self.outcome == DONE else self.outcome


class CancelScope:
    """Cancellation of one submitted fetch: stops its attempt on the wire and any retry."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self._attempt: Attempt | None = None
        self._lock = threading.Lock()

    def cancel(self) -> None:
        self.cancelled.set()
        with self._lock:
            attempt = self._attempt
        if attempt is not None:
            attempt.abort(CANCELLED)

    def attach(self, attempt: Attempt | None) -> None:
        with self._lock:
            self._attempt = attempt
        if attempt is not None and self.cancelled.is_set():
            attempt.abort(CANCELLED)


class _Watchdog:
    """Aborts attempts whose deadline passed. Scans only the attempts in flight (a few dozen)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._live: set[Attempt] = set()
        self._next_wake = float("inf")
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def add(self, attempt: Attempt) -> None:
        with self._condition:
            if self._pid != os.getpid():  # forked: the thread did not come along
                self._live.clear()
                self._thread, self._pid, self._next_wake = None, os.getpid(), float("inf")
            self._live.add(attempt)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="eexarray-deadlines", daemon=True)
                self._thread.start()
            if attempt.expires < self._next_wake:
                self._condition.notify()

    def discard(self, attempt: Attempt) -> None:
        with self._condition:
            self._live.discard(attempt)

    def abort_all(self, reason: str) -> int:
        with self._condition:
            live = list(self._live)
        return sum(attempt.abort(reason) for attempt in live)

    def _run(self) -> None:
        while True:
            with self._condition:
                now = time.monotonic()
                due = [attempt for attempt in self._live if attempt.expires <= now]
                for attempt in due:
                    self._live.discard(attempt)
                if not due:
                    self._next_wake = min((attempt.expires for attempt in self._live), default=float("inf"))
                    wait = self._next_wake - now
                    self._condition.wait(None if wait == float("inf") else wait)
                    continue
            for attempt in due:
                attempt.abort(EXPIRED)


_watchdog = _Watchdog()
_closing = threading.Event()


class RequestAborted(Exception):
    """Raised inside the transport when an attempt is cancelled (not a failure of the server)."""


def start_attempt(seconds: float) -> Attempt:
    """An attempt with a deadline ``seconds`` from now, watched, bound to this thread."""
    attempt = Attempt(seconds)
    scope = current_scope()
    _current.attempt = attempt
    _watchdog.add(attempt)
    if scope is not None:
        scope.attach(attempt)
    if _closing.is_set():
        attempt.abort(CANCELLED)
    return attempt


def end_attempt(attempt: Attempt) -> str | None:
    """Unbind and stop watching ``attempt``; returns how it was aborted, if it was."""
    outcome = attempt.finish()
    _current.attempt = None
    _watchdog.discard(attempt)
    scope = current_scope()
    if scope is not None:
        scope.attach(None)
    return outcome


def current_scope() -> CancelScope | None:
    return getattr(_current, "scope", None)


def set_scope(scope: CancelScope | None) -> None:
    _current.scope = scope


def cancelled() -> bool:
    """Whether this thread's fetch was cancelled, or the process is shutting down."""
    scope = current_scope()
    return _closing.is_set() or (scope is not None and scope.cancelled.is_set())


def wait_unless_cancelled(seconds: float) -> bool:
    """Sleep ``seconds`` (a retry's backoff); returns False at once when cancelled meanwhile."""
    if seconds <= 0:
        return not cancelled()
    scope = current_scope()
    deadline = time.monotonic() + seconds
    while True:
        if cancelled():
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        step = min(left, 0.1)  # the closing flag has no per-thread event: poll it
        if scope is not None:
            if scope.cancelled.wait(step):
                return False
        else:
            time.sleep(step)


def abort_in_flight() -> int:
    """Stop every request of this process on the wire now (e.g. after Ctrl-C in a notebook).

    Threads reading a response get an error at once; later requests run normally.
    Returns how many requests were on the wire.
    """
    return _watchdog.abort_all(CANCELLED)


def _at_exit() -> None:
    """Interpreter exit: stop the requests on the wire, and fail every later one before it connects."""
    _closing.set()
    abort_in_flight()


def _watch_current(sock: Any) -> None:
    attempt = getattr(_current, "attempt", None)
    if attempt is not None and sock is not None:
        attempt.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _watch_current(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch_current(self.sock)  # a kept-alive connection: connect() is not called again
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watch_current(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch_current(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


class WatchedAdapter(HTTPAdapter):
    """``HTTPAdapter`` whose connections report their sockets to the current attempt."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):  # (a SOCKS manager keeps its own connection classes)
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


def _register_exit_hook() -> None:
    # Python joins the threads of every ThreadPoolExecutor (dask's too) before running
    # ``atexit`` handlers, through ``threading._register_atexit``; those callbacks run in
    # reverse order of registration, so registering after concurrent.futures' own puts
    # this first: the reads those threads wait on fail at once instead of after minutes.
    import concurrent.futures.thread  # noqa: F401 - its exit hook must be registered before ours

    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_at_exit)
    else:  # pragma: no cover - every CPython we support has it
        import atexit

        atexit.register(_at_exit)


_register_exit_hook()
