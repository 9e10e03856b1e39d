"""The quick variants of the benchmarks keep working (figures are never asserted: timings do not gate CI)."""

from __future__ import annotations

import json

import pytest

from benchmarks import BENCHMARKS
from benchmarks.__main__ import main
from tests.qp import QUERY_PLANNING, REDUCTIONS

LATENCY_KEYS = {"latency_ms_per_request", "latency_ms_per_mb"}
# Benchmarks that compare two things report a ratio (when they could run).
COMPARING = {"throughput", "seed_recipe", "open_time", "memory", "distributed", "timeseries", "xee", "cached_rerun"}
FIGURES = {
    "throughput": {"eexarray", "bare", "requests", "identical", "transport_limit", "ratio_to_transport_limit"},
    "seed_recipe": {"eexarray", "recipe", "identical"},
    "open_time": {"sizes", "open_seconds_at_largest"},
    "request_efficiency": {"per_dtype", "min_efficiency", "selections"},
    "memory": {"reduce", "zarr", "in_flight_mib"},
    "distributed": {"threaded", "cluster_2x1", "capped", "targets", "targets_met"},
    "timeseries": {"requests", "read_seconds"},
    "xee": {"eexarray", "xee", "eexarray_requests", "xee_requests"},
    "soak": {"identical", "retries", "faults_injected", "load"},
    "cached_rerun": {"image", "series", "cache_mib", "targets_met"},
}


# memory and distributed average and write Zarr through xarray: under dask's array query
# planning those hit dask's own gaps (tests/qp.py), so they are measured on classic graphs only.
NEEDS_CLASSIC_DASK = {"memory", "distributed"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.skipif(QUERY_PLANNING, reason=f"dask query planning: {REDUCTIONS}"))
        if name in NEEDS_CLASSIC_DASK
        else name
        for name in BENCHMARKS
    ],
)
def test_quick_variant_prints_a_final_json_line(name, capsys):
    assert main([name, "--quick"]) == 0
    last = [line for line in capsys.readouterr().out.splitlines() if line.strip()][-1]
    result = json.loads(last)
    assert result["name"] == name
    assert result["quick"] is True
    # every capability a benchmark needs exists now: none may report itself unavailable
    assert result.get("status") is None, result.get("reason")
    assert FIGURES[name] <= result.keys()
    if name == "soak":
        assert result["identical"] is True and result["retries"] > 0
        assert result["load"]["errors"] == 0
        return
    assert LATENCY_KEYS <= result.keys()
    if name in COMPARING:
        assert isinstance(result["ratio"], (int, float))
    if name in ("throughput", "seed_recipe"):
        assert result["identical"] is True  # both clients read the same pixels
    if name == "throughput" and not QUERY_PLANNING:  # blocks are measured with classic graphs only
        for figures in (result, result["default_read"]):
            assert {"blocks", "assembly", "load_ceiling_ratio_to_transport_limit"} <= figures.keys()
            assert 0 < figures["load_ceiling_ratio_to_transport_limit"] < 1
    if name == "cached_rerun":
        assert result["targets_met"] is True  # request counts and identical values, not timings
