"""Request counters behind ``GET /_stats`` (thread-safe; reset by ``POST /_stats/reset``)."""

from __future__ import annotations

import collections
import threading
from typing import Any

PIXEL_LOG_SIZE = 10000


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        self._zero()

    def _zero(self) -> None:
        self.requests: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[str] = collections.Counter()
        self.faults: collections.Counter[str] = collections.Counter()
        self.user_projects: collections.Counter[str] = collections.Counter()  # X-Goog-User-Project values
        self.rejected = 0
        self.pixels_bytes = 0
        self.response_bytes = 0
        self.max_in_flight = self.in_flight
        self.pixel_requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=PIXEL_LOG_SIZE)

    def enter(self, limit: int | None) -> bool:
        """Count a request as in flight, unless ``limit`` requests already are (then False)."""
        with self._lock:
            if limit is not None and self.in_flight >= limit:
                self.rejected += 1
                return False
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def count_request(self, method: str) -> None:
        with self._lock:
            self.requests[method] += 1

    def count_user_project(self, project: str) -> None:
        with self._lock:
            self.user_projects[project] += 1

    def count_response(self, status: int | str, size: int) -> None:
        with self._lock:
            self.statuses[str(status)] += 1
            self.response_bytes += size

    def count_fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def count_pixels(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.pixels_bytes += record["bytes"]
            self.pixel_requests.append(record)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "statuses": dict(self.statuses),
                "faults": dict(self.faults),
                "user_projects": dict(self.user_projects),
                "rejected": self.rejected,
                "pixels_bytes": self.pixels_bytes,
                "response_bytes": self.response_bytes,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "pixel_requests": list(self.pixel_requests),
            }

    def reset(self) -> None:
        with self._lock:
            self._zero()
