"""``python -m benchmarks NAME [--quick]`` or ``python -m benchmarks all [--quick] [--output FILE]``.

One benchmark prints its progress, then its figures as one JSON object on the last line.
``all`` runs every benchmark in its own process (so peak RSS and per-process HTTP pools do
not leak between them), collects their last lines and writes docs/performance.md (only
for full runs, or wherever ``--output`` says).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import BENCHMARKS

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def run_one(name: str, quick: bool) -> dict:
    module = importlib.import_module(BENCHMARKS[name])
    result = module.run(quick)
    result.setdefault("name", name)
    result["quick"] = quick
    return result


def results_from_log(path: Path) -> list[dict]:
    """The last JSON line of each benchmark in the saved output of an ``all`` run."""
    found: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except ValueError:
                continue
            if result.get("name") in BENCHMARKS:
                found[result["name"]] = result
    return [found[name] for name in BENCHMARKS if name in found]


def run_all(quick: bool, output: Path | None) -> int:
    from benchmarks.common import machine
    from benchmarks.report import write_report

    results = []
    started = time.time()
    for name in BENCHMARKS:
        command = [sys.executable, "-m", "benchmarks", name] + (["--quick"] if quick else [])
        print(f"== {name}", flush=True)
        process = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
        sys.stdout.write(process.stdout)
        lines = [line for line in process.stdout.splitlines() if line.strip()]
        try:
            result = json.loads(lines[-1])
        except (IndexError, ValueError):
            tail = (process.stderr or "").strip().splitlines()[-5:]
            result = {"name": name, "status": "failed", "reason": f"exit code {process.returncode}: {' | '.join(tail)}"}
            sys.stderr.write(process.stderr)
        results.append(result)
    summary = {
        "name": "all",
        "quick": quick,
        "seconds": round(time.time() - started, 1),
        "results": {r["name"]: r.get("status", "ok") for r in results},
    }
    if output is not None:
        write_report(results, machine(), output)
        summary["output"] = str(output)
    print(json.dumps(summary), flush=True)
    return 0 if all(r.get("status") != "failed" for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=[*BENCHMARKS, "all"], help="the benchmark to run, or all of them")
    parser.add_argument("--quick", action="store_true", help="a small variant that keeps the benchmark working (CI)")
    parser.add_argument(
        "--from-log",
        type=Path,
        default=None,
        help="with all: rewrite the report from the saved output of an earlier all run, running nothing",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"with all: where to write the report (default {DEFAULT_OUTPUT} for full runs, none for --quick)",
    )
    args = parser.parse_args(argv)
    if args.name == "all":
        output = args.output if args.output is not None else (None if args.quick else DEFAULT_OUTPUT)
        if args.from_log is not None:
            import datetime as dt

            from benchmarks.common import machine
            from benchmarks.report import write_report

            measured = dt.datetime.fromtimestamp(args.from_log.stat().st_mtime, dt.timezone.utc)
            write_report(results_from_log(args.from_log), machine(), output or DEFAULT_OUTPUT, measured)
            return 0
        return run_all(args.quick, output)
    result = run_one(args.name, args.quick)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
