"""``PixelSource``: read any window x time range x band subset of an opened asset.

It is the unit both the lazy (non-dask) arrays and the dask graph call. It is a
frozen dataclass of plain configuration, so it pickles small and carries no
session, token or pixels; requests go through the per-process transport state.

Three ways to fetch, chosen per read:

* stored images, one ``getPixels`` per planned request and image;
* stored images over several time steps, **packed**: one ``computePixels`` of
  ``ImageCollection.toBands`` carries up to 1024 (image, band) pairs, so a small
  window across 500 images costs one or two requests instead of 500. Used when
  the endpoint evaluates expressions; if it refuses, this process falls back to
  per-image ``getPixels`` for good;
* computed images (an expression per time step), ``computePixels``;
* same-day mosaics (``groupby``): a time step of several stored images is one
  ``computePixels`` of their ``ImageCollection.mosaic``, or one member of a packed read,
  so grouping never adds requests.

With ``resampling`` "bilinear"/"bicubic" (set only when the grid is not the native one),
every image is wrapped in ``Image.resample``, so stored images are read by ``computePixels``
too (packed reads, mosaics and computed images carry it inside their expressions).

Every ``computePixels`` (computed images, mosaics, packed or resampled reads) that Earth Engine answers
with "User memory limit exceeded." or "Computation timed out." splits itself into fewer
packed images or window halves and remembers the size that worked (``engine/splitting.py``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from eexarray.engine.splitting import SplitRequest, is_too_heavy
from eexarray.geometry import PixelGrid, Window
from eexarray.planning import DEFAULT_LIMITS, PlannedRequest, RequestLimits, expressions, plan_requests
from eexarray.planning.expressions import Member
from eexarray.transport import ConnectionConfig, EarthEngineRequestError, RestClient, RetryPolicy
from eexarray.transport.api import compute_pixels, get_pixels
from eexarray.transport.credentials import compute_project
from eexarray.transport.http import DEFAULT_RETRY
from eexarray.transport.session import endpoint_state

PACKING_MODES = ("auto", "never")
PACKING_FACTOR = 4
# Endpoints (per process) found not to evaluate packed expressions.
_no_packing: set[str] = set()
_no_packing_lock = threading.Lock()

# (field name in the response, time position in the read, band position)
Placement = tuple[str, int, int]


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
    expressions: tuple[str, ...] | None = None  # canonical JSON, one per time step, for computed images
    packing: str = "auto"
    # groupby: per time step, the stored images mosaicked into it (last on top) by the server.
    mosaics: tuple[tuple[str, ...], ...] | None = None
    # Computed requests found too heavy remember the size that worked under this name (one
    # opened Dataset; engine/splitting.py), kept by every selection of it.
    split_scope: str = ""
    # Not "nearest": the grid is not the native one and Earth Engine resamples every image with
    # Image.resample(mode), so all reads are computePixels (set only for such grids; OpenedAsset).
    resampling: str = "nearest"

    @property
    def project_path(self) -> str:
        return compute_project(self.config)

    def member(self, time: int) -> Member:
        """What time step ``time`` reads: a stored image, or the images of its mosaic."""
        if self.mosaics is not None and len(self.mosaics[time]) > 1:
            return self.mosaics[time]
        return self.images[time]

    def plan(self, window: Window, bands: Sequence[int]) -> list[PlannedRequest]:
        return plan_requests(window, self.dtypes, bands, self.limits)

    def packs(self, times: Sequence[int], window: Window, bands: Sequence[int]) -> bool:
        """Pack this read? Only when at least ``PACKING_FACTOR`` images fit in one request:
        packing pays off for small windows, while large windows are already one full
        request per image (and computePixels costs more quota than getPixels)."""
        if self.expressions is not None or self.packing != "auto" or len(times) < 2:
            return False
        if self.config.endpoint in _no_packing:
            return False
        one_image = self.limits.request_bytes(window.height, window.width, [self.dtypes[b] for b in bands])
        return one_image * PACKING_FACTOR <= self.limits.max_bytes

    def images_per_packed_request(self, window: Window, bands: Sequence[int]) -> int:
        """How many images of ``window`` x ``bands`` one packed request carries (0: no packing here)."""
        if self.expressions is not None or self.packing != "auto" or self.config.endpoint in _no_packing:
            return 0
        item_bytes = sum(np.dtype(self.dtypes[b]).itemsize for b in bands)
        pixels = window.height * window.width
        if not bands or not pixels or max(window.height, window.width) > self.limits.max_side:
            return 0
        by_bytes = (self.limits.max_bytes // pixels - self.limits.mask_bytes_per_pixel) // item_bytes
        capacity = min(by_bytes, self.limits.max_bands // len(bands))
        return capacity if capacity >= PACKING_FACTOR else 0

    def requests_for(self, times: Sequence[int], window: Window, bands: Sequence[int]) -> int:
        """How many requests a read makes (for sizing look-ahead)."""
        if self.packs(times, window, bands):
            dtypes = [self.dtypes[b] for _ in times for b in bands]
            return len(plan_requests(window, dtypes, None, self.limits))
        return len(times) * len(self.plan(window, bands))

    def start_read(self, times: Sequence[int], window: Window, bands: Sequence[int]) -> PendingRead:
        """Submit every request of the read to the process's fetch pool; returns at once."""
        bands = tuple(bands)
        if self.packs(times, window, bands):
            submissions = self._submit_packed(times, window, bands)
        else:
            submissions = self._submit_per_image(times, window, bands)
        return PendingRead(self, times, window, bands, submissions)

    def read(self, times: Sequence[int], window: Window, bands: Sequence[int]) -> dict[int, np.ndarray]:
        """Pixels of ``bands`` as ``{band position: array (time, rows, cols)}``."""
        return self.start_read(times, window, bands).result()

    # -- submission ---------------------------------------------------------------------
    def _submit_per_image(
        self, times: Sequence[int], window: Window, bands: tuple[int, ...]
    ) -> list[tuple[Future, Window, list[Placement]]]:
        state = endpoint_state(self.config)
        client = RestClient(self.config, self.retry)
        submissions = []
        for position, time in enumerate(times):
            for request in self.plan(window, bands):
                band_ids = [self.band_ids[b] for b in request.bands]
                dtypes = [np.dtype(self.dtypes[b]) for b in request.bands]
                if self.expressions is None:
                    future = state.pool.submit(
                        self._fetch_member, client, self.member(time), request.window, band_ids, dtypes
                    )
                else:
                    future = state.pool.submit(self._fetch_computed, client, time, request.window, band_ids, dtypes)
                placements = [(self.band_ids[b], position, b) for b in request.bands]
                submissions.append((future, request.window, placements))
        return submissions

    def _submit_packed(
        self, times: Sequence[int], window: Window, bands: tuple[int, ...]
    ) -> list[tuple[Future, Window, list[Placement]]]:
        state = endpoint_state(self.config)
        client = RestClient(self.config, self.retry)
        virtual = [(position, band) for position in range(len(times)) for band in bands]
        dtypes = [self.dtypes[band] for _, band in virtual]
        submissions = []
        for request in plan_requests(window, dtypes, None, self.limits):
            members: list[tuple[int, list[int]]] = []  # (time position, bands), in order
            for index in request.bands:
                position, band = virtual[index]
                if members and members[-1][0] == position:
                    members[-1][1].append(band)
                else:
                    members.append((position, [band]))
            images = [(self.member(times[p]), [self.band_ids[b] for b in bs]) for p, bs in members]
            names = expressions.packed_band_ids(images)
            placements = [
                (name, position, band)
                for name, (position, band) in zip(names, ((p, b) for p, bs in members for b in bs))
            ]
            future = state.pool.submit(
                self._fetch_packed,
                client,
                images,
                names,
                request.window,
                [np.dtype(self.dtypes[b]) for _, bs in members for b in bs],
            )
            submissions.append((future, request.window, placements))
        return submissions

    def _fetch_member(
        self,
        client: RestClient,
        member: Member,
        window: Window,
        band_ids: Sequence[str],
        dtypes: Sequence[np.dtype],
    ) -> dict[str, np.ndarray]:
        """One time step on ``window``: ``getPixels`` of a stored image, ``computePixels`` of a mosaic
        or of a resampled image."""
        if isinstance(member, str) and self.resampling == "nearest":
            grid = self.grid.window(window)
            return get_pixels(client, member, grid, band_ids, dtypes, file_format=self.file_format)
        if isinstance(member, str):
            expression = expressions.stored_image(member, band_ids, self.resampling)
            what = f"{member} resampled ({self.resampling})"
        else:
            expression = expressions.mosaic_image(member, band_ids, self.resampling)
            what = f"a mosaic of {len(member)} images"
        return self._split_computed(client, expression, window, band_ids, dtypes, what)

    def _fetch_computed(
        self, client: RestClient, time: int, window: Window, band_ids: Sequence[str], dtypes: Sequence[np.dtype]
    ) -> dict[str, np.ndarray]:
        """One time step of a computed image (its expression) on ``window``."""
        expression = expressions.resampled(json.loads(self.expressions[time]), self.resampling)  # type: ignore[index]
        return self._split_computed(client, expression, window, band_ids, dtypes, "a computed image")

    # -- computed requests that split themselves (engine/splitting.py) --------------------------
    def _split_computed(
        self,
        client: RestClient,
        expression: dict,
        window: Window,
        band_ids: Sequence[str],
        dtypes: Sequence[np.dtype],
        what: str,
    ) -> dict[str, np.ndarray]:
        """``computePixels`` of one image on ``window``, in window halves if Earth Engine finds it too heavy."""

        def fetch(part: Window, first: int, stop: int) -> dict[str, np.ndarray]:
            grid = self.grid.window(part)
            return compute_pixels(
                client,
                self.project_path,
                expression,
                grid,
                band_ids,
                dtypes,
                file_format=self.file_format,
                what=f"computePixels of {what}, {grid.width}x{grid.height} px",
            )

        request = SplitRequest(
            fetch, [list(band_ids)], dict(zip(band_ids, dtypes)), self.split_scope, f"computePixels of {what}"
        )
        return request.run(window)

    def _fetch_packed(
        self,
        client: RestClient,
        images: list[tuple[Member, list[str]]],
        names: list[str],
        window: Window,
        dtypes: list[np.dtype],
    ) -> dict[str, np.ndarray]:
        """The packed request; too heavy for Earth Engine, it splits into fewer images, then window halves."""
        groups: list[list[str]] = []
        starts: list[int] = []
        cursor = 0
        for _, band_ids in images:
            starts.append(cursor)
            groups.append(names[cursor : cursor + len(band_ids)])
            cursor += len(band_ids)

        def fetch(part: Window, first: int, stop: int) -> dict[str, np.ndarray]:
            lo, hi = starts[first], starts[first] + sum(len(group) for group in groups[first:stop])
            return self._fetch_packed_once(client, images[first:stop], names[lo:hi], part, dtypes[lo:hi])

        what = f"packed computePixels of {len(images)} images"
        request = SplitRequest(fetch, groups, dict(zip(names, dtypes)), self.split_scope, what)
        return request.run(window)

    def _fetch_packed_once(
        self,
        client: RestClient,
        images: list[tuple[Member, list[str]]],
        names: list[str],
        window: Window,
        dtypes: list[np.dtype],
    ) -> dict[str, np.ndarray]:
        """One packed request (or per-image requests when it holds one image, or packing is refused);
        results keyed by ``names``."""
        grid = self.grid.window(window)
        if len(images) > 1 and self.config.endpoint not in _no_packing:
            # Band names as toBands gives them for this request, then renamed to ``names``
            # (a split request numbers its images from 0 again).
            packed = expressions.packed_band_ids(images)
            try:
                fetched = compute_pixels(
                    client,
                    self.project_path,
                    expressions.packed_time_series(images, self.resampling),
                    grid,
                    packed,
                    dtypes,
                    file_format=self.file_format,
                    what=f"packed computePixels of {len(images)} images",
                )
                return {name: fetched[band] for name, band in zip(names, packed)}
            except EarthEngineRequestError as error:
                if error.status not in (400, 404, 405, 501) or is_too_heavy(error):
                    raise  # too heavy: the caller splits it; packing itself works
                with _no_packing_lock:
                    _no_packing.add(self.config.endpoint)
        # One image, or an endpoint that does not pack: one request per time step, same placements.
        result: dict[str, np.ndarray] = {}
        cursor = 0
        for image, band_ids in images:
            count = len(band_ids)
            fetched = self._fetch_member(client, image, window, band_ids, dtypes[cursor : cursor + count])
            for name, band_id in zip(names[cursor : cursor + count], band_ids):
                result[name] = fetched[band_id]
            cursor += count
        return result


class PendingRead:
    """The futures of one read; ``result()`` assembles them (and re-raises the first error)."""

    def __init__(
        self,
        source: PixelSource,
        times: Sequence[int],
        window: Window,
        bands: tuple[int, ...],
        submissions: list[tuple[Future, Window, list[Placement]]],
    ) -> None:
        self.source = source
        self.times = times
        self.window = window
        self.bands = bands
        self.submissions = submissions
        self.request_count = len(submissions)
        self._result: dict[int, np.ndarray] | None = None
        self._lock = threading.Lock()

    def result(self) -> dict[int, np.ndarray]:
        with self._lock:
            if self._result is None:
                try:
                    self._result = self._assemble()
                except BaseException:
                    self.cancel()
                    raise
                self.submissions = []
            return self._result

    def _assemble(self) -> dict[int, np.ndarray]:
        if len(self.submissions) == 1 and len(self.times) == 1 and self.submissions[0][1] == self.window:
            # One request is the whole read: its decoded bands (views into the writable
            # response buffer) are the result, without another copy.
            future, _, placements = self.submissions[0]
            fetched = future.result()
            return {band: fetched[name][np.newaxis] for name, _, band in placements}
        arrays = {
            band: np.empty((len(self.times), *self.window.shape), dtype=self.source.dtypes[band]) for band in self.bands
        }
        for future, request_window, placements in self.submissions:
            fetched = future.result()
            rows, cols = request_window.relative_to(self.window).slices()
            for name, position, band in placements:
                arrays[band][position, rows, cols] = fetched[name]
        return arrays

    def cancel(self) -> None:
        for future, _, _ in self.submissions:
            future.cancel()
