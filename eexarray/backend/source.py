"""``PixelSource``: read any window x time range x band subset of an opened asset.

It is the unit both the lazy (non-dask) arrays and the dask graph call. It is a
frozen dataclass of plain configuration, so it pickles small and carries no
session, token or pixels; requests go through the per-process transport state.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from eexarray.geometry import PixelGrid, Window
from eexarray.planning import DEFAULT_LIMITS, PlannedRequest, RequestLimits, plan_requests
from eexarray.transport import ConnectionConfig, RestClient, RetryPolicy
from eexarray.transport.api import get_pixels
from eexarray.transport.http import DEFAULT_RETRY
from eexarray.transport.session import endpoint_state


@dataclass(frozen=True)
class PixelSource:
    """Images (one per time step) sampled on one output ``grid`` with fixed bands and dtypes."""

    config: ConnectionConfig
    images: tuple[str, ...]
    grid: PixelGrid
    band_ids: tuple[str, ...]
    dtypes: tuple[str, ...]
    file_format: str = "NPY"
    limits: RequestLimits = DEFAULT_LIMITS
    retry: RetryPolicy = DEFAULT_RETRY

    def plan(self, window: Window, bands: Sequence[int]) -> list[PlannedRequest]:
        return plan_requests(window, self.dtypes, bands, self.limits)

    def start_read(self, times: range, window: Window, bands: Sequence[int]) -> PendingRead:
        """Submit every request of the read to the process's fetch pool; returns at once."""
        state = endpoint_state(self.config)
        client = RestClient(self.config, self.retry)
        planned = self.plan(window, bands)
        submissions = []
        for position, time in enumerate(times):
            for request in planned:
                future = state.pool.submit(
                    get_pixels,
                    client,
                    self.images[time],
                    self.grid.window(request.window),
                    [self.band_ids[b] for b in request.bands],
                    [np.dtype(self.dtypes[b]) for b in request.bands],
                    file_format=self.file_format,
                )
                submissions.append((position, request, future))
        return PendingRead(self, len(times), window, tuple(bands), submissions)

    def read(self, times: range, window: Window, bands: Sequence[int]) -> dict[int, np.ndarray]:
        """Pixels of ``bands`` as ``{band position: array (time, rows, cols)}``."""
        return self.start_read(times, window, bands).result()


class PendingRead:
    """The futures of one read; ``result()`` assembles them (and re-raises the first error)."""

    def __init__(
        self,
        source: PixelSource,
        count: int,
        window: Window,
        bands: tuple[int, ...],
        submissions: list[tuple[int, PlannedRequest, Future]],
    ) -> None:
        self.source = source
        self.count = count
        self.window = window
        self.bands = bands
        self.submissions = submissions
        self._result: dict[int, np.ndarray] | None = None

    def result(self) -> dict[int, np.ndarray]:
        if self._result is None:
            try:
                arrays = {
                    band: np.empty((self.count, *self.window.shape), dtype=self.source.dtypes[band])
                    for band in self.bands
                }
                for position, request, future in self.submissions:
                    fetched = future.result()
                    rows, cols = request.window.relative_to(self.window).slices()
                    for band in request.bands:
                        arrays[band][position, rows, cols] = fetched[self.source.band_ids[band]]
            except BaseException:
                self.cancel()
                raise
            self._result = arrays
            self.submissions = []
        return self._result

    def cancel(self) -> None:
        for _, _, future in self.submissions:
            future.cancel()
