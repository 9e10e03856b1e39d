"""Images the local server can serve: in-memory arrays and procedural (formula) data.

Every image is a set of bands, each with its own dtype and native ``PixelGrid``.
``read_band`` returns a masked array for a window of the band's native grid; the
server's pixel engine does all windowing, resampling and encoding on top of it.

Procedural formula (the ground truth of the client tests)::

    v(b, r, c, t) = 31*r + 17*c + 101*b + 1009*t + (r*c mod 7)

where ``b`` is the band index, ``r``/``c`` the row/column in the band's native grid
and ``t`` the image index within its collection (0 for a lone image). It is then
mapped into the band's dtype by :func:`procedural_values`:

* unsigned ints: ``v mod 2**bits`` (``mod 2**31`` for 32/64-bit)
* signed ints: ``(v mod 2**bits) - 2**(bits-1)`` (``v mod 2**31`` for 32/64-bit)
* float32: ``(v mod 2**20) / 8``; float64: ``v / 8`` (both exact in binary)

The ``r*c mod 7`` term breaks the translation symmetry of a linear formula, so a
window shifted by any number of pixels never reproduces the same values.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eexarray.geometry import PixelGrid, Window

SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
PYRAMIDING_POLICIES = ("MEAN", "SAMPLE", "MIN", "MAX", "MODE", "MEDIAN")


@dataclass(frozen=True)
class BandInfo:
    """One band: id, storage dtype, native grid, no-data value and pyramiding policy."""

    id: str
    dtype: str
    grid: PixelGrid
    nodata: float | int | None = None
    pyramiding_policy: str = "MEAN"

    def __post_init__(self) -> None:
        dtype = np.dtype(self.dtype).name
        if dtype not in SUPPORTED_DTYPES:
            raise ValueError(f"Band {self.id!r}: dtype {self.dtype!r} is not one of {SUPPORTED_DTYPES}")
        object.__setattr__(self, "dtype", dtype)
        if self.pyramiding_policy not in PYRAMIDING_POLICIES:
            raise ValueError(
                f"Band {self.id!r}: pyramiding policy {self.pyramiding_policy!r} is not one of {PYRAMIDING_POLICIES}"
            )


class ServerImage(ABC):
    """An IMAGE asset: metadata plus a way to read native pixels of one band."""

    asset_id: str
    bands: tuple[BandInfo, ...]
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    properties: Mapping[str, Any]

    @abstractmethod
    def read_band(self, band_index: int, window: Window) -> np.ma.MaskedArray:
        """Native pixels of a window lying fully inside the band's grid; mask True = missing."""

    def read_bands(self, band_indices: Sequence[int], window: Window) -> list[np.ma.MaskedArray]:
        """``read_band`` for several bands at once (sources that can share one read override it)."""
        return [self.read_band(index, window) for index in band_indices]

    def sample_band(self, band_index: int, rows: np.ndarray, cols: np.ndarray) -> np.ma.MaskedArray:
        """Native pixels at broadcastable integer ``rows``/``cols`` arrays, all inside the band's grid.

        The default reads the bounding window once and indexes it; the pixel engine keeps
        that window small by asking for one output tile at a time.
        """
        rows = np.asarray(rows)
        cols = np.asarray(cols)
        window = Window(int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
        block = self.read_band(band_index, window)
        local_rows, local_cols = rows - window.row_start, cols - window.col_start
        return np.ma.MaskedArray(
            np.ma.getdata(block)[local_rows, local_cols], np.ma.getmaskarray(block)[local_rows, local_cols]
        )

    def band_index(self, band_id: str) -> int:
        for index, band in enumerate(self.bands):
            if band.id == band_id:
                return index
        raise KeyError(band_id)


def _as_utc(value: dt.datetime | str | None) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


@dataclass
class InMemoryImage(ServerImage):
    """A numpy-backed image for tests: ``data`` maps band id -> 2-D array (or masked array).

    ``grids`` gives a band its own native grid; bands without one use ``grid``.
    """

    asset_id: str
    data: Mapping[str, np.ndarray]
    grid: PixelGrid
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    nodata: Mapping[str, float | int] = field(default_factory=dict)
    grids: Mapping[str, PixelGrid] = field(default_factory=dict)
    # Reads coarser than twice native aggregate pyramid levels (``eexarray.server.pyramids``)
    # by each band's policy (``pyramiding_policies``, default MEAN); off by default so
    # tests can state nearest-neighbour expectations.
    pyramids: bool = False
    pyramiding_policies: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start_time = _as_utc(self.start_time)
        self.end_time = _as_utc(self.end_time) or self.start_time
        bands = []
        arrays = []
        for band_id, array in self.data.items():
            grid = self.grids.get(band_id, self.grid)
            masked = np.ma.asarray(array)
            if masked.shape != grid.shape:
                raise ValueError(f"Band {band_id!r} has shape {masked.shape}, its grid {grid.shape}")
            nodata = self.nodata.get(band_id)
            if nodata is not None:
                masked = np.ma.masked_where(np.ma.getdata(masked) == nodata, masked, copy=False)
            arrays.append(masked)
            policy = self.pyramiding_policies.get(band_id, "MEAN")
            bands.append(BandInfo(band_id, masked.dtype.name, grid, nodata, policy))
        unknown = sorted(set(self.pyramiding_policies) - set(self.data))
        if unknown:
            raise ValueError(f"pyramiding_policies names bands {unknown} that are not in data {list(self.data)}")
        self.bands = tuple(bands)
        self._arrays = arrays

    def read_band(self, band_index: int, window: Window) -> np.ma.MaskedArray:
        array = self._arrays[band_index][window.slices()]
        return np.ma.MaskedArray(np.ma.getdata(array), np.ma.getmaskarray(array))

    def sample_band(self, band_index: int, rows: np.ndarray, cols: np.ndarray) -> np.ma.MaskedArray:
        array = self._arrays[band_index]
        return np.ma.MaskedArray(np.ma.getdata(array)[rows, cols], np.ma.getmaskarray(array)[rows, cols])


def procedural_values(band: int, rows: np.ndarray, cols: np.ndarray, time: int, dtype: str) -> np.ndarray:
    """The documented procedural formula for broadcastable ``rows``/``cols`` (see module doc)."""
    rows = np.asarray(rows, dtype="int64")
    cols = np.asarray(cols, dtype="int64")
    value = 31 * rows + 17 * cols + (101 * band + 1009 * time) + (rows * cols) % 7
    target = np.dtype(dtype)
    if target.kind == "u":
        modulus = 2 ** min(target.itemsize * 8, 31)
        return (value % modulus).astype(target)
    if target.kind == "i":
        if target.itemsize >= 4:
            return (value % 2**31).astype(target)
        bits = target.itemsize * 8
        return ((value % 2**bits) - 2 ** (bits - 1)).astype(target)
    if target == np.float32:
        return ((value % 2**20) / 8).astype(target)
    return (value / 8).astype(target)


def procedural_window(band: int, window: Window, time: int, dtype: str) -> np.ndarray:
    """``procedural_values`` over a whole window, fast (the server's hot path).

    Same values as the reference formula: the 1-D row and column terms are reduced
    once, then added in the band's own modular (unsigned) arithmetic, and the
    ``(r*c) mod 7`` term, periodic with period 7 in rows, is copied row by row from
    7 precomputed rows.
    """
    target = np.dtype(dtype)
    rows = np.arange(window.row_start, window.row_stop, dtype="int64")
    cols = np.arange(window.col_start, window.col_stop, dtype="int64")
    residues = (np.arange(7, dtype="int64")[:, None] * (cols % 7)[None, :]) % 7  # 7 x width
    row_phase = rows % 7
    row_term = 31 * rows + (101 * band + 1009 * time)
    col_term = 17 * cols
    if target.kind in "iu" or target == np.float32:
        bits = 32 if target.itemsize >= 4 or target.kind == "f" else target.itemsize * 8
        unsigned = np.dtype(f"uint{bits}")
        if target.kind == "i" and bits < 32:
            row_term = row_term + 2 ** (bits - 1)  # (u + 2**(b-1)) mod 2**b read as signed = u - 2**(b-1)
        values = (row_term % 2**bits).astype(unsigned)[:, None] + (col_term % 2**bits).astype(unsigned)[None, :]
        values += residues.astype(unsigned)[row_phase]  # wraps modulo 2**bits, like the formula's reduction
        if target == np.float32:
            return ((values & (2**20 - 1)).astype("float32")) / np.float32(8)
        if bits == 32:
            values &= 2**31 - 1  # mod 2**31 for 32-bit types
        return values.view(target) if target.kind == "i" else values
    return ((row_term[:, None] + col_term[None, :] + residues[row_phase]) / 8).astype(target)


@dataclass
class ProceduralImage(ServerImage):
    """A synthetic image of any size whose pixels come from :func:`procedural_values`.

    ``masked`` windows (native pixel coordinates of each band's grid) are missing data.
    Nothing is stored: a 2**20 x 2**20 image costs nothing until a window is read.
    """

    asset_id: str
    grid: PixelGrid
    dtypes: Sequence[str] = ("uint16",)
    band_ids: Sequence[str] | None = None
    index: int = 0
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    masked: Sequence[Window] = ()
    grids: Mapping[str, PixelGrid] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start_time = _as_utc(self.start_time)
        self.end_time = _as_utc(self.end_time) or self.start_time
        band_ids = list(self.band_ids) if self.band_ids is not None else [f"B{i + 1}" for i in range(len(self.dtypes))]
        if len(band_ids) != len(self.dtypes):
            raise ValueError(f"{len(band_ids)} band ids for {len(self.dtypes)} dtypes")
        self.bands = tuple(
            BandInfo(band_id, dtype, self.grids.get(band_id, self.grid))
            for band_id, dtype in zip(band_ids, self.dtypes)
        )

    def read_band(self, band_index: int, window: Window) -> np.ma.MaskedArray:
        band = self.bands[band_index]
        values = procedural_window(band_index, window, self.index, band.dtype)
        mask = np.zeros(window.shape, dtype=bool)
        for masked in self.masked:
            overlap = masked.intersection(window)
            if overlap is not None:
                mask[overlap.relative_to(window).slices()] = True
        values = np.broadcast_to(values, window.shape).copy() if values.shape != window.shape else values
        return np.ma.MaskedArray(values, mask)

    def sample_band(self, band_index: int, rows: np.ndarray, cols: np.ndarray) -> np.ma.MaskedArray:
        # The formula is pointwise: evaluate it where asked, so downsampling a 2**20-pixel
        # image never materialises its full-resolution window.
        rows, cols = np.broadcast_arrays(np.asarray(rows, dtype="int64"), np.asarray(cols, dtype="int64"))
        values = procedural_values(band_index, rows, cols, self.index, self.bands[band_index].dtype)
        mask = np.zeros(rows.shape, dtype=bool)
        for masked in self.masked:
            mask |= (
                (rows >= masked.row_start)
                & (rows < masked.row_stop)
                & (cols >= masked.col_start)
                & (cols < masked.col_stop)
            )
        return np.ma.MaskedArray(values, mask)


@dataclass
class ServerCollection:
    """An IMAGE_COLLECTION asset: its images (in listing order) and its own properties."""

    asset_id: str
    images: Sequence[ServerImage]
    properties: Mapping[str, Any] = field(default_factory=dict)


def procedural_collection(
    asset_id: str,
    grid: PixelGrid,
    count: int,
    *,
    dtypes: Sequence[str] = ("uint16",),
    band_ids: Sequence[str] | None = None,
    start: dt.datetime | str = "2020-01-01T00:00:00Z",
    step: dt.timedelta = dt.timedelta(days=1),
    masked: Sequence[Window] = (),
    properties: Mapping[str, Any] | None = None,
) -> ServerCollection:
    """``count`` procedural images ``<asset_id>/<index:05d>`` with index ``t`` and time ``start + t*step``."""
    start_time = _as_utc(start)
    assert start_time is not None
    images = [
        ProceduralImage(
            f"{asset_id}/{index:05d}",
            grid,
            dtypes=dtypes,
            band_ids=band_ids,
            index=index,
            start_time=start_time + index * step,
            end_time=start_time + (index + 1) * step,
            properties={"index": index},
            masked=masked,
        )
        for index in range(count)
    ]
    return ServerCollection(asset_id, images, dict(properties or {}))
