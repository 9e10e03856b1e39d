"""Request accounting: one request per block for all bands, subsets fetch subsets, concurrency."""

from __future__ import annotations

import pickle

import dask
import numpy as np
import xarray as xr

import eexarray
from eexarray.server.images import procedural_values

from .conftest import SMALL, bands_fetched, with_masks

ALL = ["u8", "i16", "f32", "f64"]  # the bands of test/mixed


def test_all_bands_of_a_block_share_one_request(server, stats):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks={"y": 200, "x": 300})
    ds.compute()
    log = stats()["pixel_requests"]
    assert len(log) == 4  # 2 x 2 blocks, every band and its mask bits in each request
    assert all(entry["bandIds"] == with_masks(["u8", "i16", "f32", "f64"]) for entry in log)
    assert sorted((e["width"], e["height"]) for e in log) == [(300, 200)] * 4
    assert stats()["requests"].get("getPixels", 0) == 0
    raw = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks={"y": 200, "x": 300}, mask_and_scale=False)
    raw.compute()
    log = stats()["pixel_requests"][4:]
    assert len(log) == 4 and all(entry["bandIds"] == ["u8", "i16", "f32", "f64"] for entry in log)
    assert stats()["requests"]["getPixels"] == 4  # native values: getPixels, the same count


def test_a_subset_of_variables_fetches_only_those_bands(server, stats):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks={"y": 200, "x": 300})
    ds[["i16", "f64"]].compute()
    log = stats()["pixel_requests"]
    assert len(log) == 4
    assert all(entry["bandIds"] == bands_fetched(["i16", "f64"], ALL, masks=True) for entry in log)
    stats_before = len(stats()["pixel_requests"])
    ds.u8.compute()
    log = stats()["pixel_requests"][stats_before:]
    assert len(log) == 4 and all(entry["bandIds"] == bands_fetched(["u8"], ALL, masks=True) for entry in log)


def test_isel_before_compute_fetches_only_needed_blocks(server, stats):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks={"y": 100, "x": 100})
    ds.isel(y=slice(0, 50), x=slice(150, 250)).compute()
    log = stats()["pixel_requests"]
    assert len(log) == 2  # the window spans blocks (0, 1) and (0, 2)


def test_isel_before_chunking_builds_the_graph_on_the_window(server, stats):
    lazy = xr.open_dataset("ee://test/mixed", engine="eexarray", endpoint=server.url)
    window = lazy.isel(y=slice(10, 60), x=slice(20, 70)).chunk({})
    window.compute()
    log = stats()["pixel_requests"]
    assert len(log) == 1 and (log[0]["width"], log[0]["height"]) == (50, 50)
    assert log[0]["bandIds"] == with_masks(ALL)


def test_default_chunks_are_request_tiles_recorded_as_preferred(server):
    ds = eexarray.open_dataset("test/huge", endpoint=server.url)
    preferred = ds.B1.encoding["preferred_chunks"]
    assert ds.B1.chunks == ds.B1.data.chunks
    assert tuple(chunks[0] for chunks in ds.B1.data.chunks) == (preferred["y"], preferred["x"])
    # 4 uint16 bands, their mask bits (one byte) and the byte the service counts for its own mask
    bytes_per_request = preferred["y"] * preferred["x"] * (4 * 2 + 1 + 1)
    assert 0.9 * 50_331_648 <= bytes_per_request <= 50_331_648
    raw = eexarray.open_dataset("test/huge", endpoint=server.url, mask_and_scale=False)
    preferred = raw.B1.encoding["preferred_chunks"]
    assert 0.9 * 50_331_648 <= preferred["y"] * preferred["x"] * (4 * 2 + 1) <= 50_331_648


def test_large_user_chunks_are_split_into_valid_requests(server, stats):
    ds = eexarray.open_dataset(
        "test/huge", endpoint=server.url, chunks={"y": 4000, "x": 4000}, bands=["B1", "B2", "B3", "B4"]
    )
    block = ds.isel(y=slice(0, 4000), x=slice(0, 4000)).compute()
    assert block.B2.shape == (4000, 4000)
    rows, cols = np.arange(3990, 4000)[:, None], np.arange(0, 4000, 97)[None, :]
    np.testing.assert_array_equal(block.B4.values[3990:, ::97], procedural_values(3, rows, cols, 0, "uint16"))
    log = stats()["pixel_requests"]
    assert len(log) >= 4  # 4000 x 4000 x (4 x 2 + 1 + 1) bytes is four budgets
    assert all(entry["bandIds"] == with_masks(["B1", "B2", "B3", "B4"]) for entry in log)
    for entry in log:  # 4 uint16 bands, one byte of mask bits, the service's own mask byte
        assert entry["width"] * entry["height"] * (4 * 2 + 1 + 1) <= 50_331_648
    assert sum(e["width"] * e["height"] for e in log) == 4000 * 4000


def test_many_requests_in_flight_with_default_dask_threads(server, stats):
    import requests as http

    with eexarray.serve(
        catalog=[__import__("tests.client.conftest", fromlist=["x"]).catalog()[0]], latency_ms=150
    ) as slow:
        ds = eexarray.open_dataset("test/huge", endpoint=slow.url, chunks={"y": 256, "x": 256}, max_concurrency=12)
        ds.B1.isel(y=slice(0, 2048), x=slice(0, 2048)).compute()
        summary = http.get(f"{slow.url}/_stats", timeout=10).json()
    assert summary["requests"]["computePixels"] == 64 and "getPixels" not in summary["requests"]
    assert 8 <= summary["max_in_flight"] <= 12


def test_graph_pickles_small_without_secrets(server):
    from google.oauth2.credentials import Credentials

    ds = eexarray.open_dataset(
        "test/huge", endpoint=server.url, credentials=Credentials("secret-token-123"), project="my-project"
    )
    array = ds.B1.data
    payload = pickle.dumps(dict(array.__dask_graph__()))
    assert b"secret-token-123" not in payload
    optimized = dask.optimize(ds.B1.isel(y=slice(0, 10), x=slice(0, 10)))[0]
    graph_payload = pickle.dumps(dict(optimized.__dask_graph__()))
    assert b"secret-token-123" not in graph_payload
    assert len(graph_payload) < 20_000  # configuration only: no session, token or pixels
    small = eexarray.open_dataset("test/mixed", endpoint=server.url, credentials=Credentials("secret-token-123"))
    payload = pickle.dumps(small)
    assert b"secret-token-123" not in payload
    assert len(payload) < 100_000
    restored = pickle.loads(payload)
    np.testing.assert_array_equal(restored.i16.values, small.i16.values)


def test_compute_on_a_multiprocess_cluster(server):
    distributed = __import__("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster):
            ds = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks={"y": 100, "x": 150})
            total = ds.i16.compute().values.astype("int64").sum()
            series = eexarray.open_dataset("test/series", endpoint=server.url, chunks={})
            nir = series.nir.isel(x=slice(0, 5), y=slice(0, 5)).values
    from eexarray.server.images import procedural_values

    rows, cols = np.arange(400)[:, None], np.arange(600)[None, :]
    assert int(total) == int(procedural_values(1, rows, cols, 0, "int16").astype("int64").sum())
    for time in range(30):
        np.testing.assert_array_equal(
            nir[time], procedural_values(1, np.arange(5)[:, None], np.arange(5)[None, :], time, "uint16")
        )
    assert SMALL.shape == (400, 600)


def test_quota_project_header_and_token_are_sent(server, stats):
    from google.oauth2.credentials import Credentials

    with eexarray.serve(
        catalog=[__import__("tests.client.conftest", fromlist=["x"]).catalog()[1]], token="s3cret"
    ) as guarded:
        ds = eexarray.open_dataset(
            "test/mixed", endpoint=guarded.url, project="billing-project", credentials=Credentials("s3cret")
        )
        np.testing.assert_array_equal(
            ds.u8.values[:2, :2], procedural_values(0, np.arange(2)[:, None], np.arange(2)[None, :], 0, "uint8")
        )
        summary = guarded.stats()
    assert summary["user_projects"] == {"billing-project": sum(summary["requests"].values())}
    assert summary["statuses"].get("401", 0) == 0


def test_a_ten_thousand_image_collection_opens_with_one_listing(stats):
    from eexarray.server.images import procedural_collection

    from .conftest import SMALL

    big = procedural_collection("test/ten_thousand", SMALL, 10_000, dtypes=("uint8",))
    with eexarray.serve(catalog=[big]) as many:
        # max_images=None: past the default 5,000, an unfiltered listing is refused.
        ds = eexarray.open_dataset("test/ten_thousand", endpoint=many.url, max_images=None)
        counts = many.stats()["requests"]
    assert ds.sizes["time"] == 10_000
    assert counts == {"getAsset": 1, "listAssets": 10}  # pages of 1000, no per-image call
    assert ds.image_id.values[-1].endswith("09999")


def test_guess_can_open_is_offline():
    from eexarray.backend.entrypoint import EexarrayBackendEntrypoint

    entry = EexarrayBackendEntrypoint()
    assert entry.guess_can_open("ee://A/B") and entry.guess_can_open("projects/p/assets/x")
    assert not entry.guess_can_open("/data/file.nc") and not entry.guess_can_open(42)


def test_loaded_values_are_writable_arrays(server):
    ds = eexarray.open_dataset("test/mixed", endpoint=server.url)  # one chunk: one request
    loaded = ds.load()
    for name in loaded.data_vars:
        values = loaded[name].values
        assert values.flags.writeable
        values[0, 0] = 1  # users may edit what they loaded
    lazy = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks=None).u8.values
    assert lazy.flags.writeable
