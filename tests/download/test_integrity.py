"""Nothing corrupt, nothing silent: full disks, concurrent downloads, --overwrite, stale or damaged resumes.

Each test reproduces one fault of issue 12 (items 1-5) and proves the download either
completes exactly or fails clearly without publishing anything.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

import eexarray
from eexarray.cli import main
from eexarray.download import api, resume, zarr_store
from eexarray.download.atomic import MARKER_ATTR, OutputLockedError, is_our_store, lock_path, locked, partial_path
from eexarray.download.geotiff import SCRATCH_MARKER, GeoTiffWriter
from eexarray.download.plan import plan_blocks
from eexarray.download.writer import OutputWriteError
from eexarray.download.zarr_store import ZarrWriter
from tests.qp import FILL_VALUE, dask_expr_gap

from .conftest import IMAGE_BANDS, IMAGE_DTYPES, SMALL_GRID, Counter, reference

# dl/small in 96 x 96 px blocks: 20 blocks, one request each.
LIMIT = 1_000_000
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def file_size_limit(limit):
    """preexec_fn: writes past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored, so they fail, not kill)."""

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def run_python(args, preexec_fn=None):
    environment = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, preexec_fn=preexec_fn, env=environment
    )


def cli(*args, preexec_fn=None):
    return run_python(["-m", "eexarray.cli", "download", *map(str, args)], preexec_fn)


def leftovers(folder, stem):
    return sorted(path.name for path in folder.iterdir() if path.name.startswith(stem))


def largest_file(path):
    return path.stat().st_size if path.is_file() else max(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- 1. a full disk ---------------------------------------------------------------------------------


ZARR_GAP = dask_expr_gap(FILL_VALUE, NotImplementedError)  # writing a Zarr store's metadata (to_zarr)


@pytest.mark.parametrize("extension", ["tif", "zip", "npy", "nc", pytest.param("zarr", marks=ZARR_GAP)])
@pytest.mark.parametrize("where", ["midway", "last byte"])
def test_a_full_disk_fails_the_download_clearly_and_publishes_nothing(server, tmp_path, extension, where):
    complete = eexarray.download(
        "dl/small", tmp_path / f"complete.{extension}", endpoint=server.url, memory_limit=LIMIT, progress=False
    )
    size = largest_file(complete)  # the largest file this download writes (a Zarr store: its largest chunk)
    # "last byte": everything but the very end fits; a GeoTIFF then fails in close(), which does not raise.
    limit = size // 2 if where == "midway" else size - 1
    out = tmp_path / f"out.{extension}"
    result = cli(
        "dl/small", "-o", out, "--endpoint", server.url, "--memory-limit", LIMIT, preexec_fn=file_size_limit(limit)
    )
    assert result.returncode == 1, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("eexarray download: ") and "no output was published" in message, message
    assert "is the disk full" in message and "Traceback" not in result.stderr
    assert not out.exists()
    if (extension, where) == ("tif", "last byte"):  # the case close() hides: GDAL's own reports say so
        assert "GDAL failed while closing" in message and "GDAL signalled an error" in message
    if extension == "zarr":  # kept to resume once there is room
        assert leftovers(tmp_path, "out") == ["out.zarr.partial"] and "resume" in message
        eexarray.download("dl/small", out, endpoint=server.url, memory_limit=LIMIT, progress=False)
        expected = reference(server, "dl/small")
        stored = xr.open_zarr(out, mask_and_scale=False)
        for band in IMAGE_BANDS:
            np.testing.assert_array_equal(stored[band].values, expected[band])
    else:
        assert leftovers(tmp_path, "out") == []  # no partial file, scratch folder or lock file


def test_gdal_errors_are_counted_per_thread_and_the_logger_level_restored():
    from eexarray.download.geotiff import RASTERIO_ERROR_LOGGER, GdalErrors

    logger = logging.getLogger(RASTERIO_ERROR_LOGGER)
    before = logger.level
    with GdalErrors() as outer, GdalErrors() as inner:
        assert logger.getEffectiveLevel() <= logging.INFO
        logger.info("GDAL signalled an error: err_no=%r, msg=%r", 1, "on this thread")
        other = threading.Thread(target=logger.info, args=("GDAL signalled an error: err_no=1, msg='elsewhere'",))
        other.start()
        other.join()
        logger.info("something else")
    assert outer.messages == inner.messages == ["GDAL signalled an error: err_no=1, msg='on this thread'"]
    assert logger.level == before and outer not in logger.handlers
    with pytest.raises(OutputWriteError, match="GDAL failed while closing '/x.tif'.*on this thread"):
        outer.check(Path("/x.tif"), "closing")


def test_gdal_failing_at_close_is_caught_by_reading_the_file_back(server, tmp_path):
    """Even if GDAL's error reports were lost, the read-back check refuses the GeoTIFF cut at close."""
    complete = eexarray.download("dl/small", tmp_path / "complete.tif", endpoint=server.url, progress=False)
    out = tmp_path / "out.tif"
    script = (
        "import sys, eexarray\n"
        "from eexarray.download import geotiff\n"
        "geotiff.GdalErrors.check = lambda self, path, doing: None  # blind to GDAL's errors\n"
        "eexarray.download('dl/small', sys.argv[2], endpoint=sys.argv[1], progress=False)\n"
    )
    limit = complete.stat().st_size - 1
    result = run_python(["-c", script, server.url, str(out)], preexec_fn=file_size_limit(limit))
    assert result.returncode != 0
    assert "OutputWriteError" in result.stderr and "is damaged" in result.stderr, result.stderr[-2000:]
    assert leftovers(tmp_path, "out") == []


def test_a_geotiff_damaged_after_close_is_not_published(server, tmp_path, monkeypatch):
    original = GeoTiffWriter._close

    def close_then_damage(self):
        original(self)
        with open(self.path, "r+b") as handle:  # overwrite the middle of the file (compressed tiles)
            handle.seek(os.path.getsize(self.path) // 2)
            handle.write(b"\x00" * 4096)

    monkeypatch.setattr(GeoTiffWriter, "_close", close_then_damage)
    with pytest.raises(OutputWriteError, match="is damaged"):
        eexarray.download("dl/small", tmp_path / "out.tif", endpoint=server.url, progress=False)
    assert list(tmp_path.iterdir()) == []


# -- 2. two downloads to one output -----------------------------------------------------------------

SLOW_DOWNLOAD = f"""
import sys, eexarray
eexarray.download("dl/small", sys.argv[2], endpoint=sys.argv[1], memory_limit={LIMIT}, progress=False)
"""


@pytest.mark.parametrize("extension", ["tif", "npy"])
def test_a_second_download_to_the_same_output_is_refused_and_the_first_completes(
    slow_server, server, tmp_path, monkeypatch, capsys, extension
):
    out = tmp_path / f"small.{extension}"
    first = subprocess.Popen(
        [sys.executable, "-c", SLOW_DOWNLOAD, slow_server.url, str(out)], env={**os.environ, "PYTHONPATH": ROOT}
    )
    try:
        deadline = time.monotonic() + 60
        while not (lock_path(out).exists() and partial_path(out).exists()):
            assert first.poll() is None and time.monotonic() < deadline, "the first download did not start"
            time.sleep(0.02)

        def no_request(*args, **kwargs):
            raise AssertionError("the refused download opened the asset")

        monkeypatch.setattr(api, "open_target", no_request)
        with pytest.raises(OutputLockedError) as refused:
            eexarray.download("dl/small", out, endpoint=slow_server.url, progress=False, overwrite=True)
        assert f"another download to {str(out)!r} is running (process {first.pid})" in str(refused.value)
        assert main(["download", "dl/small", "-o", str(out), "--endpoint", slow_server.url, "--overwrite"]) == 2
        assert "another download to" in capsys.readouterr().err
        assert partial_path(out).exists()  # the refused runs left the first one's partial alone
        assert first.wait(timeout=120) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    expected = reference(server, "dl/small")
    if extension == "tif":
        with rasterio.open(out) as tif:
            for index, band in enumerate(IMAGE_BANDS, start=1):
                np.testing.assert_array_equal(tif.read(index), expected[band].astype(tif.dtypes[0]))
    else:
        stored = np.load(out)
        for band in IMAGE_BANDS:
            np.testing.assert_array_equal(stored[band], expected[band])
    assert leftovers(tmp_path, "small") == [out.name]  # no lock file left


def test_threads_of_one_process_cannot_download_to_one_output_at_once(server, tmp_path):
    out = tmp_path / "small.npy"
    with locked(out), ThreadPoolExecutor(1) as pool:  # as a download in another thread holds it
        attempt = pool.submit(eexarray.download, "dl/small", out, endpoint=server.url, progress=False)
        with pytest.raises(OutputLockedError, match=re.escape(f"another download to {str(out)!r} is running")):
            attempt.result(timeout=60)
    eexarray.download("dl/small", out, endpoint=server.url, progress=False)  # released: it works
    assert np.load(out).shape == (SMALL_GRID.height, SMALL_GRID.width)


def test_a_stale_lock_file_of_a_killed_download_does_not_block(server, tmp_path):
    out = tmp_path / "small.tif"
    lock_path(out).write_text("999999")  # left by a killed process: the file exists, nobody locks it
    eexarray.download("dl/small", out, endpoint=server.url, progress=False)
    assert out.is_file() and not lock_path(out).exists()


# -- 3. --overwrite ---------------------------------------------------------------------------------


def make_tree(folder):
    folder.mkdir()
    (folder / "notes.txt").write_text("precious")
    (folder / "sub").mkdir()
    (folder / "sub" / "data.bin").write_bytes(b"\x01\x02")
    return folder


def intact(folder):
    return (folder / "notes.txt").read_text() == "precious" and (
        folder / "sub" / "data.bin"
    ).read_bytes() == b"\x01\x02"


@pytest.mark.parametrize(
    ("output", "options", "error", "message"),
    [
        # A single-file format never replaces a folder (the reported case: -o ~/projects --overwrite).
        ("projects", {}, IsADirectoryError, "is a folder; a download of a file never replaces a folder"),
        ("scene.tif", {}, IsADirectoryError, "never replaces a folder"),
        ("scene.npy", {}, IsADirectoryError, "never replaces a folder"),
        ("scene.nc", {}, IsADirectoryError, "never replaces a folder"),
        ("scene.zip", {}, IsADirectoryError, "never replaces a folder"),
        # A Zarr download replaces only a Zarr store written by eexarray download.
        ("store.zarr", {}, FileExistsError, "is a folder that is not a Zarr store written by eexarray download"),
        ("store", {"format": "ZARR"}, FileExistsError, "is never deleted or replaced"),
    ],
)
def test_overwrite_never_deletes_a_folder_that_is_not_its_own_output(server, tmp_path, output, options, error, message):
    folder = make_tree(tmp_path / output)
    counter = Counter(server)
    with pytest.raises(error, match=re.escape(message)):
        eexarray.download("dl/small", folder, endpoint=server.url, progress=False, overwrite=True, **options)
    assert intact(folder) and counter.requests == 0
    assert leftovers(tmp_path, "") == [output]


def test_overwrite_never_replaces_a_file_with_a_folder_nor_follows_a_link_to_a_folder(server, tmp_path):
    document = tmp_path / "thesis.zarr"
    document.write_text("chapter 1")
    folder = make_tree(tmp_path / "home")
    link = tmp_path / "link.tif"
    link.symlink_to(folder, target_is_directory=True)
    counter = Counter(server)
    with pytest.raises(FileExistsError, match="is a file; a Zarr download writes a folder and never replaces a file"):
        eexarray.download("dl/small", document, endpoint=server.url, progress=False, overwrite=True)
    with pytest.raises(IsADirectoryError, match="never replaces a folder"):
        eexarray.download("dl/small", link, endpoint=server.url, progress=False, overwrite=True)
    assert document.read_text() == "chapter 1" and intact(folder) and counter.requests == 0


@pytest.mark.parametrize(
    ("output", "in_the_way", "message"),
    [
        ("scene.tif", "scene.tif.partial", "leftover '{}' is a folder"),
        ("store.zarr", "store.zarr.partial", "leftover '{}' is a folder that is not a Zarr store"),
    ],
)
def test_a_folder_in_the_way_of_the_temporary_output_is_left_alone(server, tmp_path, output, in_the_way, message):
    folder = make_tree(tmp_path / in_the_way)
    counter = Counter(server)
    with pytest.raises(OSError, match=re.escape(message.format(folder))):
        eexarray.download("dl/small", tmp_path / output, endpoint=server.url, progress=False, overwrite=True)
    assert intact(folder) and counter.requests == 0


def test_a_folder_in_the_way_of_the_zip_scratch_folder_is_left_alone(server, tmp_path):
    folder = make_tree(tmp_path / "scene.zip.partial.files")
    counter = Counter(server)
    with pytest.raises(FileExistsError, match="was not made by eexarray download"):
        eexarray.download("dl/small", tmp_path / "scene.zip", endpoint=server.url, progress=False)
    assert intact(folder) and counter.pixels == 0
    assert leftovers(tmp_path, "scene") == ["scene.zip.partial.files"]
    # A scratch folder of ours (a killed zip download) is cleared and the download completes.
    (tmp_path / "ours.zip.partial.files").mkdir()
    (tmp_path / "ours.zip.partial.files" / SCRATCH_MARKER).write_bytes(b"")
    eexarray.download("dl/small", tmp_path / "ours.zip", endpoint=server.url, progress=False)
    assert zipfile.ZipFile(tmp_path / "ours.zip").namelist() == ["small.tif"]
    assert leftovers(tmp_path, "ours") == ["ours.zip"]


@ZARR_GAP
def test_our_zarr_stores_are_marked_and_replaced_by_overwrite(server, tmp_path):
    store = eexarray.download("dl/small", tmp_path / "s.zarr", bands=["a"], endpoint=server.url, progress=False)
    assert is_our_store(store) and xr.open_zarr(store).attrs[MARKER_ATTR] == "Zarr store written by eexarray download"
    eexarray.download("dl/small", store, bands=["b"], endpoint=server.url, progress=False, overwrite=True)
    assert list(xr.open_zarr(store, decode_coords="all").data_vars) == ["b"] and leftovers(tmp_path, "") == ["s.zarr"]


def test_cli_overwrite_of_a_folder_exits_2_and_keeps_it(server, tmp_path, capsys):
    folder = make_tree(tmp_path / "projects")
    assert main(["download", "dl/small", "-o", str(folder), "--overwrite", "--endpoint", server.url]) == 2
    assert "is a folder; a download of a file never replaces a folder" in capsys.readouterr().err
    assert intact(folder)


# -- 4. an asset reprocessed between two runs of a Zarr download ------------------------------------

ROOT_GRID = (Affine(10, 0, 500000, 0, -10, 4200000), 200, 150)  # transform, width, height


def write_image(path, offset, mtime):
    transform, width, height = ROOT_GRID
    rows, cols = np.mgrid[0:height, 0:width]
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "uint16"}
    with rasterio.open(path, "w", crs="EPSG:32610", transform=transform, **profile) as tif:
        tif.write((rows * 7 + cols + offset).astype("uint16"), 1)
        tif.set_band_description(1, "v")
    os.utime(path, (mtime, mtime))
    return (rows * 7 + cols + offset).astype("uint16")


def fail_at_block(monkeypatch, writer_class, number):
    original = writer_class.write
    calls = []

    class Injected(RuntimeError):
        pass

    def failing(self, block, arrays):
        calls.append(block)
        if len(calls) == number:
            raise Injected(f"injected failure at block {number}")
        return original(self, block, arrays)

    monkeypatch.setattr(writer_class, "write", failing)
    return Injected


@dask_expr_gap(FILL_VALUE, NotImplementedError)
def test_a_zarr_download_does_not_resume_over_an_asset_updated_since(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    write_image(root / "scene.tif", offset=0, mtime=1_600_000_000)
    out = tmp_path / "scene.zarr"
    with eexarray.serve(root) as rooted:
        options = {"format": "ZARR", "endpoint": rooted.url, "memory_limit": 200_000, "progress": False}
        injected = fail_at_block(monkeypatch, ZarrWriter, 3)
        with pytest.raises(injected):
            eexarray.download("scene", out, **options)
        monkeypatch.undo()
        assert len(resume.read_done(partial_path(out))) == 2
        reprocessed = write_image(root / "scene.tif", offset=1000, mtime=1_700_000_000)  # a new updateTime
        rooted.reset_stats()
        with pytest.raises(FileExistsError) as refused:
            eexarray.download("scene", out, **options)
        message = str(refused.value)
        assert "cannot be resumed" in message and "updateTime" in message and "2020-09-13T12:26:40" in message
        assert "overwrite=True (--overwrite)" in message
        assert rooted.stats()["pixel_requests"] == [] and partial_path(out).is_dir()
        eexarray.download("scene", out, overwrite=True, **options)  # starts again, from the new asset only
        np.testing.assert_array_equal(xr.open_zarr(out, mask_and_scale=False)["v"].values, reprocessed)


# -- 5. chunks lost or cut after they were logged ---------------------------------------------------


@dask_expr_gap(FILL_VALUE, NotImplementedError)
def test_a_resume_fetches_again_the_logged_blocks_whose_chunks_were_lost_or_cut(server, tmp_path, monkeypatch, caplog):
    out = tmp_path / "small.zarr"
    partial = partial_path(out)
    plan = plan_blocks(SMALL_GRID.height, SMALL_GRID.width, 1, IMAGE_DTYPES, LIMIT)
    injected = fail_at_block(monkeypatch, ZarrWriter, 8)
    with pytest.raises(injected):
        eexarray.download("dl/small", out, format="ZARR", endpoint=server.url, memory_limit=LIMIT, progress=False)
    monkeypatch.undo()
    logged = resume.read_done(partial)
    assert len(logged) == 7
    import zarr

    group = zarr.open_group(partial, mode="r")
    lost = zarr_store.chunk_file(partial, group["a"], (0, 0))  # block (0, 0, 0): deleted
    cut = zarr_store.chunk_file(partial, group["c"], (0, 1))  # block (0, 0, 1): truncated
    emptied = zarr_store.chunk_file(partial, group["d"], (0, 2))  # block (0, 0, 2): zero length
    lost.unlink()
    with open(cut, "r+b") as handle:
        handle.truncate(cut.stat().st_size // 2)
    emptied.write_bytes(b"")
    counter = Counter(server)
    with caplog.at_level(logging.WARNING, logger="eexarray.download"):
        eexarray.download("dl/small", out, format="ZARR", endpoint=server.url, memory_limit=LIMIT, progress=False)
    assert counter.pixels == plan.block_count - len(logged) + 3  # the missing blocks and the 3 damaged ones
    assert "3 of 7 blocks recorded as written no longer match" in caplog.text
    expected = reference(server, "dl/small")
    stored = xr.open_zarr(out, mask_and_scale=False)
    for band in IMAGE_BANDS:
        np.testing.assert_array_equal(stored[band].values, expected[band])  # no zeros where chunks were lost


@dask_expr_gap(FILL_VALUE, NotImplementedError)
def test_each_block_is_logged_only_after_its_chunks_are_synced_to_disk(server, tmp_path, monkeypatch):
    events = []
    original_sync, original_record = zarr_store.fsync_path, resume.BlockLog.record
    monkeypatch.setattr(zarr_store, "fsync_path", lambda path: (events.append(("sync", path)), original_sync(path)))
    monkeypatch.setattr(
        resume.BlockLog,
        "record",
        lambda self, block, sums: (events.append(("log", block)), original_record(self, block, sums)),
    )
    out = tmp_path / "small.zarr"
    eexarray.download("dl/small", out, format="ZARR", endpoint=server.url, memory_limit=LIMIT, progress=False)
    import zarr

    group = zarr.open_group(out, mode="r")
    partial = partial_path(out)
    synced: set = set()
    logs = 0
    for kind, value in events:
        if kind == "sync":
            synced.add(value)
            continue
        logs += 1
        _, row_block, col_block = value
        for band in IMAGE_BANDS:
            chunk = zarr_store.chunk_file(partial, group[band], (row_block, col_block))
            assert chunk in synced and chunk.parent in synced, (value, band)
        synced.clear()
    assert logs == 20


# -- issue 14, item 6: the format from the output's extension ---------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "check"),
    [
        ("scene.tif", {}, lambda path: rasterio.open(path).driver == "GTiff"),
        ("scene.TIFF", {}, lambda path: rasterio.open(path).driver == "GTiff"),
        ("scene", {}, lambda path: rasterio.open(path).driver == "GTiff"),  # no extension: GeoTIFF
        ("scene.zip", {}, lambda path: zipfile.ZipFile(path).namelist() == ["small.tif"]),
        ("scene.zip", {"file_per_band": True}, lambda path: zipfile.ZipFile(path).namelist() == ["small.a.tif"]),
        ("scene.npy", {}, lambda path: np.load(path).dtype.names == ("a",)),
        pytest.param(
            "scene.zarr",
            {},
            lambda path: path.is_dir() and list(xr.open_zarr(path, decode_coords="all").data_vars) == ["a"],
            marks=ZARR_GAP,
        ),
        ("scene.nc", {}, lambda path: list(xr.open_dataset(path, decode_coords="all").data_vars) == ["a"]),
        ("scene.out", {"format": "NPY"}, lambda path: np.load(path).dtype.names == ("a",)),  # unknown: as told
    ],
)
def test_the_format_follows_the_output_extension(server, tmp_path, name, options, check):
    out = eexarray.download("dl/small", tmp_path / name, bands=["a"], endpoint=server.url, progress=False, **options)
    assert check(out)
    expected = reference(server, "dl/small", bands=["a"])["a"]
    if name.endswith(".nc"):
        np.testing.assert_array_equal(xr.open_dataset(out, mask_and_scale=False)["a"].values, expected)
    if name.endswith(".npy"):
        np.testing.assert_array_equal(np.load(out)["a"], expected)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("out.nc", {"format": "GEO_TIFF"}, "output '{}' has the extension '.nc' of NETCDF, but format='GEO_TIFF'"),
        (
            "out.tif",
            {"format": "NETCDF"},
            "has the extension '.tif' of GEO_TIFF, but format='NETCDF'; name the output with .nc or .nc4",
        ),
        ("out.zarr", {"format": "zipped_geo_tiff"}, "of ZARR, but format='ZIPPED_GEO_TIFF'; name the output with .zip"),
        ("out.zip", {"format": "NPY"}, "'.zip' of ZIPPED_GEO_TIFF or ZIPPED_GEO_TIFF_PER_BAND, but format='NPY'"),
        ("out.tif", {"file_per_band": True}, "'.tif' of GEO_TIFF, but format='ZIPPED_GEO_TIFF_PER_BAND'"),
        ("out.png", {}, "cannot tell the format of output '{}' from its extension '.png'"),
    ],
)
def test_an_output_extension_of_another_format_is_refused_before_any_request(server, tmp_path, name, options, message):
    counter = Counter(server)
    with pytest.raises(ValueError, match=re.escape(message.format(tmp_path / name))):
        eexarray.download("dl/small", tmp_path / name, endpoint=server.url, progress=False, **options)
    assert counter.requests == 0 and list(tmp_path.iterdir()) == []


def test_cli_refuses_an_extension_of_another_format(server, tmp_path, capsys):
    out = tmp_path / "out.nc"
    assert main(["download", "dl/small", "-o", str(out), "--format", "GEO_TIFF", "--endpoint", server.url]) == 2
    assert "has the extension '.nc' of NETCDF, but format='GEO_TIFF'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_file_of_the_users_named_like_the_lock_file_is_left_alone(server, tmp_path):
    notes = lock_path(tmp_path / "small.tif")
    notes.write_text("my notes about small.tif")
    with pytest.raises(FileExistsError, match="is in the way of the download's lock file"):
        eexarray.download("dl/small", tmp_path / "small.tif", endpoint=server.url, progress=False)
    assert notes.read_text() == "my notes about small.tif" and leftovers(tmp_path, "") == [notes.name]


@dask_expr_gap(FILL_VALUE, NotImplementedError)
def test_a_collection_download_does_not_resume_over_an_image_reprocessed_since(tmp_path, monkeypatch):
    series = tmp_path / "root" / "S2"
    series.mkdir(parents=True)
    (series / "collection.json").write_text("{}")
    for day, offset in (("20220301", 0), ("20220311", 50)):
        write_image(series / f"{day}.tif", offset=offset, mtime=1_600_000_000)
        (series / f"{day}.json").write_text(f'{{"startTime": "{day[:4]}-{day[4:6]}-{day[6:]}T00:00:00Z"}}')
    out = tmp_path / "series.zarr"
    with eexarray.serve(tmp_path / "root") as rooted:
        options = {"format": "ZARR", "endpoint": rooted.url, "memory_limit": 200_000, "progress": False}
        injected = fail_at_block(monkeypatch, ZarrWriter, 3)
        with pytest.raises(injected):
            eexarray.download("S2", out, **options)
        monkeypatch.undo()
        assert {block[0] for block in resume.read_done(partial_path(out))} == {0}  # blocks of the first image
        first = write_image(series / "20220301.tif", offset=2000, mtime=1_700_000_000)  # reprocessed
        with pytest.raises(FileExistsError, match=r"updateTime .*stored \[\"2020-09-13T12:26:40Z\", \"2020-09-13"):
            eexarray.download("S2", out, **options)
        eexarray.download("S2", out, overwrite=True, **options)
        stored = xr.open_zarr(out, mask_and_scale=False)["v"].values
        np.testing.assert_array_equal(stored[0], first)  # the new pixels, not a mix of old and new
        np.testing.assert_array_equal(stored[1], write_image(tmp_path / "same.tif", offset=50, mtime=0))


def test_an_npy_file_cut_before_it_is_published_is_refused(server, tmp_path, monkeypatch):
    from eexarray.download.npy import NpyWriter

    original = NpyWriter.finish

    def cut_then_finish(self):
        os.truncate(self.path, self.path.stat().st_size - 10)  # as something outside eexarray would
        original(self)

    monkeypatch.setattr(NpyWriter, "finish", cut_then_finish)
    with pytest.raises(OutputWriteError, match=r"small.npy.partial' has \d+ bytes, not \d+"):
        eexarray.download("dl/small", tmp_path / "small.npy", endpoint=server.url, progress=False)
    assert list(tmp_path.iterdir()) == []
