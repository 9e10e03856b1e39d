"""The repository stays lint-clean, formatted and type-checked.

Each tool runs from the repository root with its configuration in pyproject.toml, so
this test fails exactly when the CI habit (`ruff check .`, `ruff format --check .`,
`mypy`) would, and shows the tool's own report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHECKS = {
    "ruff check": ["ruff", "check", "."],
    "ruff format": ["ruff", "format", "--check", "."],
    "mypy": ["mypy"],  # files and options come from [tool.mypy]
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_tool_passes(name):
    result = subprocess.run(
        [sys.executable, "-m", *CHECKS[name]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"{name} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
