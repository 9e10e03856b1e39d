"""``ds.eexarray.preview``: the server's PNG of a Dataset's region, pixel-exact where the formula is known."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import requests
from affine import Affine

import eexarray
from eexarray.accessor import dataset_grid, preview_grid, visualization_options
from eexarray.geometry import PixelGrid
from eexarray.server.images import procedural_values

from .conftest import SMALL, UTM

matplotlib.use("Agg")


def grey(values, low, high):
    """The server's stretch (docs/server.md): round(255 * clip((v - min) / (max - min), 0, 1))."""
    return np.rint(np.clip((np.asarray(values, "float64") - low) / (high - low), 0, 1) * 255).astype("uint8")


def formula(band, rows, cols, dtype, time=0):
    return procedural_values(band, np.asarray(rows)[:, None], np.asarray(cols)[None, :], time, dtype)


def test_grey_preview_of_a_window_is_pixel_exact_and_one_request(server, stats):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url)
    window = ds.isel(y=slice(50, 120), x=slice(100, 260))
    requests.post(f"{server.url}/_stats/reset", timeout=10).raise_for_status()  # count the preview only
    rgba = window.eexarray.preview("u8", min=0, max=255, output="array")
    assert rgba.shape == (70, 160, 4) and rgba.dtype == np.uint8
    values = formula(0, range(50, 120), range(100, 260), "uint8")
    for channel in range(3):
        np.testing.assert_array_equal(rgba[..., channel], values)
    assert (rgba[..., 3] == 255).all()
    served = stats()
    assert served["requests"] == {"getPixels": 1}
    (request,) = served["pixel_requests"]
    assert (request["fileFormat"], request["bandIds"], request["width"], request["height"]) == ("PNG", ["u8"], 160, 70)


def test_rgb_preview_stretches_each_band_with_its_own_range(server):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks=None).isel(y=slice(0, 40), x=slice(0, 60))
    rgba = ds.eexarray.preview(["i16", "u8", "f64"], min=[-1000, 0, 0], max=[1000, 100, 5000], output="array")
    rows, cols = range(40), range(60)
    np.testing.assert_array_equal(rgba[..., 0], grey(formula(1, rows, cols, "int16"), -1000, 1000))
    np.testing.assert_array_equal(rgba[..., 1], grey(formula(0, rows, cols, "uint8"), 0, 100))
    np.testing.assert_array_equal(rgba[..., 2], grey(formula(3, rows, cols, "float64"), 0, 5000))


def test_masked_pixels_are_transparent(server):
    ds = eexarray.open_dataset("test/masked", endpoint=server.url)
    rgba = ds.isel(y=slice(0, 30), x=slice(20, 60)).eexarray.preview(min=0, max=5000, output="array")
    alpha = rgba[..., 3]
    assert (alpha[10:20, 10:30] == 0).all()  # the masked window rows 10..20, cols 30..50
    assert (rgba[10:20, 10:30, :3] == 0).all()
    assert alpha.sum() == 255 * (30 * 40 - 10 * 20)


def test_collection_preview_draws_the_chosen_image(server, stats):
    ds = eexarray.open_dataset("test/series", endpoint=server.url).isel(y=slice(0, 20), x=slice(0, 30))
    rgba = ds.eexarray.preview("nir", min=0, max=65535, time=3, output="array")
    np.testing.assert_array_equal(rgba[..., 0], grey(formula(1, range(20), range(30), "uint16", time=3), 0, 65535))
    assert stats()["pixel_requests"][-1]["asset"].endswith("/test/series/00003")
    ds.eexarray.preview("nir", min=0, max=65535, time=np.datetime64("2020-01-29"), output="array")
    assert stats()["pixel_requests"][-1]["asset"].endswith("/test/series/00003")  # nearest to day 30
    with pytest.raises(IndexError, match="outside the 30 images"):
        ds.eexarray.preview("nir", time=30)


def test_width_scales_the_picture_down_over_the_same_extent(server, stats):
    ds = eexarray.open_dataset("test/huge", endpoint=server.url)
    image = ds.eexarray.preview("B1", min=0, max=65535, width=256, output="image")
    assert image.size == (256, 256) and image.mode == "RGBA"
    (request,) = stats()["pixel_requests"]
    assert (request["width"], request["height"]) == (256, 256)


def test_palette_and_gamma_reach_the_server(server):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url).isel(y=slice(0, 10), x=slice(0, 10))
    rgba = ds.eexarray.preview("u8", min=0, max=255, palette=["000000", "#ffffff"], output="array")
    np.testing.assert_array_equal(rgba[..., 1], formula(0, range(10), range(10), "uint8"))
    dark = ds.eexarray.preview("u8", min=0, max=255, gamma=0.5, output="array")
    expected = np.rint(np.clip(formula(0, range(10), range(10), "uint8") / 255.0, 0, 1) ** 2 * 255)
    np.testing.assert_array_equal(dark[..., 0], expected.astype("uint8"))


def test_figure_has_crs_extent(server):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url)
    figure = ds.eexarray.preview("u8", min=0, max=255, width=120)
    (ax,) = figure.axes
    west, east = ax.get_xlim()
    south, north = ax.get_ylim()
    assert (west, south, east, north) == pytest.approx(SMALL.bounds)
    assert "u8" in ax.get_title()


def test_connection_is_found_with_mask_and_scale_and_given_endpoint_wins(server):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, mask_and_scale=True).isel(
        y=slice(0, 5), x=slice(0, 5)
    )
    assert ds.eexarray.preview("u8", min=0, max=255, output="array").shape == (5, 5, 4)
    computed = ds.assign(ratio=ds.u8 / ds.i16)
    with pytest.raises(ValueError, match="'ratio' is not a stored band"):
        computed.eexarray.preview("ratio")
    with pytest.raises(ValueError, match="'nope' is not a variable"):
        computed.eexarray.preview("nope")
    with pytest.raises(Exception, match="Cannot connect"):
        ds.eexarray.preview("u8", endpoint="http://127.0.0.1:9")


def test_bad_arguments_are_named_before_any_request():
    with pytest.raises(ValueError, match="1 band .* or 3 bands"):
        visualization_options(2)
    with pytest.raises(ValueError, match="both min and max"):
        visualization_options(1, min=0)
    with pytest.raises(ValueError, match="2 values for 3 band"):
        visualization_options(3, min=[0, 0], max=1)
    with pytest.raises(ValueError, match="palette colours one band"):
        visualization_options(3, palette=["ff0000", "00ff00"])
    with pytest.raises(ValueError, match="not a matplotlib colormap"):
        visualization_options(1, palette="no-such-map")
    with pytest.raises(ValueError, match="gamma must be positive"):
        visualization_options(1, gamma=0)
    assert visualization_options(1, min=0, max=10, gamma=2) == {
        "ranges": [{"min": 0, "max": 10}],
        "gamma": {"value": 2},
    }
    assert len(visualization_options(1, palette="viridis")["paletteColors"]) == 16


def test_grids_from_coordinates_and_request_limits():
    ds = __import__("xarray").Dataset(coords={"x": [500005.0, 500015.0, 500025.0], "y": [4199995.0, 4199985.0]})
    ds = ds.rio.write_crs(UTM)
    assert dataset_grid(ds) == PixelGrid(UTM, Affine(10, 0, 500000, 0, -10, 4200000), 3, 2)
    big = PixelGrid(UTM, Affine(10, 0, 0, 0, -10, 0), 40000, 20000)
    small = preview_grid(big, 1000, ["float64"] * 3)
    assert (small.width, small.height) == (1000, 500)
    assert small.bounds == pytest.approx(big.bounds)
    capped = preview_grid(big, 30000, ["float64"] * 3)  # 25 bytes a pixel: at most 2,013,265 pixels
    assert capped.width * capped.height * 25 <= 50_331_648 and capped.width == 2 * capped.height
    with pytest.raises(ValueError, match="width must be a positive"):
        preview_grid(big, 0, ["uint8"])
