"""The fetch pool: daemon threads started on demand and gone when idle.

Not a ``ThreadPoolExecutor`` on purpose: Python joins an executor's threads at exit, so a
thread blocked in a read kept the process alive after Ctrl-C; and an executor's threads
live as long as the executor, so one per credentials object or endpoint piled up. Here
threads are daemons, start only when work waits and no thread is idle, and leave after
``idle_seconds`` without work. A running fetch is cancellable: ``FetchFuture.cancel``
aborts its request on the wire (deadline.py) and its retries.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from eexarray.transport.deadline import CancelScope, set_scope

IDLE_SECONDS = 30.0


class FetchFuture(Future[Any]):
    """A ``Future`` whose ``cancel()`` also stops the fetch when it is already running."""

    def __init__(self) -> None:
        super().__init__()
        self.scope = CancelScope()

    def cancel(self) -> bool:
        if super().cancel():
            return True
        if not self.done():
            self.scope.cancel()  # running: abort its request; the future then fails
        return False


_Work = tuple[FetchFuture, Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class FetchPool:
    """At most ``max_workers`` daemon threads running submitted fetches."""

    def __init__(self, max_workers: int, name: str = "eexarray-fetch", idle_seconds: float = IDLE_SECONDS) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be positive, got {max_workers}")
        self.max_workers = max_workers
        self.name = name
        self.idle_seconds = idle_seconds
        self._queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._pending = 0  # submitted, not yet taken by a thread
        self._started = 0

    @property
    def thread_count(self) -> int:
        with self._lock:
            return self._threads

    def submit(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = FetchFuture()
        self._queue.put((future, function, args, kwargs))
        with self._lock:
            self._pending += 1
            start = self._pending > self._idle and self._threads < self.max_workers
            if start:
                self._threads += 1
                self._started += 1
                number = self._started
        if start:
            threading.Thread(target=self._work, name=f"{self.name}-{number}", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            try:
                future, function, args, kwargs = self._queue.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    if self._pending == 0:  # nothing submitted meanwhile: leave
                        self._threads -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
                self._pending -= 1
            if future.set_running_or_notify_cancel():
                _run(future, function, args, kwargs)
            del future, function, args, kwargs  # hold no request or response while idle


def _run(future: FetchFuture, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    set_scope(future.scope)
    try:
        result = function(*args, **kwargs)
    except BaseException as error:  # noqa: BLE001 - handed to the waiting caller
        future.set_exception(error)
    else:
        future.set_result(result)
    finally:
        set_scope(None)
