"""Fault soak (small): a read through a faulty server is byte-identical to a clean one, retries counted.

The full >= 512 MiB soak is ``python -m benchmarks soak`` (benchmarks/soak.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import eexarray
from eexarray.server import procedural_values
from eexarray.transport import ConnectionConfig, RestClient, RetriesExhaustedError
from eexarray.transport.api import get_pixels

from .conftest import SMALL_GRID, SOAK_FAULTS, catalog, dataset_hash

CHUNKS = {"y": 256, "x": 512}  # 8 x 8 = 64 getPixels of 1 MiB each (native values: getPixels)
SMALL_WINDOW = SMALL_GRID.with_dimensions(64, 32)


def test_faulty_read_is_byte_identical_to_a_clean_read(fast_retry):
    with (
        eexarray.serve(catalog=catalog()) as clean,
        eexarray.serve(catalog=catalog(), faults=SOAK_FAULTS, seed=12) as faulty,
    ):
        expected = eexarray.open_dataset("rel/soak", endpoint=clean.url, mask_and_scale=False, chunks=CHUNKS).compute()
        before = eexarray.transport_stats()
        got = eexarray.open_dataset("rel/soak", endpoint=faulty.url, mask_and_scale=False, chunks=CHUNKS).compute()
        after = eexarray.transport_stats()
        served = faulty.stats()
    assert dataset_hash(got) == dataset_hash(expected)
    assert got.a.nbytes + got.b.nbytes + got.c.nbytes == 4096 * 2048 * 8  # 64 MiB
    # Every injected fault cost exactly one retry, and every kind of fault happened.
    injected = served["faults"]
    assert set(injected) == {"429", "503", "reset", "truncate"}, injected
    assert after["retries"] - before["retries"] == sum(injected.values())
    # 64 bodies served whole; every other getPixels was a fault.
    assert len(served["pixel_requests"]) == 64
    assert served["requests"]["getPixels"] + served["requests"]["getAsset"] == 64 + 1 + sum(injected.values())
    # And both equal the documented formula (spot-check band a everywhere, b and c on a window).
    rows, cols = np.arange(2048)[:, None], np.arange(4096)[None, :]
    np.testing.assert_array_equal(got.a.values, procedural_values(0, rows, cols, 0, "uint16"))
    np.testing.assert_array_equal(
        got.c.values[:300, -300:], procedural_values(2, rows[:300], cols[:, -300:], 0, "float32")
    )


def test_truncated_bodies_are_retried_never_returned(fast_retry):
    with eexarray.serve(catalog=catalog(), faults="truncate=0.5", seed=3) as faulty:
        before = eexarray.transport_stats()
        ds = eexarray.open_dataset(
            "rel/small", endpoint=faulty.url, mask_and_scale=False, chunks={"y": 32, "x": 64}
        ).compute()
        retries = eexarray.transport_stats()["retries"] - before["retries"]
        served = faulty.stats()
    assert served["faults"]["truncate"] >= 5
    assert retries == served["faults"]["truncate"]
    rows, cols = np.arange(128)[:, None], np.arange(256)[None, :]
    np.testing.assert_array_equal(ds.u.values, procedural_values(0, rows, cols, 0, "uint16"))
    np.testing.assert_array_equal(ds.f.values, procedural_values(1, rows, cols, 0, "float32"))


@pytest.mark.parametrize("file_format", ["NPY", "GEO_TIFF"])
def test_every_body_truncated_exhausts_retries_with_a_clear_error(fast_retry, file_format):
    with eexarray.serve(catalog=catalog()) as clean, eexarray.serve(catalog=catalog(), faults="truncate=1") as faulty:
        # Metadata from the clean server; pixels from the faulty one, through the transport.
        assert eexarray.open_dataset("rel/small", endpoint=clean.url, mask_and_scale=False).u.shape == (128, 256)
        client = RestClient(ConnectionConfig.create(faulty.url))
        with pytest.raises(RetriesExhaustedError) as caught:
            get_pixels(
                client,
                "projects/earthengine-public/assets/rel/small",
                SMALL_WINDOW,
                ["u"],
                [np.dtype("uint16")],
                file_format=file_format,
            )
        served = faulty.stats()
    error = caught.value
    assert error.attempts == fast_retry.max_attempts == served["requests"]["getPixels"]
    assert "rel/small" in str(error) and f"after {error.attempts} attempts" in str(error)
    assert "cut short" in str(error)
    assert served["pixel_requests"] == []  # nothing was ever served whole
