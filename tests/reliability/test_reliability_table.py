"""Every test docs/reliability.md names as proof exists: the table cannot point at nothing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"(tests/[\w/]+\.py)::(test_\w+)")


def test_every_test_the_reliability_table_names_exists():
    references = REFERENCE.findall((ROOT / "docs" / "reliability.md").read_text(encoding="utf-8"))
    assert len(references) >= 30
    missing = [
        f"{path}::{name}"
        for path, name in references
        if not (ROOT / path).is_file() or f"def {name}(" not in (ROOT / path).read_text(encoding="utf-8")
    ]
    assert missing == []
