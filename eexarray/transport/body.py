"""Response bodies in memory: the type every decoder takes, and the buffer a body is read into."""

from __future__ import annotations

import numpy as np

# A uint8 array when read straight from the socket (pixels: decoded
# arrays are views into it); bytes when decompressed or of unknown length; bytearray from
# the request cache.
Body = bytes | bytearray | np.ndarray


def empty_body(size: int) -> np.ndarray:
    """A writable buffer of ``size`` bytes, not yet touched.

    Not ``bytearray(size)``: that zero-fills every 4 KiB page before the socket writes it
    again, while numpy asks Linux for transparent huge pages on large arrays - filling a
    45 MiB body took 4.5x less time here (benchmarks/throughput.py reads like this too).
    """
    return np.empty(size, dtype=np.uint8)


def starts_with(body: Body, prefix: bytes) -> bool:
    return bytes(body[: len(prefix)]) == prefix


def as_buffer(body: Body | memoryview) -> memoryview:
    """``body`` as a memoryview (numpy arrays have the buffer protocol; typeshed does not say so)."""
    return body if isinstance(body, memoryview) else memoryview(body)  # type: ignore[arg-type]
