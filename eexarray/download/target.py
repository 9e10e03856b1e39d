"""What is downloaded: the opened Dataset (metadata only) and the ``PixelSource`` behind it.

The download opens its input exactly as ``eexarray.open_dataset`` does (same options,
same checks, same output grid), without dask and with native values
(``mask_and_scale=False``), then reads blocks through the Dataset's own
``PixelSource``: the same requests, retries, concurrency cap and fetch pool as
any computation on that Dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from eexarray.backend.arrays import origin_of
from eexarray.engine.source import PixelSource
from eexarray.geometry import PixelGrid, Window


@dataclass(frozen=True)
class DownloadTarget:
    """An opened Dataset (lazy, never loaded) and the source its pixels come from."""

    dataset: xr.Dataset
    source: PixelSource
    band_ids: tuple[str, ...]  # the Dataset's variables, in order
    band_positions: tuple[int, ...]  # their positions in ``source``
    has_time: bool
    versions: tuple[str | None, ...] = ()  # per image: updateTime (stored) or version (computed), if known

    @property
    def grid(self) -> PixelGrid:
        return self.source.grid

    @property
    def dtypes(self) -> tuple[np.dtype, ...]:
        return tuple(np.dtype(self.source.dtypes[b]) for b in self.band_positions)

    @property
    def time_count(self) -> int:
        return self.dataset.sizes["time"] if self.has_time else 1

    @property
    def image_ids(self) -> tuple[str, ...]:
        if self.has_time and "image_id" in self.dataset.coords:
            return tuple(str(v) for v in self.dataset["image_id"].values)
        return (str(self.dataset.attrs.get("asset_id", "download")),)

    def requests_per_block(self, times: range, window: Window) -> int:
        counter = getattr(self.source, "requests_for", None)  # knows about packed time series
        if counter is not None:
            return int(counter(times, window, self.band_positions))
        return len(times) * len(self.source.plan(window, self.band_positions))

    def start_read(self, times: range, window: Window) -> Any:
        """Submit the requests of one block to the fetch pool; ``.result()`` gives ``{position: (t, h, w)}``."""
        return self.source.start_read(times, window, self.band_positions)


def open_target(asset: Any, open_options: dict[str, Any]) -> DownloadTarget:
    from eexarray.api import open_dataset

    dataset = open_dataset(asset, chunks=None, mask_and_scale=False, **open_options)
    sources = []
    for name, variable in dataset.data_vars.items():
        origin = origin_of(variable)
        if origin is None:
            raise RuntimeError(f"variable {name!r} of the opened Dataset is not backed by an eexarray source")
        sources.append((origin.opened, origin.band))
    opened = sources[0][0]
    if any(other is not opened for other, _ in sources):
        raise RuntimeError("the variables of the opened Dataset come from different sources")
    return DownloadTarget(
        dataset=dataset,
        source=opened.source,
        band_ids=tuple(str(name) for name in dataset.data_vars),
        band_positions=tuple(band for _, band in sources),
        has_time=opened.has_time,
        versions=tuple(opened.resolved.versions),
    )
