"""The docs build in strict mode and every notebook runs top to bottom against the local server.

So neither can rot: a renamed function breaks the API reference, a broken link or a page
missing from the nav breaks the strict build, and a changed behaviour breaks a notebook.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from tests.qp import REDUCTIONS, dask_expr_gap

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "notebooks"))
from execute import execute, notebook_paths  # noqa: E402 - notebooks/ is not a package

NOTEBOOKS = notebook_paths()


def test_docs_build_in_strict_mode(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    for name in ("eexarray.open_dataset", "preview", "summarize_asset", "PixelGrid"):
        assert name in reference
    assert "python -m pytest" in (tmp_path / "site" / "contributing" / "index.html").read_text()
    home = (tmp_path / "site" / "index.html").read_text()
    assert 'src="images/demo-ndvi-and-composite.png"' in home and "pip install" in home
    assert (tmp_path / "site" / "images" / "demo-ndvi-and-composite.png").stat().st_size > 50_000
    for path in NOTEBOOKS:  # rendered by mkdocs-jupyter from the saved outputs, figures embedded
        page = (tmp_path / "site" / "notebooks" / path.stem / "index.html").read_text()
        figures = _images(nbformat.read(path, as_version=4))
        assert page.count('src="data:image/png;base64,') >= figures >= 1, f"{path.name}: figures missing from the site"


def test_there_are_notebooks():
    assert [path.name[:2] for path in NOTEBOOKS] == ["01", "02", "03"]


def _images(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_saved_notebook_keeps_its_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code), f"{path.name}: run notebooks/execute.py and save"
    assert _images(notebook) >= 1, f"{path.name} lost its figures"
    errors = [output for cell in code for output in cell.outputs if output.get("output_type") == "error"]
    assert not errors, json.dumps(errors)[:2000]


REDUCING_NOTEBOOKS = {"01-quickstart", "03-distributed-and-download"}  # they average with xarray


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(path, marks=dask_expr_gap(REDUCTIONS, CellExecutionError))
        if path.stem in REDUCING_NOTEBOOKS
        else path
        for path in NOTEBOOKS
    ],
    ids=lambda path: path.stem,
)
def test_notebook_executes_top_to_bottom(path, tmp_path):
    executed = execute(path, workdir=tmp_path)  # raises CellExecutionError naming the failing cell
    assert _images(executed) == _images(nbformat.read(path, as_version=4))
