"""Atomic outputs, and Zarr downloads that resume after a kill fetching only the missing blocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

import eexarray
from eexarray.download import resume
from eexarray.download.atomic import partial_path
from eexarray.download.geotiff import GeoTiffWriter
from eexarray.download.plan import plan_blocks
from tests.qp import FILL_VALUE, dask_expr_gap

from .conftest import IMAGE_BANDS, IMAGE_DTYPES, SMALL_GRID, Counter
from .test_refusals import InjectedFailure, fail_at_second_block

# Small blocks: 96 x 96 px, 20 of them for dl/small, two in flight.
LIMIT = 1_000_000

DOWNLOAD = f"""
import sys, eexarray
eexarray.download("dl/small", sys.argv[2], format=sys.argv[3], endpoint=sys.argv[1], memory_limit={LIMIT},
                  progress=False)
"""


def start_download(server, out, fmt):
    return subprocess.Popen([sys.executable, "-c", DOWNLOAD, server.url, str(out), fmt])


class DownloadProcessFailed(Exception):
    """The download process ended on its own before the test could kill it."""


def wait_for(condition, timeout=60.0, process=None):
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise DownloadProcessFailed(f"the download exited with {process.returncode} before it was killed")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def kill(process):
    if process.poll() is None:  # it may have ended by itself (DownloadProcessFailed says why)
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def settle(server):
    """Let the server finish the requests the killed client left in flight, then zero its counters."""
    wait_for(lambda: server.stats()["in_flight"] == 0)
    server.reset_stats()


@dask_expr_gap(FILL_VALUE, DownloadProcessFailed)  # the gap ends the download process early
def test_a_killed_zarr_download_resumes_with_only_the_missing_blocks(slow_server, server, tmp_path):
    out = tmp_path / "small.zarr"
    partial = partial_path(out)
    plan = plan_blocks(SMALL_GRID.height, SMALL_GRID.width, 1, IMAGE_DTYPES, LIMIT)
    assert plan.block_count == 20
    process = start_download(slow_server, out, "ZARR")
    try:
        wait_for(lambda: len(resume.read_done(partial)) >= 5, process=process)
    finally:
        kill(process)
    done = resume.read_done(partial)
    assert 5 <= len(done) < plan.block_count and not out.exists()  # a partial store is not the output
    settle(slow_server)

    eexarray.download("dl/small", out, format="ZARR", endpoint=slow_server.url, memory_limit=LIMIT, progress=False)
    fetched = slow_server.stats()["pixel_requests"]
    assert len(fetched) == plan.block_count - len(done)  # only the missing blocks
    assert out.is_dir() and not partial.exists()
    assert not (out / resume.LOG).exists() and not (out / resume.MANIFEST).exists()

    whole = eexarray.download(
        "dl/small", tmp_path / "whole.zarr", format="ZARR", endpoint=server.url, memory_limit=LIMIT, progress=False
    )
    resumed, uninterrupted = xr.open_zarr(out, mask_and_scale=False), xr.open_zarr(whole, mask_and_scale=False)
    opened = eexarray.open_dataset("dl/small", endpoint=server.url, mask_and_scale=False).compute()
    for band in IMAGE_BANDS:
        np.testing.assert_array_equal(resumed[band].values, uninterrupted[band].values)
        np.testing.assert_array_equal(resumed[band].values, opened[band].values)


@dask_expr_gap(FILL_VALUE, NotImplementedError)
def test_a_complete_partial_store_is_finished_without_requests(server, tmp_path, monkeypatch):
    out = tmp_path / "image.zarr"
    # Fail in finish(), after every block was written and logged.
    from eexarray.download.zarr_store import ZarrWriter

    monkeypatch.setattr(ZarrWriter, "finish", lambda self: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        eexarray.download("dl/image", out, format="ZARR", bands=["a"], endpoint=server.url, progress=False)
    monkeypatch.undo()
    counter = Counter(server)
    eexarray.download("dl/image", out, format="ZARR", bands=["a"], endpoint=server.url, progress=False)
    assert counter.pixels == 0 and out.is_dir()
    opened = eexarray.open_dataset("dl/image", endpoint=server.url, bands=["a"], mask_and_scale=False).compute()
    np.testing.assert_array_equal(xr.open_zarr(out, mask_and_scale=False)["a"].values, opened["a"].values)


@pytest.mark.parametrize("fmt", ["GEO_TIFF", "NETCDF"])
def test_a_killed_file_download_leaves_no_output_and_restarts(slow_server, server, tmp_path, fmt):
    out = tmp_path / "image.out"
    process = start_download(slow_server, out, fmt)
    try:
        wait_for(lambda: partial_path(out).exists() and len(slow_server.stats()["pixel_requests"]) >= 3)
    finally:
        kill(process)
    assert partial_path(out).exists() and not out.exists()
    settle(slow_server)
    eexarray.download("dl/small", out, format=fmt, bands=["c"], endpoint=server.url, progress=False)
    assert out.exists() and not partial_path(out).exists()


def test_a_failed_download_removes_its_temporary_file(server, tmp_path, monkeypatch):
    fail_at_second_block(monkeypatch, GeoTiffWriter)
    with pytest.raises(InjectedFailure):
        eexarray.download("dl/image", tmp_path / "x.tif", endpoint=server.url, memory_limit=LIMIT, progress=False)
    assert list(tmp_path.iterdir()) == []
