"""Bad arguments are refused, naming the bad value and what is valid, before any pixel request."""

from __future__ import annotations

import re

import pytest

import eexarray
from eexarray.download.atomic import partial_path
from eexarray.download.zarr_store import ZarrWriter
from tests.qp import FILL_VALUE, dask_expr_gap

from .conftest import Counter


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"format": "JPEG"}, ValueError, "format='JPEG' is not supported; use one of ['GEO_TIFF'"),
        ({"format": 3}, ValueError, "format=3 is not supported"),
        ({"format": "GEO_TIFF", "file_per_band": True}, ValueError, "file_per_band=True contradicts format='GEO_TIFF'"),
        ({"format": "ZIPPED_GEO_TIFF", "file_per_band": True}, ValueError, "contradicts format='ZIPPED_GEO_TIFF'"),
        ({"file_per_band": "yes"}, TypeError, "file_per_band must be True, False or None, got 'yes'"),
        ({"name": "scene"}, ValueError, "name='scene' names the files inside a zip"),
        ({"format": "ZIPPED_GEO_TIFF", "name": "../up"}, ValueError, "name='../up' is not a valid base file name"),
        ({"memory_limit": "lots"}, ValueError, "memory_limit='lots' is not a size"),
        ({"memory_limit": 0}, ValueError, "memory_limit=0 must be positive"),
        ({"memory_limit": True}, TypeError, "memory_limit must be a number of bytes"),
        ({"overwrite": "no"}, TypeError, "overwrite must be True or False, got 'no'"),
        ({"progress": None}, TypeError, "progress must be True or False, got None"),
        ({"crs": "EPSG:999999", "scale": 10}, ValueError, "EPSG:999999"),
        ({"region": (10, 50, 5, 60)}, ValueError, "empty or inverted"),
        ({"start": "June"}, ValueError, "start='June' is not a date"),
        ({"max_concurrency": 0}, ValueError, "max_concurrency must be a positive integer, got 0"),
        ({"endpoint": "ftp://example.com"}, ValueError, "endpoint must be an http(s) URL"),
    ],
)
def test_bad_arguments_make_no_request_at_all(server, tmp_path, options, error, message):
    counter = Counter(server)
    options.setdefault("endpoint", server.url)
    with pytest.raises(error, match=re.escape(message)):
        eexarray.download("dl/image", tmp_path / "out", progress=options.pop("progress", False), **options)
    assert counter.requests == 0
    assert list(tmp_path.iterdir()) == []


def test_an_existing_output_is_refused_by_name_before_any_request(server, tmp_path):
    existing = tmp_path / "image.tif"
    existing.write_text("keep me")
    counter = Counter(server)
    with pytest.raises(FileExistsError, match=re.escape(f"{str(existing)!r} already exists; pass overwrite=True")):
        eexarray.download("dl/image", existing, endpoint=server.url, progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        eexarray.download("dl/image", tmp_path / "missing" / "x.tif", endpoint=server.url, progress=False)
    with pytest.raises(TypeError, match="asset_or_expression must be an asset id"):
        eexarray.download(42, tmp_path / "x.tif", endpoint=server.url, progress=False)
    assert counter.requests == 0 and existing.read_text() == "keep me"


@pytest.mark.parametrize(
    ("asset", "options", "message"),
    [
        ("dl/image", {"bands": ["a", "nope"]}, "Unknown band(s) ['nope']"),
        ("dl/image", {"start": "2021-01-01"}, "start/end/filter apply to image collections"),
        ("dl/missing", {}, 'Asset "projects/earthengine-public/assets/dl/missing" not found'),
        # Too little memory for even the smallest block: refused once the bands are known.
        ("dl/image", {"memory_limit": 1000}, "memory_limit=1000 bytes cannot hold one block"),
    ],
)
def test_arguments_checked_against_metadata_make_no_pixel_request(server, tmp_path, asset, options, message):
    counter = Counter(server)
    with pytest.raises(Exception, match=re.escape(message)):
        eexarray.download(asset, tmp_path / "out.tif", endpoint=server.url, progress=False, **options)
    assert counter.pixels == 0
    assert list(tmp_path.iterdir()) == []


@dask_expr_gap(FILL_VALUE, NotImplementedError)
def test_a_partial_store_of_another_download_is_not_discarded(server, tmp_path, monkeypatch):
    out = tmp_path / "image.zarr"
    fail_at_second_block(monkeypatch, ZarrWriter)
    with pytest.raises(InjectedFailure):
        eexarray.download(
            "dl/image", out, format="ZARR", bands=["a"], endpoint=server.url, progress=False, memory_limit="1MB"
        )
    monkeypatch.undo()
    assert partial_path(out).is_dir() and not out.exists()
    counter = Counter(server)
    with pytest.raises(FileExistsError, match="holds an interrupted download of other data"):
        eexarray.download("dl/image", out, format="ZARR", bands=["b"], endpoint=server.url, progress=False)
    assert counter.pixels == 0
    # overwrite=True discards it and starts again.
    eexarray.download("dl/image", out, format="ZARR", bands=["b"], endpoint=server.url, progress=False, overwrite=True)
    assert out.is_dir() and not partial_path(out).exists()


class InjectedFailure(RuntimeError):
    """The failure fail_at_second_block injects (distinct from any real error)."""


def fail_at_second_block(monkeypatch, writer_class):
    """Make ``writer_class.write`` raise at the second block (an injected failure mid-download)."""
    original = writer_class.write
    calls = []

    def failing(self, block, arrays):
        calls.append(block)
        if len(calls) == 2:
            raise InjectedFailure("injected failure")
        return original(self, block, arrays)

    monkeypatch.setattr(writer_class, "write", failing)
