"""Per-request limits of the Earth Engine pixel endpoints (see docs/concepts.md).

Figures from the Earth Engine REST reference: at most 48 MiB of uncompressed
data per request, counting one mask byte per pixel on top of every band's bytes;
at most 32768 pixels per side; at most 1024 bands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_REQUEST_BYTES = 50_331_648
MAX_PIXELS_PER_SIDE = 32_768
MAX_BANDS = 1_024
MASK_BYTES_PER_PIXEL = 1


@dataclass(frozen=True)
class RequestLimits:
    """The limits one request must respect; smaller values are handy in tests."""

    max_bytes: int = MAX_REQUEST_BYTES
    max_side: int = MAX_PIXELS_PER_SIDE
    max_bands: int = MAX_BANDS
    mask_bytes_per_pixel: int = MASK_BYTES_PER_PIXEL

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_side", "max_bands"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"RequestLimits.{name} must be a positive integer, got {value!r}")

    def bytes_per_pixel(self, dtypes: Sequence[np.dtype | str]) -> int:
        """Bytes one pixel costs: every band's item size plus the mask byte."""
        return sum(np.dtype(dtype).itemsize for dtype in dtypes) + self.mask_bytes_per_pixel

    def request_bytes(self, height: int, width: int, dtypes: Sequence[np.dtype | str]) -> int:
        return height * width * self.bytes_per_pixel(dtypes)

    def violations(self, height: int, width: int, dtypes: Sequence[np.dtype | str]) -> list[str]:
        """Why a request of this shape and these bands would be refused (empty when valid)."""
        problems = []
        if len(dtypes) > self.max_bands:
            problems.append(f"{len(dtypes)} bands > {self.max_bands}")
        if height > self.max_side or width > self.max_side:
            problems.append(f"{width}x{height} px > {self.max_side} px a side")
        total = self.request_bytes(height, width, dtypes)
        if total > self.max_bytes:
            problems.append(f"{total} bytes > {self.max_bytes}")
        return problems


DEFAULT_LIMITS = RequestLimits()
