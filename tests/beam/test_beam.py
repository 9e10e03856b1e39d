"""eexarray.beam on Beam's DirectRunner against the local server: the Zarr a pipeline writes equals
``open_dataset(...).to_zarr(...)`` pixel for pixel, with the same pixel requests; faults, retried
bundles, the in-flight cap, credentials and the command line."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from affine import Affine

import eexarray
from eexarray.geometry import PixelGrid, Window
from eexarray.server.images import ProceduralImage, procedural_collection
from eexarray.transport import RetryPolicy, set_default_retry_policy
from tests.qp import STORE, dask_expr_gap

REASON = "the beam extra is not installed: pip install 'eexarray[beam]'"
beam = pytest.importorskip("apache_beam", reason=REASON)
xbeam = pytest.importorskip("xarray_beam", reason=REASON)

import eexarray.beam as eebeam  # noqa: E402 - only with the extra

UTM = "EPSG:32610"
GRID = PixelGrid(UTM, Affine(10, 0, 500000, 0, -10, 4200000), 300, 200)
CHUNKS = {"time": 1, "y": 128, "x": 128}  # 2 x 3 tiles a time step
FAULTS = "429=0.2,503=0.1"
SMALL_CHUNKS = {"time": 5, "y": 50, "x": 50}  # 4 x 6 tiles x 2 time blocks: 24 packed requests
FAST_RETRY = RetryPolicy(max_attempts=12, initial_delay=0.002, max_delay=0.02)
TOKEN = "ya29.SECRET-beam-5e1d"


def catalog():
    return [
        procedural_collection(
            "beam/series",
            GRID,
            10,
            dtypes=("uint16", "int16"),
            band_ids=("red", "nir"),
            start="2021-01-01T00:00:00Z",
            step=dt.timedelta(days=5),
            masked=[Window(10, 30, 100, 140)],
        ),
        ProceduralImage(
            "beam/mixed", GRID, dtypes=("uint8", "int16", "float32", "float64"), band_ids=("a", "b", "c", "d")
        ),
    ]


def invoke(name, **arguments):
    return {"functionInvocationValue": {"functionName": name, "arguments": arguments}}


NDVI = {
    "result": "0",
    "values": {
        "0": invoke(
            "Image.normalizedDifference",
            input=invoke("Image.load", id={"constantValue": "beam/series/00003"}),
            bandNames={"constantValue": ["nir", "red"]},
        )
    },
}
COMPUTED_COLLECTION = {
    "result": "0",
    "values": {"0": invoke("ImageCollection.load", id={"constantValue": "beam/series"})},
}

CASES = {
    "collection": ("beam/series", {"chunks": CHUNKS}),
    "mask_and_scale": ("beam/series", {"chunks": CHUNKS, "mask_and_scale": True, "bands": ["nir"]}),
    "image": ("beam/mixed", {"chunks": {"y": 96, "x": 128}}),
    "computed image": (NDVI, {"chunks": {"y": 128, "x": 128}}),
    "computed collection": (COMPUTED_COLLECTION, {"chunks": {"time": 2, "y": 200, "x": 128}}),  # a read per time block
}


@pytest.fixture(scope="module")
def server():
    with eexarray.serve(catalog=catalog()) as running:
        yield running


@pytest.fixture()
def fast_retry():
    previous = set_default_retry_policy(FAST_RETRY)
    yield
    set_default_retry_policy(previous)


def pixel_requests(server) -> int:
    stats = server.stats()
    assert len(stats["pixel_requests"]) == stats["requests"].get("getPixels", 0) + stats["requests"].get(
        "computePixels", 0
    ) - sum(stats["faults"].values())
    return len(stats["pixel_requests"])


def run_pipeline(read, store, between=None):
    with beam.Pipeline(runner="DirectRunner") as pipeline:
        chunks = pipeline | read
        if between is not None:
            chunks = chunks | between
        _ = chunks | xbeam.ChunksToZarr(str(store), read.template)


def assert_same_store(expected, got):
    """Decoded Datasets identical (values, coordinates, attributes, chunks); raw values equal too."""
    left, right = xr.open_zarr(expected), xr.open_zarr(got)
    xr.testing.assert_identical(left.load(), right.load())
    assert {k: v.encoding.get("chunks") for k, v in left.variables.items()} == {
        k: v.encoding.get("chunks") for k, v in right.variables.items()
    }
    left, right = xr.open_zarr(expected, decode_cf=False), xr.open_zarr(got, decode_cf=False)
    for name in left.variables:
        np.testing.assert_array_equal(left[name].values, right[name].values, err_msg=str(name))


def reference(server, tmp_path, asset, options):
    """``open_dataset(...).to_zarr(...)``: the store and its pixel requests."""
    store = tmp_path / "dask.zarr"
    ds = eexarray.open_dataset(asset, endpoint=server.url, **options)
    server.reset_stats()
    ds.to_zarr(store)
    return store, pixel_requests(server)


@pytest.mark.filterwarnings("ignore::UserWarning")  # chunks that cut the native tiles; object coordinates
@pytest.mark.parametrize("case", list(CASES))
@dask_expr_gap(STORE, NotImplementedError)
def test_pipeline_writes_what_to_zarr_writes_with_the_same_requests(server, tmp_path, case):
    asset, options = CASES[case]
    expected, dask_requests = reference(server, tmp_path, asset, options)
    read = eebeam.ReadPixels(asset, endpoint=server.url, **options)
    summary = read.reader.summary()
    assert summary["chunks"] == int(np.prod([len(c) for c in read.dataset.chunks.values()]))
    server.reset_stats()
    run_pipeline(read, tmp_path / "beam.zarr")
    assert pixel_requests(server) == dask_requests == summary["requests"]
    assert_same_store(expected, tmp_path / "beam.zarr")


@pytest.mark.filterwarnings("ignore::UserWarning")
@dask_expr_gap(STORE, NotImplementedError)
def test_a_selection_reads_only_its_window_and_bands(server, tmp_path):
    ds = eexarray.open_dataset("beam/series", endpoint=server.url, chunks=CHUNKS)
    selected = ds[["nir"]].isel(time=slice(2, 8), y=slice(128, 200))
    expected = tmp_path / "dask.zarr"
    server.reset_stats()
    selected.to_zarr(expected)
    dask_requests = pixel_requests(server)
    read = eebeam.ReadPixels(selected)
    assert read.reader.plan.bands == (1,)
    server.reset_stats()
    run_pipeline(read, tmp_path / "beam.zarr")
    assert pixel_requests(server) == dask_requests == 3  # one packed request per tile of the 72-row strip
    assert_same_store(expected, tmp_path / "beam.zarr")


@pytest.mark.filterwarnings("ignore::UserWarning")
@dask_expr_gap(STORE, NotImplementedError)
def test_injected_faults_give_identical_output(server, tmp_path, fast_retry):
    asset, options = "beam/series", {"chunks": SMALL_CHUNKS}
    expected, dask_requests = reference(server, tmp_path, asset, options)
    with eexarray.serve(catalog=catalog(), faults=FAULTS, seed=7) as faulty:
        read = eebeam.ReadPixels(asset, endpoint=faulty.url, **options)
        faulty.reset_stats()
        run_pipeline(read, tmp_path / "beam.zarr")
        injected = faulty.stats()["faults"]
        assert set(injected) == {"429", "503"}, injected  # every kind happened, and was retried
        assert pixel_requests(faulty) == dask_requests == 24  # bodies served whole: one per planned request
    assert_same_store(expected, tmp_path / "beam.zarr")


@pytest.mark.filterwarnings("ignore::UserWarning")
@dask_expr_gap(STORE, NotImplementedError)
def test_chunks_emitted_again_by_a_retried_bundle_write_the_same_store(server, tmp_path):
    """Beam re-runs a failed bundle and emits its chunks again: each chunk is written whole, twice here."""
    asset, options = CASES["collection"]
    expected, _ = reference(server, tmp_path, asset, options)
    read = eebeam.ReadPixels(asset, endpoint=server.url, **options)
    run_pipeline(read, tmp_path / "beam.zarr", between=beam.FlatMap(lambda item: [item, item]))
    assert_same_store(expected, tmp_path / "beam.zarr")


@pytest.mark.filterwarnings("ignore::UserWarning")
@dask_expr_gap(STORE, NotImplementedError)
def test_a_read_that_fails_fails_the_pipeline(tmp_path, fast_retry):
    with eexarray.serve(catalog=catalog()) as gone:
        read = eebeam.ReadPixels("beam/series", endpoint=gone.url, chunks=CHUNKS)
    from eexarray.transport import EndpointUnreachableError

    with pytest.raises(EndpointUnreachableError, match="Cannot connect"):
        run_pipeline(read, tmp_path / "beam.zarr")


@pytest.mark.filterwarnings("ignore::UserWarning")
@dask_expr_gap(STORE, NotImplementedError)
def test_requests_in_flight_stay_under_max_concurrency(tmp_path):
    """One DirectRunner thread keeps several requests in flight (reads started ahead), never more than the cap."""
    with eexarray.serve(catalog=catalog(), latency_ms=60) as slow:
        read = eebeam.ReadPixels(
            "beam/series", endpoint=slow.url, chunks=SMALL_CHUNKS, bands=["red"], max_concurrency=3
        )
        assert read.reader.summary()["requests"] == 24
        slow.reset_stats()
        run_pipeline(read, tmp_path / "beam.zarr")
        assert slow.stats()["max_in_flight"] == 3


@pytest.mark.filterwarnings("ignore::UserWarning")
@dask_expr_gap(STORE, NotImplementedError)
def test_workers_find_their_own_credentials_and_the_pipeline_carries_none(tmp_path, monkeypatch):
    import google.oauth2.credentials
    from apache_beam.internal import pickler

    with eexarray.serve(catalog=catalog(), token=TOKEN) as guarded:
        read = eebeam.ReadPixels(
            "beam/series",
            endpoint=guarded.url,
            credentials=google.oauth2.credentials.Credentials(TOKEN),
            chunks=CHUNKS,
            bands=["red"],
        )
        for value in (read.reader, eebeam.ReadChunks(read.reader), read):
            assert b"SECRET" not in pickler.dumps(value)
        assert b"SECRET" not in pickler.dumps(read.reader.plan.source.config)
        # Beam pickles the DoFn even on the DirectRunner: without credentials of its own, the worker is refused...
        monkeypatch.delenv("EEXARRAY_TOKEN", raising=False)
        with pytest.raises(RuntimeError) as refused:
            run_pipeline(eebeam.ReadPixels(read.dataset), tmp_path / "refused.zarr")  # a transform: one pipeline
        if isinstance(refused.value, NotImplementedError):
            raise refused.value  # dask's query-planning gap (tests/qp.py), not a refusal
        assert "401" in str(refused.value)
        # ...and with them (here EEXARRAY_TOKEN; Application Default Credentials on Google's endpoints) it reads.
        monkeypatch.setenv("EEXARRAY_TOKEN", TOKEN)
        run_pipeline(read, tmp_path / "beam.zarr")
        expected = eexarray.open_dataset("beam/series", endpoint=guarded.url, bands=["red"]).red.values
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "beam.zarr", mask_and_scale=False).red.values, expected)


def test_read_pixels_refuses_what_it_cannot_read(server):
    ds = eexarray.open_dataset("beam/series", endpoint=server.url, chunks=CHUNKS)
    with pytest.raises(ValueError, match="derived variables"):
        eebeam.ReadPixels((ds.red + 1).to_dataset(name="red_plus_one"))
    with pytest.raises(TypeError, match="no open options"):
        eebeam.ReadPixels(ds, bands=["red"])
    unchunked = eexarray.open_dataset("beam/series", endpoint=server.url, chunks=None)
    with pytest.raises(ValueError, match="red"):
        eebeam.ReadPixels(unchunked)


@pytest.mark.filterwarnings("ignore::UserWarning")
@dask_expr_gap(STORE, NotImplementedError)
def test_command_line_writes_the_same_store(server, tmp_path):
    expected, dask_requests = reference(server, tmp_path, "beam/series", {"chunks": CHUNKS})
    output = tmp_path / "cli.zarr"
    command = [sys.executable, "-m", "eexarray.beam", "beam/series", "--output", str(output)]
    command += ["--runner", "DirectRunner", "--endpoint", server.url, "--chunks", "time=1,y=128,x=128"]
    server.reset_stats()
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{output}: 60 chunks from 6 reads (6 requests)"
    assert pixel_requests(server) == dask_requests == 6
    assert_same_store(expected, output)
    # An existing store is kept unless --overwrite; a Dataflow --region goes after --.
    from eexarray.beam.__main__ import main

    assert main([*command[3:]]) == 2
    assert (
        main(["beam/series", "-o", str(tmp_path / "x.zarr"), "--endpoint", server.url, "--region", "us-central1"]) == 2
    )
