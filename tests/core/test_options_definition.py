"""The open options are defined once, in ``eexarray.backend.options.OPEN_OPTIONS``.

Everything that spells them out again is checked against that definition here: the
signatures and docstrings of ``eexarray.open_dataset``, the backend's ``open_dataset``,
``eexarray.download`` and ``summarize_asset``; the backend's ``open_dataset_parameters``;
the flags of ``eexarray download --help`` and ``eexarray info --help``; docs/api.md's table.
Adding an option: one ``OptionSpec``, then what these tests ask for.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

import eexarray
from eexarray.backend.entrypoint import EexarrayBackendEntrypoint
from eexarray.backend.options import (
    OPEN_OPTIONS,
    OpenOptions,
    options_for,
    options_table,
    parse_options,
)
from eexarray.cli import build_parser, main
from eexarray.download import download
from eexarray.download.command import download_arguments
from eexarray.info import summarize_asset

ROOT = Path(__file__).resolve().parents[2]

# name: (function, the command whose options it takes (None: all), its parameters that are not open options)
FUNCTIONS = {
    "eexarray.open_dataset": (eexarray.open_dataset, None, ["asset", "chunks"]),
    "EexarrayBackendEntrypoint.open_dataset": (
        EexarrayBackendEntrypoint.open_dataset,
        None,
        ["self", "filename_or_obj", "drop_variables"],
    ),
    "eexarray.download": (
        download,
        "download",
        ["asset_or_expression", "output", "format", "name", "file_per_band", "overwrite", "progress", "memory_limit"],
    ),
    "summarize_asset": (summarize_asset, "info", ["asset", "progress"]),
}
# command: its flags that are not open options
OWN_FLAGS = {
    "download": {"--help", "--output", "--format", "--name", "--file-per-band", "--no-file-per-band"}
    | {"--memory-limit", "--overwrite", "--no-progress"},
    "info": {"--help", "--json", "--progress", "--no-progress"},
}


def _normalized(text: str) -> str:
    return " ".join(text.split())


def _annotation(text: str) -> str:
    """As Python keeps it under ``from __future__ import annotations`` (its own quotes and spaces)."""
    return ast.unparse(ast.parse(text, mode="eval"))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_signature_is_the_definition(name):
    function, command, own = FUNCTIONS[name]
    parameters = inspect.signature(function).parameters
    specs = options_for(command)
    assert [p for p in parameters if p not in own] == [spec.name for spec in specs], (
        f"{name}: its options must be OPEN_OPTIONS' (for {command or 'open_dataset'}), in that order"
    )
    assert [p for p in parameters if p in own] == own
    for spec in specs:
        parameter = parameters[spec.name]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, (name, spec.name)
        assert _annotation(parameter.annotation) == _annotation(spec.annotation), (name, spec.name)
        assert type(parameter.default) is type(spec.default) and parameter.default == spec.default, (name, spec.name)


def _documented_arguments(docstring: str) -> dict[str, str]:
    """The ``Args:`` entries of a Google-style docstring, continuation lines joined."""
    lines = inspect.cleandoc(docstring).splitlines()
    start = lines.index("Args:") + 1
    entries: dict[str, str] = {}
    current = None
    for line in lines[start:]:
        if not line.strip():
            break
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            current = match.group(1)
            entries[current] = match.group(2)
        else:
            assert current is not None and line.startswith("        "), line
            entries[current] += " " + line.strip()
    return entries


@pytest.mark.parametrize("name", FUNCTIONS)
def test_docstring_documents_every_option_with_its_definition(name):
    function, command, _ = FUNCTIONS[name]
    documented = _documented_arguments(function.__doc__)
    parameters = [p for p in inspect.signature(function).parameters if p != "self"]
    assert list(documented) == parameters, f"{name}: one Args: entry per parameter, in order"
    for spec in options_for(command):
        assert _normalized(documented[spec.name]) == _normalized(spec.doc), (name, spec.name)


def test_help_lists_every_option_with_type_and_default():
    text = "\n".join(line.strip() for line in inspect.getdoc(eexarray.open_dataset).splitlines())
    rendered = str(inspect.signature(eexarray.open_dataset))
    for spec in OPEN_OPTIONS:
        assert f"{spec.name}: {_annotation(spec.annotation)!r} = {spec.default!r}" in rendered
        assert f"{spec.name}: {spec.doc}" in text


def test_backend_parameters_and_parsed_options_follow_the_definition():
    names = tuple(spec.name for spec in OPEN_OPTIONS)
    assert EexarrayBackendEntrypoint.open_dataset_parameters == ("filename_or_obj", "drop_variables", *names)
    assert [f.name for f in dataclasses.fields(OpenOptions)] == [s.name for s in OPEN_OPTIONS if s.group == "pixels"]
    assert {f.name: f.default for f in dataclasses.fields(OpenOptions)} == {
        s.name: s.default for s in OPEN_OPTIONS if s.group == "pixels"
    }
    assert parse_options() == OpenOptions()
    assert len(set(names)) == len(names)
    for spec in OPEN_OPTIONS:
        assert spec.doc and "\n" not in spec.doc and spec.default_doc, spec.name


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", ["download", "info"])
def test_cli_flags_are_the_definition(command, capsys):
    text = _help(command, capsys)
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))
    exposed = [spec for spec in options_for(command) if spec.cli is not None]
    assert flags - OWN_FLAGS[command] == {spec.flag for spec in exposed}
    assert "-o" in text if command == "download" else True
    flattened = _normalized(text)
    for spec in exposed:
        assert _normalized((spec.cli.help or spec.doc).replace("`", "")) in flattened, spec.name


def test_cli_flags_parse_to_option_values(tmp_path):
    geojson = tmp_path / "area.geojson"
    geojson.write_text('{"type": "Point", "coordinates": [1, 2]}')
    argv = ["download", "some/asset", "-o", str(tmp_path / "o.tif"), "--bands", "a,b", "--bands", "c"]
    argv += ["--crs", "EPSG:4326", "--scale", "10,20", "--region", str(geojson), "--start", "2020-01-01"]
    argv += ["--end", "2021-01-01", "--filter", "x < 1", "--endpoint", "http://h", "--project", "p"]
    argv += ["--high-volume", "--max-concurrency", "3", "--resolution", "0.5", "--max-pixels-per-side", "4096"]
    argv += ["--max-images", "200"]
    argv += ["--request-timeout", "12.5", "--resampling", "bicubic"]
    source, kwargs = download_arguments(build_parser().parse_args(argv))
    assert source == "some/asset"
    assert {k: kwargs[k] for k in (s.name for s in options_for("download") if s.cli)} == {
        "bands": ["a", "b", "c"],
        "crs": "EPSG:4326",
        "scale": (10.0, 20.0),
        "region": {"type": "Point", "coordinates": [1, 2]},
        "start": "2020-01-01",
        "end": "2021-01-01",
        "filter": "x < 1",
        "max_images": 200,
        "endpoint": "http://h",
        "high_volume": True,
        "project": "p",
        "max_concurrency": 3,
        "resolution": 0.5,
        "max_pixels_per_side": 4096,
        "request_timeout": 12.5,
        "resampling": "bicubic",
    }
    _, unlimited = download_arguments(
        build_parser().parse_args(["download", "a", "-o", "o.tif", "--max-images", "none"])
    )
    assert unlimited["max_images"] is None
    _, defaults = download_arguments(build_parser().parse_args(["download", "a", "-o", "o.tif"]))
    for spec in options_for("download"):
        if spec.cli is not None:
            assert defaults[spec.name] == spec.default, spec.name  # an absent flag means the Python default


def test_docs_table_is_the_definition():
    text = (ROOT / "docs" / "api.md").read_text()
    after = text[text.index("<!-- options table") :].split("-->", 1)[1].strip()
    table = after.split("\n\n")[0]
    assert table == options_table(), "regenerate docs/api.md's table with: python -m eexarray.backend.options"


@pytest.mark.parametrize(
    "call",
    [
        lambda: eexarray.open_dataset("A/B", bandz=["x"]),
        lambda: xr.open_dataset("ee://A/B", engine="eexarray", bandz=["x"]),
        lambda: download("A/B", "out.tif", bandz=["x"]),
        lambda: summarize_asset("A/B", bandz=["x"]),
    ],
    ids=["open_dataset", "xr.open_dataset", "download", "summarize_asset"],
)
def test_unknown_option_names_the_valid_ones_before_any_request(call, monkeypatch):
    monkeypatch.setenv("EEXARRAY_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: a request would fail otherwise
    with pytest.raises(TypeError, match=r"option\(s\) \['bandz'\].*; valid options are \[.*'endpoint'"):
        call()


def test_unknown_option_suggests_the_closest():
    with pytest.raises(TypeError, match=r"\['bandz'\] \(did you mean 'bands'\?\)"):
        eexarray.open_dataset("A/B", bandz=["x"])


def test_ee_uris_are_guessed_as_eexarray_with_netcdf4_installed():
    """In a fresh interpreter that never imported eexarray: xarray loads it while listing engines."""
    pytest.importorskip("netCDF4")
    code = (
        "import sys, xarray as xr\n"
        "from xarray.backends.plugins import guess_engine\n"
        "from xarray.backends.netCDF4_ import NetCDF4BackendEntrypoint\n"
        "assert 'eexarray' not in sys.modules\n"
        "print(guess_engine('ee://COPERNICUS/S2'), guess_engine('projects/p/assets/x'),\n"
        "      NetCDF4BackendEntrypoint().guess_can_open('https://example.com/data.nc'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["eexarray", "eexarray", "True"]  # netCDF4 still takes its own URLs


def test_the_readmes_list_of_options_names_every_option():
    """README's one-paragraph list of open_dataset options is checked against OPEN_OPTIONS."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    paragraph = readme[readme.index("Options of `open_dataset`:") :].split("\n\n")[0]
    listed = set(re.findall(r"`([a-z_]+)`", paragraph))
    assert {option.name for option in OPEN_OPTIONS} <= listed, "README lists every option"
