"""What a compute will cost before it runs: requests by method, bytes, the largest request, a time. Pure.

``ds.eexarray.plan()`` hands this module the reads a compute would run (the same
``ReadPlan`` the dask graph holds, or the reads of lazily indexed variables) and gets
a ``ComputePlan`` back. Each read is described by ``PixelSource.describe_read``, which
follows the branches of the submission request for request, so the counts here are
the requests the compute makes - no pixel request is made to find them.

The time estimate is a stated model, not a measurement: requests go out in waves of
``max_concurrency`` (the engine keeps that many in flight), each wave costs
``latency`` seconds, and the pixel bytes cross one link at ``bandwidth`` bytes/s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from eexarray.engine.source import COMPUTE_PIXELS, GET_PIXELS, PixelSource
from eexarray.geometry import Window

DEFAULT_LATENCY = 0.5  # seconds per request, server time included (a small getPixels; large ones take longer)
DEFAULT_BANDWIDTH = 100e6  # bytes per second for the whole download (about a 1 Gbit/s link)


@dataclass(frozen=True)
class Read:
    """One call of the engine: time steps x window x bands of one source."""

    source: PixelSource
    times: Sequence[int]
    window: Window
    bands: tuple[int, ...]


@dataclass(frozen=True)
class ComputePlan:
    """The requests a compute makes and what they cost, found without making any.

    ``get_pixels``/``compute_pixels``: requests by method; ``packed_images``: images
    carried by packed ``computePixels`` requests (a time series read together);
    ``pixel_bytes``: uncompressed pixel data fetched; ``largest_request_bytes``: the
    largest request as Earth Engine's limit counts it (pixel data plus one mask byte a
    pixel), against ``request_limit_bytes`` (48 MiB). ``estimated_seconds`` follows the
    model stated by ``latency``, ``bandwidth`` and ``max_concurrency``.
    """

    endpoint: str
    reads: int
    get_pixels: int
    compute_pixels: int
    packed_images: int
    pixel_bytes: int
    largest_request_bytes: int
    request_limit_bytes: int
    max_concurrency: int
    latency: float
    bandwidth: float

    @property
    def requests(self) -> int:
        """Pixel requests of every method."""
        return self.get_pixels + self.compute_pixels

    @property
    def waves(self) -> int:
        """Rounds of ``max_concurrency`` requests in flight."""
        return math.ceil(self.requests / self.max_concurrency)

    @property
    def estimated_seconds(self) -> float:
        """``waves x latency + pixel_bytes / bandwidth`` (the model in the module docstring)."""
        return self.waves * self.latency + self.pixel_bytes / self.bandwidth

    def to_dict(self) -> dict[str, Any]:
        """Every field plus ``requests``, ``waves`` and ``estimated_seconds`` (JSON-ready)."""
        return {
            **asdict(self),
            "requests": self.requests,
            "waves": self.waves,
            "estimated_seconds": self.estimated_seconds,
        }

    def __str__(self) -> str:
        share = self.largest_request_bytes / self.request_limit_bytes if self.request_limit_bytes else 0.0
        rows = [
            ("endpoint", self.endpoint),
            ("reads (dask read tasks)", f"{self.reads:,}"),
            ("requests", f"{self.requests:,}"),
            ("  getPixels", f"{self.get_pixels:,}"),
            ("  computePixels", f"{self.compute_pixels:,}"),
            ("  images packed in computePixels", f"{self.packed_images:,}"),
            ("pixel bytes", _size(self.pixel_bytes)),
            (
                "largest request (as the limit counts)",
                f"{_size(self.largest_request_bytes)} = {share:.0%} of the {_size(self.request_limit_bytes)} limit",
            ),
            ("max_concurrency", f"{self.max_concurrency}"),
            (
                "estimated wall time",
                f"{self.estimated_seconds:,.1f} s = {self.waves:,} wave{'' if self.waves == 1 else 's'}"
                f" x {self.latency:g} s latency"
                f" + {_size(self.pixel_bytes)} at {_size(self.bandwidth)}/s",
            ),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython shows the table
        printer.text(str(self))


def _size(count: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{int(count):,} B"


def _positive(value: Any, name: str, meaning: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of {meaning}, got {value!r}")
    return float(value)


def check_model(latency: Any, bandwidth: Any) -> tuple[float, float]:
    """``latency`` (seconds) and ``bandwidth`` (bytes/s) as positive floats, else ValueError naming them."""
    return _positive(latency, "latency", "seconds per request"), _positive(bandwidth, "bandwidth", "bytes per second")


def estimate(
    reads: Iterable[Read], *, latency: float = DEFAULT_LATENCY, bandwidth: float = DEFAULT_BANDWIDTH
) -> ComputePlan:
    """The ``ComputePlan`` of ``reads`` (each described, none made)."""
    latency, bandwidth = check_model(latency, bandwidth)
    counts = {GET_PIXELS: 0, COMPUTE_PIXELS: 0}
    endpoints: dict[str, None] = {}
    concurrency: int | None = None
    limit = 0
    read_count = packed = pixel_bytes = largest = 0
    for read in reads:
        read_count += 1
        config = read.source.config
        endpoints[config.endpoint] = None
        concurrency = config.max_concurrency if concurrency is None else min(concurrency, config.max_concurrency)
        limit = max(limit, read.source.limits.max_bytes)
        for shape in read.source.describe_read(read.times, read.window, read.bands):
            counts[shape.method] += 1
            if shape.images > 1:
                packed += shape.images
            pixel_bytes += shape.pixel_bytes
            largest = max(largest, shape.limit_bytes)
    if concurrency is None:
        raise ValueError("nothing to plan: the selection reads no pixels")
    return ComputePlan(
        endpoint=", ".join(endpoints),
        reads=read_count,
        get_pixels=counts[GET_PIXELS],
        compute_pixels=counts[COMPUTE_PIXELS],
        packed_images=packed,
        pixel_bytes=pixel_bytes,
        largest_request_bytes=largest,
        request_limit_bytes=limit,
        max_concurrency=concurrency,
        latency=latency,
        bandwidth=bandwidth,
    )
