"""computePixels reads a stored band once per request, however often the expression uses it."""

from __future__ import annotations

import threading

import numpy as np
from affine import Affine

import eexarray
from eexarray.geometry import PixelGrid
from eexarray.server.images import InMemoryImage

GRID = PixelGrid("EPSG:32610", Affine(10, 0, 500000, 0, -10, 4200000), 40, 30)


class CountingImage(InMemoryImage):
    """Counts the reads of stored pixels (windows and samples)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.reads = 0
        self.lock = threading.Lock()

    def read_band(self, band_index, window):
        with self.lock:
            self.reads += 1
        return super().read_band(band_index, window)

    def sample_band(self, band_index, rows, cols):
        with self.lock:
            self.reads += 1
        return super().sample_band(band_index, rows, cols)


def test_values_and_masks_of_two_bands_cost_two_reads():
    rng = np.random.default_rng(1)
    data = {
        name: np.ma.MaskedArray(rng.integers(0, 3, GRID.shape).astype("uint16"), rng.random(GRID.shape) < 0.3)
        for name in ("a", "b")
    }
    image = CountingImage("test/counted", data, GRID)
    with eexarray.serve(catalog=[image]) as server:
        ds = eexarray.open_dataset("test/counted", endpoint=server.url).compute()  # values + mask bits
        assert server.stats()["requests"]["computePixels"] == 1
    assert image.reads == 2  # each band once, though the expression reads it for its values and its mask
    for name, band in data.items():
        np.testing.assert_array_equal(np.isnan(ds[name].values), band.mask)
        np.testing.assert_array_equal(ds[name].values[~band.mask], band.data[~band.mask])
