"""Execute the notebooks top to bottom against the local server; save them with their outputs.

    python notebooks/execute.py                 # every notebook, saved in place
    python notebooks/execute.py 01-quickstart   # the ones whose name starts so

tests/test_docs.py runs the same ``execute`` without saving.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 300  # per cell


def notebook_paths(prefixes: list[str] | None = None) -> list[Path]:
    paths = sorted(HERE.glob("*.ipynb"))
    if prefixes:
        paths = [path for path in paths if any(path.name.startswith(prefix) for prefix in prefixes)]
    return paths


def execute(path: Path, workdir: Path | None = None) -> nbformat.NotebookNode:
    """The executed notebook (an error in any cell raises ``nbclient``'s ``CellExecutionError``)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir or path.parent)}},
    )
    # Plots render inline as PNG in the kernel, whatever this process's MPLBACKEND says.
    client.execute(env={**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"})
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(cell.outputs)
    return notebook


def coalesce_streams(outputs: list) -> list:
    """Join consecutive stream outputs of one stream (a progress bar writes hundreds of them)."""
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output.get("output_type") == "stream"
            and previous is not None
            and previous.get("output_type") == "stream"
            and previous.get("name") == output.get("name")
        ):
            previous["text"] += output["text"]
        else:
            merged.append(output)
    for output in merged:
        if output.get("output_type") == "stream" and "\r" in output["text"]:
            output["text"] = "\n".join(_last_redraw(line) for line in output["text"].split("\n"))
    return merged


def _last_redraw(line: str) -> str:
    """What a terminal shows of a line redrawn with carriage returns: its last non-blank state."""
    states = [state for state in line.split("\r") if state.strip()]
    return states[-1] if states else ""


def main(argv: list[str]) -> int:
    for path in notebook_paths(argv or None):
        print(f"executing {path.name}", flush=True)
        notebook = execute(path)
        nbformat.write(notebook, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
