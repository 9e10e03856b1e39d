"""The pure parts of downloads: block plans, names, option resolution, the block log, the progress line."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from eexarray.download import resume
from eexarray.download.names import default_base_name, output_band_names, zip_member_names
from eexarray.download.options import DEFAULT_MEMORY_LIMIT, parse_memory_limit, resolve_format
from eexarray.download.plan import FLIGHT_COST, WRITE_COST, align, blocks_in_flight, plan_blocks
from eexarray.download.progress import ProgressBar, format_duration
from eexarray.planning import MAX_REQUEST_BYTES, auto_tile_shape


def covered(plan):
    """How many times each pixel of each time step is covered by the plan's blocks."""
    counts = np.zeros((plan.time_count, plan.height, plan.width), dtype=int)
    for block in plan.blocks():
        counts[(slice(block.times.start, block.times.stop), *block.window.slices())] += 1
    return counts


@pytest.mark.parametrize(
    ("height", "width", "times", "dtypes", "limit"),
    [
        (500, 700, 1, ("uint8", "int16", "float32", "float64"), 3_000_000),
        (300, 20000, 3, ("uint16",), 10_000_000),
        (1000, 1000, 2, ("float64",) * 3, 1_000_000),
        (50, 70, 1, ("uint8",), DEFAULT_MEMORY_LIMIT),
        (64, 64, 500, ("uint16", "uint16"), DEFAULT_MEMORY_LIMIT),
        (200, 300, 7, ("uint16", "int16"), 3_000_000),
    ],
)
def test_blocks_cover_every_pixel_once_and_fit_the_budgets(height, width, times, dtypes, limit):
    plan = plan_blocks(height, width, times, dtypes, limit)
    assert (covered(plan) == 1).all()
    assert (FLIGHT_COST + WRITE_COST) * plan.max_block_bytes <= limit
    request_rows, request_cols = auto_tile_shape(height, width, dtypes)
    assert plan.tile_rows <= max(request_rows, 16) and plan.tile_cols <= max(request_cols, 16)
    for side, full in ((plan.tile_rows, height), (plan.tile_cols, width)):
        assert side == full or side % 16 == 0  # whole GeoTIFF tiles
    tiff_rows, tiff_cols = plan.tiff_tile_shape
    assert tiff_rows % 16 == 0 and tiff_cols % 16 == 0
    assert plan.tile_rows >= height or plan.tile_rows % tiff_rows == 0
    assert plan.tile_cols >= width or plan.tile_cols % tiff_cols == 0


def test_large_downloads_use_request_sized_aligned_blocks():
    plan = plan_blocks(100_000, 100_000, 1, ("uint16",) * 4, 2**40)
    rows, cols = auto_tile_shape(100_000, 100_000, ("uint16",) * 4)
    assert (plan.tile_rows, plan.tile_cols) == (align(rows, 100_000), align(cols, 100_000)) == (2304, 2304)
    # Alignment costs little of the request budget: >= 90 % of it is still used.
    assert plan.tile_rows * plan.tile_cols * 9 >= 0.9 * MAX_REQUEST_BYTES
    assert plan.tiff_tile_shape == (256, 256)
    assert blocks_in_flight(plan, 2**40, 40, 1) == 40  # memory is ample: the concurrency cap decides
    assert blocks_in_flight(plan, 2**30, 40, 1) == 11  # (1 GiB - 2 x 42.5 MB) // (2 x 42.5 MB)


def test_small_regions_of_long_series_pack_many_time_steps_per_block():
    # 64 x 64 px x 500 images x 2 bands: one block, so the source can pack it into one request.
    plan = plan_blocks(64, 64, 500, ("uint16", "uint16"), DEFAULT_MEMORY_LIMIT)
    assert (plan.tile_rows, plan.tile_cols, plan.time_step, plan.block_count) == (64, 64, 500, 1)
    # At most 1024 bands per request: 600 images x 2 bands make two blocks.
    assert plan_blocks(64, 64, 600, ("uint16", "uint16"), DEFAULT_MEMORY_LIMIT).time_step == 512
    # Memory bounds the time steps too: 3 MB / (6 x 240 kB per image) = 2.
    assert plan_blocks(200, 300, 7, ("uint16", "int16"), 3_000_000).time_step == 2
    # Regions larger than one tile keep one time step per block.
    assert plan_blocks(5000, 5000, 10, ("uint16",) * 4, DEFAULT_MEMORY_LIMIT).time_step == 1


def test_a_forced_tile_is_kept_and_checked_against_the_limit():
    plan = plan_blocks(500, 700, 1, ("uint16",), 10**9, tile=(100, 300))
    assert (plan.tile_rows, plan.tile_cols) == (100, 300) and plan.block_count == 5 * 3
    with pytest.raises(ValueError, match=r"memory_limit=100000 bytes cannot hold one block of 100x300 px"):
        plan_blocks(500, 700, 1, ("uint16",), 100_000, tile=(100, 300))


def test_too_little_memory_is_refused_naming_the_minimum():
    with pytest.raises(ValueError, match=r"raise memory_limit to at least 6144"):
        plan_blocks(500, 700, 1, ("uint16", "uint16", "uint16"), 5000)


def test_names_follow_getdownloadid():
    assert default_base_name("projects/earthengine-public/assets/COPERNICUS/S2/20210109T185751") == "20210109T185751"
    assert default_base_name("dl/image") == "image" and default_base_name(None) == "download"
    assert output_band_names(["B3", "B8"], None) == ["B3", "B8"]
    assert output_band_names(["B3"], ["c/20200101", "c/20200102"]) == ["20200101_B3", "20200102_B3"]
    assert zip_member_names("single_band", ["B3", "B8"], per_band=True) == ["single_band.B3.tif", "single_band.B8.tif"]
    assert zip_member_names("multi_band", ["B3", "B8"], per_band=False) == ["multi_band.tif"]


@pytest.mark.parametrize(
    ("fmt", "file_per_band", "expected"),
    [
        (None, None, "GEO_TIFF"),
        (None, True, "ZIPPED_GEO_TIFF_PER_BAND"),
        (None, False, "ZIPPED_GEO_TIFF"),
        ("zarr", None, "ZARR"),
        ("ZIPPED_GEO_TIFF_PER_BAND", True, "ZIPPED_GEO_TIFF_PER_BAND"),
        ("ZIPPED_GEO_TIFF", False, "ZIPPED_GEO_TIFF"),
    ],
)
def test_format_resolution(fmt, file_per_band, expected):
    assert resolve_format(fmt, file_per_band) == expected


@pytest.mark.parametrize(
    ("output", "fmt", "file_per_band", "expected"),
    [
        ("a.tif", None, None, "GEO_TIFF"),
        ("a.TIF", None, None, "GEO_TIFF"),
        ("a.tiff", None, None, "GEO_TIFF"),
        ("a", None, None, "GEO_TIFF"),
        ("a.zip", None, None, "ZIPPED_GEO_TIFF"),
        ("a.zip", None, True, "ZIPPED_GEO_TIFF_PER_BAND"),
        ("a.zip", "ZIPPED_GEO_TIFF_PER_BAND", None, "ZIPPED_GEO_TIFF_PER_BAND"),
        ("a.npy", None, None, "NPY"),
        ("a.zarr", None, None, "ZARR"),
        ("a.nc", None, None, "NETCDF"),
        ("a.nc4", None, None, "NETCDF"),
        ("a.bin", "npy", None, "NPY"),  # an unknown extension: the format says
        ("a", None, False, "ZIPPED_GEO_TIFF"),
    ],
)
def test_format_from_the_output_extension(output, fmt, file_per_band, expected):
    assert resolve_format(fmt, file_per_band, Path("/data") / output) == expected


def test_memory_limits_parse_sizes():
    assert parse_memory_limit(None) == DEFAULT_MEMORY_LIMIT == 2**30
    assert parse_memory_limit("256MB") == 256_000_000 and parse_memory_limit("2GiB") == 2 * 2**30
    assert parse_memory_limit(12345) == 12345


def test_the_block_log_ignores_a_torn_last_line(tmp_path):
    log = resume.BlockLog(tmp_path)
    log.record((0, 1, 2), [0xDEADBEEF])
    log.record((3, 4, 5), [1, 2])
    log.close()
    with open(tmp_path / resume.LOG, "a") as handle:
        handle.write("6 7")  # a kill in the middle of an append
    assert resume.read_log(tmp_path) == {(0, 1, 2): (0xDEADBEEF,), (3, 4, 5): (1, 2)}
    assert resume.read_done(tmp_path) == {(0, 1, 2), (3, 4, 5)}
    assert resume.read_done(tmp_path / "nowhere") == set()


def test_progress_reports_blocks_requests_megabytes_rate_and_eta():
    stream = io.StringIO()
    bar = ProgressBar("download x.tif", 4, 8_000_000, stream=stream)
    for _ in range(4):
        bar.update(1, 2_000_000, 1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4  # not a terminal: one line per 10 % step reached, no duplicate at the end
    assert lines[-1].startswith("download x.tif: 100% [####################] 4/4 blocks, 4 requests, 8.0/8.0 MB,")
    assert "MB/s" in lines[-1] and "ETA 0:00" in lines[-1]
    silent = io.StringIO()
    quiet = ProgressBar("x", 2, 10, stream=silent, enabled=False)
    quiet.update(2, 10, 2)
    quiet.close()
    assert silent.getvalue() == ""
    assert format_duration(3725) == "1:02:05" and format_duration(65) == "1:05"
