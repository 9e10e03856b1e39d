"""The demo runs end to end on the embedded server and its outputs hold real results."""

from __future__ import annotations

import json

import numpy as np
import rasterio

from eexarray.cli import main
from tests.qp import REDUCTIONS, dask_expr_gap


@dask_expr_gap(REDUCTIONS, NotImplementedError)
def test_demo_command(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "Fetched" in printed and "requests" in printed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["images"] >= 12
    # one request per image window (all four bands) plus the metadata calls: never one per band
    assert summary["requests"] == summary["images"] + 2
    assert 0.1 < summary["ndvi_mean_min"] < summary["ndvi_mean_max"] < 0.95
    assert (tmp_path / "ndvi_and_composite.png").stat().st_size > 20_000
    with rasterio.open(tmp_path / "ndvi_median.tif") as written:
        assert written.crs.to_epsg() == 32633
        ndvi = written.read(1)
        assert written.shape == tuple(summary["shape"])
    assert np.nanmax(ndvi) > 0.6 and np.nanmin(ndvi) < 0  # vegetation and water
