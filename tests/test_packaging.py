"""Packaging: declared dependencies match the imports; optional extras stay optional; the CLI entry points.

* Every third-party module eexarray imports at module level is a declared core
  dependency; one imported inside a function is a core dependency or an extra's.
* With an optional module made unimportable (``sys.modules[name] = None`` in a fresh
  interpreter, as if its extra were not installed), ``import eexarray`` and every
  submodule still import, and the feature that needs it raises an ImportError naming
  the extra to install.
* ``python -m eexarray`` and ``eexarray --version`` work and report pyproject's version.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import eexarray

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "eexarray"

# Optional modules, the extra that installs each, and a feature that needs it (None: eexarray
# has no feature of its own on it; it must only never be imported at import time).
OPTIONAL = {
    "zarr": "zarr",
    "netCDF4": "netcdf",
    "tqdm": "progress",
    "matplotlib": "demo",
    "distributed": "distributed",
    "apache_beam": "beam",
    "xarray_beam": "beam",
    "ee": None,  # earthengine-api: only ever imported for an ee object the caller already made
    "xee": None,  # only the tests compare with it
}
# Imported only to handle an object the caller made with it (an ee.Image): never needed otherwise.
CALLER_PROVIDED = {"ee"}

FEATURES = {
    "zarr": """
        from eexarray.download.zarr_store import ZarrWriter
        expect_extra("zarr", lambda: ZarrWriter(Path("unused.zarr"), None, None))
        import eexarray  # the public call refuses before any request, naming the extra
        expect_extra("zarr", lambda: eexarray.download("a/b", "unused.zarr", format="ZARR", endpoint="http://127.0.0.1:9"))
        """,
    "netCDF4": """
        from eexarray.download.netcdf import NetcdfWriter
        expect_extra("netcdf", lambda: NetcdfWriter(Path("unused.nc"), None, None))
        import eexarray
        expect_extra("netcdf", lambda: eexarray.download("a/b", "unused.nc", format="NETCDF", endpoint="http://127.0.0.1:9"))
        """,
    "tqdm": """
        from eexarray.progress import track_listing
        expect_extra("progress", lambda: list(track_listing(range(3), description="x", progress=True)))
        os.environ["EEXARRAY_PROGRESS"] = "1"  # bars asked for by the environment only: none, same items
        assert list(track_listing(range(3), description="x", threshold=1)) == [0, 1, 2]
        """,
    "apache_beam": """
        import eexarray.beam
        expect_extra("beam", lambda: eexarray.beam.ReadPixels)
        from eexarray.beam.__main__ import run
        expect_extra("beam", lambda: run(["asset", "-o", "unused.zarr"]))
        """,
    "xarray_beam": """
        import eexarray.beam
        expect_extra("beam", lambda: eexarray.beam.ReadChunks)
        """,
    "matplotlib": """
        from eexarray.accessor import visualization_options
        from eexarray.demo import run_demo
        expect_extra("demo", lambda: run_demo("unused-output", quiet=True))
        expect_extra("demo", lambda: visualization_options(1, min=0, max=1, palette="viridis"))
        assert visualization_options(1, min=0, max=1, palette=["000000", "ffffff"])  # colours need no matplotlib
        """,
}

CHILD = """
import importlib, os, pkgutil, sys
from pathlib import Path

BLOCKED = {blocked!r}
for name in BLOCKED:
    sys.modules[name] = None  # "import name" now raises ModuleNotFoundError, as if not installed

def expect_extra(extra, call):
    try:
        call()
    except ImportError as error:
        message = str(error)
        assert f"'{{extra}}' extra" in message and f"pip install 'eexarray[{{extra}}]'" in message, message
    else:
        raise AssertionError(f"no ImportError naming the {{extra!r}} extra")

import eexarray

def fail(name):
    raise

names = [info.name for info in pkgutil.walk_packages(eexarray.__path__, "eexarray.", onerror=fail)]
for name in names:
    importlib.import_module(name)
leaked = sorted(name for name in BLOCKED if sys.modules.get(name) is not None)
assert not leaked, leaked
{feature}
print("imported", len(names), "modules")
"""


def _child(*blocked: str, feature: str = "") -> subprocess.Popen[str]:
    code = CHILD.format(blocked=list(blocked), feature=textwrap.dedent(feature))
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture(scope="module")
def children() -> dict[str, tuple[int, str]]:
    """One fresh interpreter per missing module, plus "core" (all missing), run concurrently."""
    started = {module: _child(module, feature=FEATURES.get(module, "")) for module in OPTIONAL}
    started["core"] = _child(*OPTIONAL, feature="".join(FEATURES.values()))
    results = {}
    for name, process in started.items():
        output, _ = process.communicate(timeout=300)
        results[name] = (process.returncode, output)
    return results


@pytest.mark.parametrize("module", list(OPTIONAL))
def test_optional_module_missing(children, module):
    returncode, output = children[module]
    assert returncode == 0, output
    count = int(output.split("imported")[-1].split()[0])
    assert count >= 60, output  # every submodule was walked (the package has ~90)


def test_core_only(children):
    """All optional modules missing at once, as with ``pip install eexarray`` and no extras."""
    returncode, output = children["core"]
    assert returncode == 0, output


def test_require_keeps_other_import_errors(tmp_path, monkeypatch):
    from eexarray._optional import require

    with pytest.raises(
        ModuleNotFoundError, match=r"^this feature needs the 'demo' extra: pip install 'eexarray\[demo\]'$"
    ):
        require("eexarray_no_such_module", "demo", "this feature")
    assert require("json.decoder", "demo", "this feature").__name__ == "json.decoder"
    # An installed package missing a module it imports, or a submodule, is a broken install,
    # not a missing extra: the original error, unchanged.
    (tmp_path / "eexarray_broken_package").mkdir()
    (tmp_path / "eexarray_broken_package" / "__init__.py").write_text("import eexarray_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="^No module named 'eexarray_missing_dependency'$"):
        require("eexarray_broken_package", "demo", "this feature")
    with pytest.raises(ModuleNotFoundError, match="^No module named 'eexarray.no_such_module'$"):
        require("eexarray.no_such_module", "demo", "this feature")


# -- declared dependencies ----------------------------------------------------------------------


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    """The normalized distribution name of a requirement ("dask[array]>=2024" -> "dask")."""
    match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _extra_names(extras: dict[str, list[str]], extra: str) -> set[str]:
    """Distributions an extra installs, following self-references such as "eexarray[distributed]"."""
    names: set[str] = set()
    for requirement in extras[extra]:
        nested = re.fullmatch(r"eexarray\[([a-z,]+)\]", requirement)
        if nested:
            for other in nested.group(1).split(","):
                names |= _extra_names(extras, other)
        else:
            names.add(_name(requirement))
    return names


def _imports() -> dict[str, set[tuple[str, bool]]]:
    """Top-level third-party import names -> {(file, imported inside a function or class)}."""
    found: dict[str, set[tuple[str, bool]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "eexarray":
                    continue
                found.setdefault(top, set()).add((str(path.relative_to(ROOT)), id(node) not in top_level))
    return found


def test_declared_dependencies_match_imports():
    project = _pyproject()["project"]
    core = {_name(requirement) for requirement in project["dependencies"]}
    extras = project["optional-dependencies"]
    optional = set().union(*(_extra_names(extras, extra) for extra in OPTIONAL.values() if extra))
    distributions = importlib.metadata.packages_distributions()
    problems = []
    for module, places in sorted(_imports().items()):
        dists = {_name(d) for d in distributions.get(module, [])}
        assert dists, f"{module} (imported by {sorted(places)}) is not installed in the test environment"
        if dists & core:
            continue
        at_import = sorted(path for path, nested in places if not nested)
        if at_import:
            problems.append(f"{module} is imported at import time by {at_import} but is no core dependency")
        elif not dists & optional and module not in CALLER_PROVIDED:
            problems.append(f"{module} (in {sorted(places)}) belongs to no declared dependency or extra")
    assert not problems, "\n".join(problems)
    # typing_extensions is no dependency of ours: python >= 3.10 has what we use in typing.
    assert "typing_extensions" not in _imports()
    # ...and every core dependency is imported somewhere (none declared for nothing).
    imported = set().union(*({_name(d) for d in distributions.get(module, [])} for module in _imports()))
    assert core <= imported, sorted(core - imported)


def test_extras():
    extras = _pyproject()["project"]["optional-dependencies"]
    assert {"demo", "zarr", "netcdf", "progress", "distributed", "notebooks", "all", "test"} <= set(extras)
    # all = every optional extra (test is for developers)
    assert _extra_names(extras, "all") == set().union(
        *(_extra_names(extras, e) for e in extras if e not in ("all", "test"))
    )
    assert {"jupyterlab", "ipykernel", "matplotlib", "distributed"} <= _extra_names(extras, "notebooks")


def test_dask_and_distributed_floors_match():
    project = _pyproject()["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    dask = {re.sub(r"^dask(\[[a-z]+\])?", "", r) for r in requirements if _name(r) == "dask"}
    distributed = {re.sub(r"^distributed", "", r) for r in requirements if _name(r) == "distributed"}
    assert len(dask) == 1 and distributed == dask, (dask, distributed)


# -- version and entry points -------------------------------------------------------------------


def _pyproject_version() -> str:
    return _pyproject()["project"]["version"]


def test_version_is_pyprojects():
    assert eexarray.__version__ == _pyproject_version()
    assert importlib.metadata.version("eexarray") == eexarray.__version__  # the installed metadata agrees


def test_python_dash_m_help():
    result = subprocess.run([sys.executable, "-m", "eexarray", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: eexarray" in result.stdout and "download" in result.stdout


@pytest.mark.parametrize("how", ["script", "module"])
def test_version_flag(how):
    if how == "script":
        script = Path(sys.executable).with_name("eexarray")
        command = [str(script) if script.exists() else shutil.which("eexarray")]
        assert command[0], "the eexarray console script is not installed"
    else:
        command = [sys.executable, "-m", "eexarray"]
    result = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"eexarray {_pyproject_version()}"
