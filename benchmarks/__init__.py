"""Benchmarks of eexarray against the local server: ``python -m benchmarks NAME [--quick]``.

Each benchmark is a module with ``run(quick: bool) -> dict``; it starts its own local
server (procedural data, injected latency, in a separate process so it does not share
the client's GIL) and returns the figures, which ``__main__`` prints as one JSON object
on the last line. ``python -m benchmarks all`` runs every benchmark in its own process
and writes docs/performance.md from their JSON.
"""

BENCHMARKS = {
    "throughput": "benchmarks.throughput",
    "seed_recipe": "benchmarks.seed_recipe",
    "open_time": "benchmarks.open_time",
    "request_efficiency": "benchmarks.request_efficiency",
    "memory": "benchmarks.memory",
    "distributed": "benchmarks.distributed",
    "timeseries": "benchmarks.timeseries",
    "xee": "benchmarks.xee",
    "soak": "benchmarks.soak",
    "cached_rerun": "benchmarks.cached_rerun",
}
