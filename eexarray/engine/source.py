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

With ``masks`` (exact masks, what ``mask_and_scale=True`` uses) every read is a
``computePixels`` whose images carry their mask bits next to their bands (see
planning/expressions.py): a read returns masked arrays, so a masked pixel is never
a number and a valid 0 is never missing. Same number of requests (stored images:
computePixels instead of getPixels, packing alike); each request holds one more
byte per pixel and image per 8 bands, which the planning counts.

With ``resampling`` "bilinear"/"bicubic" (set only when the grid is not the native one),
every image is wrapped in ``Image.resample``, so stored images are read by ``computePixels``
too (packed reads, mosaics and computed images carry it inside their expressions).

Every ``computePixels`` (computed images, mosaics, masked, packed or resampled reads) that
Earth Engine answers with "User memory limit exceeded." or "Computation timed out." splits
itself into fewer packed images or window halves and remembers the size that worked
(``engine/splitting.py``).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from eexarray.engine.splitting import SplitRequest, is_too_heavy
from eexarray.geometry import PixelGrid, Window
from eexarray.planning import DEFAULT_LIMITS, PlannedRequest, RequestLimits, expressions, plan_requests
from eexarray.planning.expressions import Expression, Member
from eexarray.transport import ConnectionConfig, EarthEngineRequestError, RestClient, RetryPolicy
from eexarray.transport.api import compute_pixels, get_pixels
from eexarray.transport.cache import RequestCache
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
# (mask field name in the response, time position, the band positions of its bits in bit order)
MaskPlacement = tuple[str, int, tuple[int, ...]]


GET_PIXELS = "getPixels"
COMPUTE_PIXELS = "computePixels"


@dataclass(frozen=True)
class RequestShape:
    """What one request of a read is, without making it (for ``plan()``: counts, bytes, limits)."""

    method: str  # GET_PIXELS or COMPUTE_PIXELS
    height: int
    width: int
    images: int  # images in the request (> 1: packed)
    pixel_bytes: int  # uncompressed pixel data of every band (mask bands included)
    limit_bytes: int  # what the per-request limit counts: pixel data plus one mask byte per pixel


def _members(request: PlannedRequest, virtual: Sequence[tuple[int, int]]) -> list[tuple[int, list[int]]]:
    """A packed request's (time position, band positions) in order, from its virtual band indices."""
    members: list[tuple[int, list[int]]] = []
    for index in request.bands:
        position, band = virtual[index]
        if members and members[-1][0] == position:
            members[-1][1].append(band)
        else:
            members.append((position, [band]))
    return members


class ExactMasksUnavailableError(RuntimeError):
    """The endpoint does not evaluate expressions, so masks cannot be fetched with the pixels."""


@dataclass(frozen=True)
class Submission:
    """One submitted request: its future, its window and where its fields go."""

    future: Future
    window: Window
    placements: list[Placement]
    masks: list[MaskPlacement] = dataclasses.field(default_factory=list)


def mask_limits(limits: RequestLimits, band_count: int) -> RequestLimits:
    """Limits for requests carrying mask bands: they count ``ceil(bands / 8)`` more bytes per
    pixel and at most 8/9 of the band budget goes to data bands (the rest to their masks)."""
    max_bands = max(expressions.MASK_BITS, limits.max_bands * 8 // 9 // expressions.MASK_BITS * expressions.MASK_BITS)
    extra = expressions.mask_band_count(min(band_count, max_bands))
    return dataclasses.replace(limits, max_bands=max_bands, mask_bytes_per_pixel=limits.mask_bytes_per_pixel + extra)


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
    masks: bool = False  # exact masks: mask bits fetched with the pixels, reads return masked arrays
    # groupby: per time step, the stored images mosaicked into it (last on top) by the server.
    mosaics: tuple[tuple[str, ...], ...] | None = None
    # The opt-in response cache, and each image's version (its updateTime) that keys it;
    # an image without a known version is never answered from the cache.
    request_cache: RequestCache | None = None
    versions: tuple[str | None, ...] | None = None
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

    def version_of(self, times: Sequence[int]) -> str | None:
        """The cache version of a request reading ``times`` (None: not cacheable)."""
        if self.request_cache is None or self.versions is None:
            return None
        versions = [self.versions[time] for time in times]
        if any(version is None for version in versions):
            return None
        return "|".join(versions)  # type: ignore[arg-type]  # checked above: no None

    def client(self) -> RestClient:
        return RestClient(self.config, self.retry, self.request_cache)

    def planning_limits(self, band_count: int) -> RequestLimits:
        """The limits requests of ``band_count`` bands of one image are planned with."""
        return mask_limits(self.limits, band_count) if self.masks else self.limits

    def plan(self, window: Window, bands: Sequence[int]) -> list[PlannedRequest]:
        return plan_requests(window, self.dtypes, bands, self.planning_limits(len(bands)))

    def packs(self, times: Sequence[int], window: Window, bands: Sequence[int]) -> bool:
        """Pack this read? Only when at least ``PACKING_FACTOR`` images fit in one request:
        packing pays off for small windows, while large windows are already one full
        request per image (and computePixels costs more quota than getPixels)."""
        if self.expressions is not None or self.packing != "auto" or len(times) < 2:
            return False
        if self.config.endpoint in _no_packing:
            return False
        if self.masks:
            return self.images_per_packed_request(window, bands) >= PACKING_FACTOR
        one_image = self.limits.request_bytes(window.height, window.width, [self.dtypes[b] for b in bands])
        return one_image * PACKING_FACTOR <= self.limits.max_bytes

    def images_per_packed_request(self, window: Window, bands: Sequence[int]) -> int:
        """How many images of ``window`` x ``bands`` one packed request carries (0: no packing here)."""
        if self.expressions is not None or self.packing != "auto" or self.config.endpoint in _no_packing:
            return 0
        # With masks each image also carries its mask bands (one byte per pixel per 8 bands).
        mask_bands = expressions.mask_band_count(len(bands)) if self.masks else 0
        item_bytes = sum(np.dtype(self.dtypes[b]).itemsize for b in bands) + mask_bands
        pixels = window.height * window.width
        if not bands or not pixels or max(window.height, window.width) > self.limits.max_side:
            return 0
        by_bytes = (self.limits.max_bytes // pixels - self.limits.mask_bytes_per_pixel) // item_bytes
        capacity = min(by_bytes, self.limits.max_bands // (len(bands) + mask_bands))
        return capacity if capacity >= PACKING_FACTOR else 0

    def requests_for(self, times: Sequence[int], window: Window, bands: Sequence[int]) -> int:
        """How many requests a read makes (for sizing look-ahead)."""
        return len(self.describe_read(times, window, bands))

    def describe_read(self, times: Sequence[int], window: Window, bands: Sequence[int]) -> list[RequestShape]:
        """The requests ``start_read`` submits for this read, described (no request is made).

        Same branches and planning functions as the submission below, request for request.
        """
        shapes = []
        if self.packs(times, window, bands):
            if self.masks:
                dtypes = [self.dtypes[b] for b in bands]
                masks = expressions.mask_band_count(len(bands))
                for batch in self._packed_batches(times, window, bands):
                    shapes.append(
                        self._shape(COMPUTE_PIXELS, window, dtypes * len(batch), len(batch), masks * len(batch))
                    )
                return shapes
            virtual = [(position, band) for position in range(len(times)) for band in bands]
            all_dtypes = [self.dtypes[band] for _, band in virtual]
            for request in plan_requests(window, all_dtypes, None, self.limits):
                images = len(_members(request, virtual))
                # A packed request of one stored image is fetched with getPixels (_fetch_packed).
                single = (
                    images == 1
                    and self.resampling == "nearest"
                    and isinstance(self.member(times[_members(request, virtual)[0][0]]), str)
                )
                method = GET_PIXELS if single else COMPUTE_PIXELS
                shapes.append(self._shape(method, request.window, [all_dtypes[i] for i in request.bands], images))
            return shapes
        for time in times:
            stored = (
                self.expressions is None
                and not self.masks
                and self.resampling == "nearest"
                and isinstance(self.member(time), str)
            )
            method = GET_PIXELS if stored else COMPUTE_PIXELS
            for request in self.plan(window, bands):
                masks = expressions.mask_band_count(len(request.bands)) if self.masks else 0
                shapes.append(self._shape(method, request.window, [self.dtypes[b] for b in request.bands], 1, masks))
        return shapes

    def _shape(self, method: str, window: Window, dtypes: Sequence[str], images: int, masks: int = 0) -> RequestShape:
        with_masks = [*dtypes, *["uint8"] * masks]
        pixels = window.height * window.width
        pixel_bytes = pixels * sum(np.dtype(dtype).itemsize for dtype in with_masks)
        limit_bytes = self.limits.request_bytes(window.height, window.width, with_masks)
        return RequestShape(method, window.height, window.width, images, pixel_bytes, limit_bytes)

    def _packed_batches(self, times: Sequence[int], window: Window, bands: Sequence[int]) -> list[range]:
        """With masks, a packed read is whole images (time positions) per request, each request
        over the whole window: ``packs`` made sure at least ``PACKING_FACTOR`` images fit."""
        capacity = self.images_per_packed_request(window, bands)
        return [range(start, min(len(times), start + capacity)) for start in range(0, len(times), capacity)]

    def start_read(self, times: Sequence[int], window: Window, bands: Sequence[int]) -> PendingRead:
        """Submit every request of the read to the process's fetch pool; returns at once."""
        bands = tuple(bands)
        if self.packs(times, window, bands):
            if self.masks:
                submissions = self._submit_packed_with_masks(times, window, bands)
            else:
                submissions = self._submit_packed(times, window, bands)
        else:
            submissions = self._submit_per_image(times, window, bands)
        return PendingRead(self, times, window, bands, submissions)

    def read(self, times: Sequence[int], window: Window, bands: Sequence[int]) -> dict[int, np.ndarray]:
        """Pixels of ``bands`` as ``{band position: array (time, rows, cols)}``.

        With ``masks`` the arrays are ``numpy.ma.MaskedArray`` (mask True = missing).
        """
        return self.start_read(times, window, bands).result()

    # -- submission ---------------------------------------------------------------------
    def _submit_per_image(self, times: Sequence[int], window: Window, bands: tuple[int, ...]) -> list[Submission]:
        state = endpoint_state(self.config)
        client = self.client()
        submissions = []
        for position, time in enumerate(times):
            version = self.version_of([time])
            member = self.member(time)
            for request in self.plan(window, bands):
                band_ids = [self.band_ids[b] for b in request.bands]
                dtypes = [np.dtype(self.dtypes[b]) for b in request.bands]
                placements = [(self.band_ids[b], position, b) for b in request.bands]
                masks: list[MaskPlacement] = []
                if self.masks:
                    mask_names = expressions.mask_band_names(band_ids)
                    bits = expressions.MASK_BITS
                    masks = [
                        (name, position, request.bands[slot * bits : (slot + 1) * bits])
                        for slot, name in enumerate(mask_names)
                    ]
                    expression = (
                        expressions.stored_with_masks(member, band_ids, self.resampling)
                        if self.expressions is None
                        else expressions.with_masks(
                            expressions.resampled(json.loads(self.expressions[time]), self.resampling), band_ids
                        )
                    )
                    future = state.pool.submit(
                        self._split_computed,
                        client,
                        expression,
                        request.window,
                        [*band_ids, *mask_names],
                        [*dtypes, *[np.dtype("uint8")] * len(mask_names)],
                        f"{self.images[time]} with masks",
                        version,
                    )
                elif self.expressions is None:
                    future = state.pool.submit(
                        self._fetch_member, client, member, request.window, band_ids, dtypes, version
                    )
                else:
                    expression = expressions.resampled(json.loads(self.expressions[time]), self.resampling)
                    future = state.pool.submit(
                        self._split_computed,
                        client,
                        expression,
                        request.window,
                        band_ids,
                        dtypes,
                        "a computed image",
                        version,
                    )
                submissions.append(Submission(future, request.window, placements, masks))
        return submissions

    def _submit_packed(self, times: Sequence[int], window: Window, bands: tuple[int, ...]) -> list[Submission]:
        state = endpoint_state(self.config)
        client = self.client()
        virtual = [(position, band) for position in range(len(times)) for band in bands]
        dtypes = [self.dtypes[band] for _, band in virtual]
        submissions = []
        for request in plan_requests(window, dtypes, None, self.limits):
            members = _members(request, virtual)
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
                [times[p] for p, _ in members],
                names,
                request.window,
                [np.dtype(self.dtypes[b]) for _, bs in members for b in bs],
            )
            submissions.append(Submission(future, request.window, placements))
        return submissions

    def _submit_packed_with_masks(
        self, times: Sequence[int], window: Window, bands: tuple[int, ...]
    ) -> list[Submission]:
        state = endpoint_state(self.config)
        client = self.client()
        band_ids = [self.band_ids[b] for b in bands]
        bits = expressions.MASK_BITS
        submissions = []
        for batch in self._packed_batches(times, window, bands):
            images = [(self.member(times[position]), band_ids) for position in batch]
            placements: list[Placement] = []
            masks: list[MaskPlacement] = []
            for position, (data_names, mask_names) in zip(batch, expressions.packed_masked_band_ids(images)):
                placements += [(name, position, band) for name, band in zip(data_names, bands)]
                masks += [
                    (name, position, bands[slot * bits : (slot + 1) * bits]) for slot, name in enumerate(mask_names)
                ]
            future = state.pool.submit(
                self._fetch_packed_with_masks,
                client,
                images,
                [times[position] for position in batch],
                window,
                [np.dtype(self.dtypes[b]) for b in bands],
            )
            submissions.append(Submission(future, window, placements, masks))
        return submissions

    # -- fetching (in the pool's threads) -----------------------------------------------------
    def _fetch_member(
        self,
        client: RestClient,
        member: Member,
        window: Window,
        band_ids: Sequence[str],
        dtypes: Sequence[np.dtype],
        version: str | None = None,
    ) -> dict[str, np.ndarray]:
        """One time step on ``window``: ``getPixels`` of a stored image, ``computePixels`` of a mosaic
        or of a resampled image."""
        if isinstance(member, str) and self.resampling == "nearest":
            grid = self.grid.window(window)
            return get_pixels(client, member, grid, band_ids, dtypes, file_format=self.file_format, version=version)
        if isinstance(member, str):
            expression = expressions.stored_image(member, band_ids, self.resampling)
            what = f"{member} resampled ({self.resampling})"
        else:
            expression = expressions.mosaic_image(member, band_ids, self.resampling)
            what = f"a mosaic of {len(member)} images"
        return self._split_computed(client, expression, window, band_ids, dtypes, what, version)

    def _compute_once(
        self,
        client: RestClient,
        expression: Expression,
        grid: PixelGrid,
        names: Sequence[str],
        dtypes: Sequence[np.dtype],
        what: str,
        version: str | None,
    ) -> dict[str, np.ndarray]:
        """One ``computePixels``; with exact masks, an endpoint that cannot evaluate it is a clear error."""
        try:
            return compute_pixels(
                client,
                self.project_path,
                expression,
                grid,
                list(names),
                list(dtypes),
                file_format=self.file_format,
                what=what,
                version=version,
            )
        except EarthEngineRequestError as error:
            if not self.masks or error.status not in (404, 405, 501):
                raise
            raise ExactMasksUnavailableError(
                f"{self.config.endpoint} does not evaluate expressions (computePixels answered {error.status}), "
                "so masks cannot be fetched with the pixels; open with mask_and_scale=False for the values as "
                "getPixels sends them (masked pixels as 0)"
            ) from error

    # -- computed requests that split themselves (engine/splitting.py) --------------------------
    def _split_computed(
        self,
        client: RestClient,
        expression: Expression,
        window: Window,
        names: Sequence[str],
        dtypes: Sequence[np.dtype],
        what: str,
        version: str | None = None,
    ) -> dict[str, np.ndarray]:
        """``computePixels`` of one image on ``window``, in window halves if Earth Engine finds it too heavy."""

        def fetch(part: Window, first: int, stop: int) -> dict[str, np.ndarray]:
            grid = self.grid.window(part)
            return self._compute_once(
                client,
                expression,
                grid,
                names,
                dtypes,
                f"computePixels of {what}, {grid.width}x{grid.height} px",
                version,
            )

        request = SplitRequest(
            fetch, [list(names)], dict(zip(names, dtypes)), self.split_scope, f"computePixels of {what}"
        )
        return request.run(window)

    def _fetch_packed(
        self,
        client: RestClient,
        images: list[tuple[Member, list[str]]],
        times: list[int],
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
            return self._fetch_packed_once(
                client, images[first:stop], times[first:stop], names[lo:hi], part, dtypes[lo:hi]
            )

        what = f"packed computePixels of {len(images)} images"
        request = SplitRequest(fetch, groups, dict(zip(names, dtypes)), self.split_scope, what)
        return request.run(window)

    def _fetch_packed_once(
        self,
        client: RestClient,
        images: list[tuple[Member, list[str]]],
        times: list[int],
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
                    version=self.version_of(times),
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
        for (image, band_ids), time in zip(images, times):
            count = len(band_ids)
            fetched = self._fetch_member(
                client, image, window, band_ids, dtypes[cursor : cursor + count], self.version_of([time])
            )
            for name, band_id in zip(names[cursor : cursor + count], band_ids):
                result[name] = fetched[band_id]
            cursor += count
        return result

    def _fetch_packed_with_masks(
        self,
        client: RestClient,
        images: list[tuple[Member, list[str]]],
        times: list[int],
        window: Window,
        dtypes: list[np.dtype],
    ) -> dict[str, np.ndarray]:
        """A packed read with each image's mask bands (``expressions.packed_with_masks``), keyed by
        the names of the whole batch; too heavy for Earth Engine, it splits into fewer images,
        then window halves (each part numbers its images from 0: renamed back here)."""
        batch_names = expressions.packed_masked_band_ids(images)
        groups = [data + masks for data, masks in batch_names]
        mask_dtypes = [np.dtype("uint8")] * expressions.mask_band_count(len(dtypes))
        item_dtypes = [*dtypes, *mask_dtypes]
        name_dtypes = {name: dtype for group in groups for name, dtype in zip(group, item_dtypes)}

        def fetch(part: Window, first: int, stop: int) -> dict[str, np.ndarray]:
            subset = images[first:stop]
            local = [data + masks for data, masks in expressions.packed_masked_band_ids(subset)]
            grid = self.grid.window(part)
            fetched = self._compute_once(
                client,
                expressions.packed_with_masks(subset, self.resampling),
                grid,
                [name for group in local for name in group],
                item_dtypes * len(subset),
                f"packed computePixels of {len(subset)} images with masks",
                self.version_of(times[first:stop]),
            )
            return {
                name: fetched[mine] for group, own in zip(groups[first:stop], local) for name, mine in zip(group, own)
            }

        what = f"packed computePixels of {len(images)} images with masks"
        return SplitRequest(fetch, groups, name_dtypes, self.split_scope, what).run(window)


def _all_valid(bits: np.ndarray, count: int) -> bool:
    """Whether a mask band's ``count`` bits are set everywhere (no pixel of its bands masked):
    one pass over one byte per pixel, which saves building and applying ``count`` masks."""
    return bits.size == 0 or int(bits.min()) == (1 << count) - 1


def _missing(bits: np.ndarray, bit: int) -> np.ndarray:
    """Where bit ``bit`` of the mask band ``bits`` is 0: the band is masked there."""
    return (bits & np.uint8(1 << bit)) == 0


class PendingRead:
    """The futures of one read; ``result()`` assembles them (and re-raises the first error)."""

    def __init__(
        self,
        source: PixelSource,
        times: Sequence[int],
        window: Window,
        bands: tuple[int, ...],
        submissions: list[Submission],
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
        masked = self.source.masks
        if len(self.submissions) == 1 and len(self.times) == 1 and self.submissions[0].window == self.window:
            # One request is the whole read: its decoded bands (views into the writable
            # response buffer) are the result, without another copy.
            submission = self.submissions[0]
            fetched = submission.future.result()
            result = {band: fetched[name][np.newaxis] for name, _, band in submission.placements}
            if masked:
                for name, _, slot_bands in submission.masks:
                    bits = fetched[name][np.newaxis]
                    if _all_valid(bits, len(slot_bands)):
                        continue  # nothing masked: plain arrays, no mask to build or apply
                    for bit, band in enumerate(slot_bands):
                        result[band] = np.ma.MaskedArray(result[band], _missing(bits, bit))
            return result
        shape = (len(self.times), *self.window.shape)
        arrays = {band: np.empty(shape, dtype=self.source.dtypes[band]) for band in self.bands}
        missing: dict[int, np.ndarray] = {}  # only bands with a masked pixel somewhere
        for submission in self.submissions:
            fetched = submission.future.result()
            rows, cols = submission.window.relative_to(self.window).slices()
            for name, position, band in submission.placements:
                arrays[band][position, rows, cols] = fetched[name]
            for name, position, slot_bands in submission.masks:
                bits = fetched[name]
                if _all_valid(bits, len(slot_bands)):
                    continue
                for bit, band in enumerate(slot_bands):
                    if band not in missing:
                        missing[band] = np.zeros(shape, dtype=bool)
                    missing[band][position, rows, cols] = _missing(bits, bit)
        if masked:
            return {
                band: np.ma.MaskedArray(arrays[band], missing[band]) if band in missing else arrays[band]
                for band in self.bands
            }
        return arrays

    def cancel(self) -> None:
        for submission in self.submissions:
            submission.future.cancel()
