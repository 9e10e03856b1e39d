"""computePixels on the local server: computed images, pixel-exact against numpy on procedural truth."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rasterio
import requests
from affine import Affine

from eexarray.geometry import PixelGrid, Window
from eexarray.server import ProceduralImage, ServerCollection, procedural_values, serve

GRID = PixelGrid("EPSG:32610", Affine(10, 0, 500000, 0, -10, 4200000), 300, 200)
COARSE = PixelGrid("EPSG:32610", Affine(20, 0, 500000, 0, -20, 4200000), 150, 100)
IMAGE_MASK = Window(0, 20, 0, 30)
# Per-image masked windows of the "c/stack" collection: they overlap so some pixels are masked in 1, 2 or 3 images.
STACK_MASKS = [Window(0, 40, 0, 40), Window(20, 60, 20, 60), Window(30, 50, 0, 100), (), ()]
BANDS = ("B4", "B3", "B8", "B5")  # uint16, uint16, int8 (negatives), uint16 on the 20 m grid
DTYPES = ("uint16", "uint16", "int8", "uint16")


def call(name: str, **arguments) -> dict:
    """A functionInvocationValue node; plain Python values become constantValue nodes."""
    return {"functionInvocationValue": {"functionName": name, "arguments": {k: node(v) for k, v in arguments.items()}}}


def node(value) -> dict:
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)).endswith(("Value", "Reference")):
        return value
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        return {"arrayValue": {"values": [node(item) for item in value]}}
    return {"constantValue": value}


def expression(root: dict) -> dict:
    return {"result": "0", "values": {"0": root}}


def load(asset_id: str) -> dict:
    return call("Image.load", id=asset_id)


def window_grid(row: int, col: int, width: int, height: int, grid: PixelGrid = GRID) -> dict:
    return grid.window(Window(row, row + height, col, col + width)).to_rest()


def truth(band: int, row: int, col: int, width: int, height: int, t: int = 0, dtype: str | None = None) -> np.ndarray:
    rows = np.arange(row, row + height)[:, None]
    cols = np.arange(col, col + width)[None, :]
    return procedural_values(band, rows, cols, t, dtype or DTYPES[band])


def mask_of(windows, row: int, col: int, width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    target = Window(row, row + height, col, col + width)
    for window in windows if isinstance(windows, (list, tuple)) else [windows]:
        if isinstance(window, Window) and window.intersection(target) is not None:
            mask[window.intersection(target).relative_to(target).slices()] = True
    return mask


def catalog() -> list:
    image = ProceduralImage("c/img", GRID, dtypes=DTYPES, band_ids=BANDS, masked=(IMAGE_MASK,),
                            start_time="2021-03-01T00:00:00Z", properties={"CLOUD": 7},
                            grids={"B5": COARSE})  # fmt: skip
    stack = ServerCollection("c/stack", [
        ProceduralImage(f"c/stack/s{t}", GRID, dtypes=("uint16", "float32"), band_ids=("red", "swir"), index=t,
                        start_time=f"2021-01-0{t + 1}T00:00:00Z", properties={"index": t},
                        masked=(masks,) if masks else ())
        for t, masks in enumerate(STACK_MASKS)
    ])  # fmt: skip
    return [image, stack]


@pytest.fixture(scope="module")
def compute_server():
    with serve(catalog=catalog()) as running:
        yield running


def compute(server, root: dict, version: str = "v1", **body) -> requests.Response:
    payload = {"expression": expression(root), "fileFormat": "NPY", **body}
    return requests.post(f"{server.url}/{version}/projects/p/image:computePixels", json=payload, timeout=60)


def npy(response: requests.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.load(io.BytesIO(response.content))


def test_ndvi_is_float32_and_masks_negative_and_masked_inputs(compute_server):
    ndvi = call("Image.normalizedDifference", input=load("c/img"), bandNames=["B4", "B3"])
    array = npy(compute(compute_server, ndvi, grid=window_grid(10, 20, 40, 30)))
    assert array.dtype.names == ("nd",) and array["nd"].dtype == np.float32
    a, b = truth(0, 10, 20, 40, 30).astype("float64"), truth(1, 10, 20, 40, 30).astype("float64")
    expected = ((a - b) / (a + b)).astype("float32")
    expected[mask_of(IMAGE_MASK, 10, 20, 40, 30)] = 0
    assert np.array_equal(array["nd"], expected)
    # int8 band B8 has negative values: those pixels are masked (0), as Earth Engine documents.
    nd = call("Image.normalizedDifference", input=load("c/img"), bandNames=["B8", "B4"])
    got = npy(compute(compute_server, nd, grid=window_grid(100, 100, 50, 20)))["nd"]
    c8, c4 = truth(2, 100, 100, 50, 20).astype("float64"), truth(0, 100, 100, 50, 20).astype("float64")
    expected = np.where((c8 < 0) | (c4 < 0), 0, (c8 - c4) / (c8 + c4)).astype("float32")
    assert (c8 < 0).any() and np.array_equal(got, expected)


@pytest.mark.parametrize("kind", ["median", "mean", "min", "max"])
def test_composites_ignore_masked_pixels(compute_server, kind):
    composite = call(f"reduce.{kind}", collection=call("ImageCollection.load", id="c/stack"))
    response = compute(compute_server, composite, grid=window_grid(0, 0, 80, 70), bandIds=["red", "swir"])
    array = npy(response)
    for band, dtype in ((0, "uint16"), (1, "float32")):
        stack = np.ma.MaskedArray(
            np.stack([truth(band, 0, 0, 80, 70, t, dtype) for t in range(5)]).astype("float64"),
            np.stack([mask_of(STACK_MASKS[t], 0, 0, 80, 70) for t in range(5)]),
        )
        expected = getattr(np.ma, kind)(stack, axis=0)
        assert expected.mask.any() is np.False_  # every pixel has 2 unmasked images or more
        got = array[("red", "swir")[band]]
        if kind in ("median", "mean"):
            assert got.dtype == (np.float64 if dtype == "uint16" else np.float32)
        else:
            assert got.dtype == np.dtype(dtype)
        assert np.array_equal(got, expected.data.astype(got.dtype))


def test_composite_needs_a_grid_and_reports_no_default_projection(compute_server):
    composite = call("reduce.median", collection=call("ImageCollection.load", id="c/stack"))
    response = compute(compute_server, composite)
    assert response.status_code == 400
    assert "A grid is required" in response.json()["error"]["message"]
    partial = {"dimensions": {"width": 4, "height": 4}, "crsCode": "EPSG:32610"}
    assert compute(compute_server, composite, grid=partial).status_code == 400


def test_masked_arithmetic_promotes_types_and_masks(compute_server):
    b4, b3 = (call("Image.select", input=load("c/img"), bandSelectors=[name]) for name in ("B4", "B3"))
    total = call("Image.add", image1=b4, image2=b3)  # uint16 + uint16: range 0..131070 -> uint32
    keep = call("Image.gt", image1=b3, image2=call("Image.constant", value=1500))
    masked = call("Image.updateMask", image=total, mask=keep)
    shifted = call("Image.subtract", image1=masked, image2=call("Image.constant", value=100))  # -> int32
    scaled = call("Image.multiply", image1=b4, image2=call("Image.constant", value=0.5))  # -> double
    divided = call("Image.divide", image1=b4, image2=call("Image.constant", value=7))  # integer division
    stacked = call(
        "Image.addBands",
        dstImg=call("Image.addBands", dstImg=shifted, srcImg=call("Image.rename", input=scaled, names=["half"])),
        srcImg=call("Image.rename", input=divided, names=["q"]),
    )
    array = npy(compute(compute_server, stacked, grid=window_grid(5, 25, 60, 40)))
    assert array.dtype.names == ("B4", "half", "q")
    assert (array["B4"].dtype, array["half"].dtype, array["q"].dtype) == (np.int32, np.float64, np.uint16)
    a, b = truth(0, 5, 25, 60, 40).astype("int64"), truth(1, 5, 25, 60, 40).astype("int64")
    missing = mask_of(IMAGE_MASK, 5, 25, 60, 40)
    expected = np.where(missing | (b <= 1500), 0, a + b - 100)
    assert (b <= 1500).any() and (b > 1500).any()
    assert np.array_equal(array["B4"], expected)
    assert np.array_equal(array["half"], np.where(missing, 0, a * 0.5))
    assert np.array_equal(array["q"], np.where(missing, 0, a // 7))


def test_bands_on_different_native_grids_are_resampled_to_the_output_grid(compute_server):
    image = load("c/img")
    both = call("Image.add", image1=call("Image.select", input=image, bandSelectors=["B4"]),
                image2=call("Image.select", input=image, bandSelectors=["B5"]))  # fmt: skip
    array = npy(compute(compute_server, both, grid=window_grid(40, 50, 30, 20)))
    coarse = truth(3, 20, 25, 15, 10).astype("int64")  # the 20 m band: native rows 20.., cols 25..
    expected = truth(0, 40, 50, 30, 20).astype("int64") + np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)
    assert np.array_equal(array["B4"], expected)


def test_to_bands_names_and_order_from_from_images(compute_server):
    images = [
        call("Image.select", input=load("c/stack/s2"), bandSelectors=["red"]),
        call("Image.select", input=load("c/stack/s0"), bandSelectors=["swir", "red"]),
    ]
    packed = call("ImageCollection.toBands", collection=call("ImageCollection.fromImages", images=images))
    array = npy(compute(compute_server, packed, grid=window_grid(100, 100, 16, 8)))
    assert array.dtype.names == ("0_red", "1_swir", "1_red")
    assert np.array_equal(array["0_red"], truth(0, 100, 100, 16, 8, 2, "uint16"))
    assert np.array_equal(array["1_swir"], truth(1, 100, 100, 16, 8, 0, "float32"))
    subset = npy(compute(compute_server, packed, grid=window_grid(100, 100, 16, 8), bandIds=["1_red", "0_red"]))
    assert subset.dtype.names == ("1_red", "0_red")
    # A stored collection keeps its images' own system:index (the last segment of their ids).
    stored = call("ImageCollection.toBands", collection=call("ImageCollection.load", id="c/stack"))
    names = npy(compute(compute_server, stored, grid=window_grid(100, 100, 2, 2))).dtype.names
    assert names[:3] == ("s0_red", "s0_swir", "s1_red") and len(names) == 10


def test_select_by_regex_and_index_and_rename(compute_server):
    selectors, names = ["B[34]", 2], ["four", "three", "eight"]
    selected = call("Image.select", input=load("c/img"), bandSelectors=selectors, newNames=names)
    renamed = call("Image.rename", input=selected, names=["x", "y", "z"])
    array = npy(compute(compute_server, renamed, grid=window_grid(50, 60, 10, 10)))
    assert array.dtype.names == ("x", "y", "z")
    assert np.array_equal(array["x"], truth(0, 50, 60, 10, 10))
    assert np.array_equal(array["y"], truth(1, 50, 60, 10, 10))
    assert np.array_equal(array["z"], truth(2, 50, 60, 10, 10))


def test_unmask_fills_masked_pixels_and_respects_the_footprint(compute_server):
    b4 = call("Image.select", input=load("c/img"), bandSelectors=["B4"])
    grid = window_grid(-5, -10, 40, 30)  # starts outside the image (north-west)
    inside = np.zeros((30, 40), bool)
    inside[5:, 10:] = True
    values = np.zeros((30, 40), "int64")
    values[inside] = truth(0, 0, 0, 30, 25).astype("int64").ravel()
    masked_inside = np.zeros((30, 40), bool)
    masked_inside[5:25, 10:40] = True  # IMAGE_MASK = rows 0-20, cols 0-30 of the image
    same = npy(compute(compute_server, call("Image.unmask", input=b4, value=call("Image.constant", value=9)),
                       grid=grid))["B4"]  # fmt: skip
    assert np.array_equal(same, np.where(masked_inside, 9, values))  # outside the footprint stays masked (0)
    grown = call("Image.unmask", input=b4, value=call("Image.constant", value=9), sameFootprint=False)
    assert np.array_equal(npy(compute(compute_server, grown, grid=grid))["B4"], np.where(inside & ~masked_inside,
                                                                                             values, 9))  # fmt: skip


def test_mosaic_takes_the_last_unmasked_image(compute_server):
    images = [call("Image.select", input=load(f"c/stack/s{t}"), bandSelectors=["red"]) for t in (3, 0, 1)]
    mosaic = call("ImageCollection.mosaic", collection=call("ImageCollection.fromImages", images=images))
    got = npy(compute(compute_server, mosaic, grid=window_grid(0, 0, 70, 70)))["red"]
    expected = truth(0, 0, 0, 70, 70, 3, "uint16")
    for t in (0, 1):
        valid = ~mask_of(STACK_MASKS[t], 0, 0, 70, 70)
        expected = np.where(valid, truth(0, 0, 0, 70, 70, t, "uint16"), expected)
    assert np.array_equal(got, expected)


def test_default_grid_geotiff_and_png(compute_server):
    b4 = call("Image.select", input=load("c/img"), bandSelectors=["B4", "B3"])
    array = npy(compute(compute_server, b4))  # no grid: the first band's native grid
    assert array.shape == (200, 300) and np.array_equal(array["B3"][20:], truth(1, 20, 0, 300, 180))
    tiff = compute(compute_server, b4, fileFormat="GEO_TIFF", grid=window_grid(30, 40, 20, 10))
    with rasterio.MemoryFile(tiff.content) as memory, memory.open() as dataset:
        assert dataset.descriptions == ("B4", "B3") and dataset.crs.to_epsg() == 32610
        assert np.array_equal(dataset.read(2), truth(1, 30, 40, 20, 10))
    png = compute(compute_server, b4, fileFormat="PNG", bandIds=["B4"],
                  visualizationOptions={"ranges": [{"min": 0, "max": 65535}]})  # fmt: skip
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"


def test_limits_and_errors_match_get_pixels(compute_server):
    image = load("c/img")
    big = GRID.window(Window(0, 5000, 0, 5000)).to_rest()
    response = compute(compute_server, image, grid=big)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Total request size (200000000 bytes) must be less than or equal to 50331648 bytes."
    )
    problems = {
        "Band 'B9' not found in image '<computed>'": compute(compute_server, image, bandIds=["B9"]),
        'Unknown name "region"': compute(compute_server, image, region={"type": "Point", "coordinates": [0, 0]}),
        "the expression is a ImageCollection": compute(compute_server, call("ImageCollection.load", id="c/stack")),
        "Invalid fileFormat 'TIFF'": compute(compute_server, image, fileFormat="TIFF"),
    }
    for text, response in problems.items():
        assert response.status_code == 400 and text in response.json()["error"]["message"]


def test_stats_count_and_log_compute_pixels(compute_server):
    compute_server.reset_stats()
    npy(compute(compute_server, load("c/img"), version="v1alpha", grid=window_grid(0, 0, 8, 4), bandIds=["B8"]))
    stats = compute_server.stats()
    assert stats["requests"] == {"computePixels": 1}
    record = stats["pixel_requests"][-1]
    assert record["method"] == "computePixels" and record["asset"] is None
    assert (record["bandIds"], record["width"], record["height"], record["fileFormat"]) == (["B8"], 8, 4, "NPY")
    assert record["bytes"] > 32
