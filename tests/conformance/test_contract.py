"""One set of client scenarios, run against the local server and against recorded Earth Engine answers.

Modelled on zarr-python's ``StoreTests``: ``ClientContract`` holds the scenarios, each
subclass provides the ``endpoint`` fixture (``tests/conformance/endpoints.py``). Every
expectation comes from the recordings (``fixtures/``, provenance in
``fixtures/SOURCES.md``), never from the implementation under test, so a difference
between the local server and the recorded service fails here.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from rasterio.errors import NotGeoreferencedWarning

import eexarray
from eexarray.backend.metadata import MixedGridWarning
from eexarray.server import procedural_values
from eexarray.transport import RetryPolicy, set_default_retry_policy
from eexarray.transport.errors import AssetNotAccessibleError, AssetNotFoundError, EarthEngineRequestError
from tests.conformance.endpoints import (
    COLLECTION_FILTER,
    COLLECTION_ID,
    COMPUTED_IMAGE_ID,
    ERRORS,
    FORBIDDEN_ASSET,
    IMAGE_ID,
    IMAGE_NAME,
    LocalEndpoint,
    ReplayEndpoint,
    grid_of_band,
    grid_of_info_band,
    recorded_image,
    recorded_info,
    recorded_listing,
)
from tests.conformance.replay import dtype_of_data_type, dtype_of_pixel_type

# Fast retries, but Retry-After (1 s in the recorded 429) is still obeyed below max_delay.
CONTRACT_RETRY = RetryPolicy(max_attempts=6, initial_delay=0.01, max_delay=5.0)


@pytest.fixture(autouse=True, scope="module")
def _fast_retries():
    previous = set_default_retry_policy(CONTRACT_RETRY)
    yield
    set_default_retry_policy(previous)


def load_expression(image_id: str) -> dict:
    """The expression graph of ``ee.Image(image_id)`` (an ``Image.load`` invocation)."""
    arguments = {"id": {"constantValue": image_id}}
    return {
        "result": "0",
        "values": {"0": {"functionInvocationValue": {"functionName": "Image.load", "arguments": arguments}}},
    }


def expected_window(band_index: int, dtype: str, rows: slice, cols: slice, time_index: int = 0) -> np.ndarray:
    return procedural_values(band_index, np.arange(rows.start, rows.stop)[:, None],
                             np.arange(cols.start, cols.stop)[None, :], time_index, dtype)  # fmt: skip


class ClientContract:
    """Client scenarios every Earth Engine stand-in must pass; subclasses provide ``endpoint``."""

    @pytest.fixture
    def endpoint(self):  # pragma: no cover - always overridden
        raise NotImplementedError

    def open(self, endpoint, asset, **options):
        # Native values: the recorded real answers are of getPixels and plain expressions; the
        # default (exact masks) asks for expressions no public recording holds.
        options = {"mask_and_scale": False, **options}
        return eexarray.open_dataset(asset, endpoint=endpoint.url, project=endpoint.project, **options)

    # --- opening an image: metadata as the recorded getAsset says ---------------------------

    def test_open_image_follows_the_recorded_asset(self, endpoint):
        recorded = recorded_image()
        b1 = recorded["bands"][0]
        grid = grid_of_band(b1)
        get_pixels_before = endpoint.count("getPixels")
        ds = self.open(endpoint, IMAGE_ID, bands=["B1", "B9"])
        assert list(ds.data_vars) == ["B1", "B9"]
        assert dict(ds.sizes) == {"y": grid.height, "x": grid.width}
        assert ds.B1.dtype == np.dtype(dtype_of_data_type(b1["dataType"])) == np.dtype("uint16")
        assert ds.rio.crs.to_epsg() == 32610
        assert tuple(ds.rio.transform())[:6] == tuple(grid.transform)[:6]
        assert float(ds.x[0]) == grid.transform.c + grid.transform.a / 2  # pixel centres
        assert ds.attrs["foo"] == recorded["properties"]["foo"]
        assert ds.attrs["asset_id"] == IMAGE_NAME
        assert endpoint.count("getPixels") == get_pixels_before  # lazy: metadata only

    # --- getPixels: NPY and GeoTIFF decode, pixel-exact ---------------------------------

    @pytest.mark.parametrize("file_format", ["NPY", "GEO_TIFF"])
    def test_get_pixels_decodes_pixel_exact(self, endpoint, file_format):
        ds = self.open(endpoint, IMAGE_ID, bands=["B1", "B9"], file_format=file_format)
        rows, cols = slice(1800, 1831), slice(1790, 1830)  # the image's last rows and columns
        before = endpoint.count("getPixels")
        with warnings.catch_warnings():
            # The replay's GeoTIFF has no georeferencing (as GDAL's recording): the client asked
            # for the grid and must not warn about the file's lack of one.
            warnings.simplefilter("error", NotGeoreferencedWarning)
            window = ds.isel(y=rows, x=cols).compute()
        for band_id in ("B1", "B9"):
            index = [band["id"] for band in recorded_image()["bands"]].index(band_id)
            expected = expected_window(index, "uint16", rows, cols)
            np.testing.assert_array_equal(window[band_id].values, expected)
            assert window[band_id].dtype == np.dtype("uint16")
        assert endpoint.count("getPixels") > before

    # --- collection listing with a filter -----------------------------------------------

    def test_collection_listing_with_a_filter(self, endpoint):
        listed = recorded_listing()
        listings_before = endpoint.count("listAssets")
        ds = self.open(endpoint, COLLECTION_ID, filter=COLLECTION_FILTER, properties=["string_field", "int_field"])
        assert ds.sizes["time"] == len(listed)  # the image the filter excludes is not there
        expected_times = [np.datetime64(entry["startTime"].rstrip("Z"), "ns") for entry in listed]
        assert list(ds.time.values) == expected_times
        assert list(ds.string_field.values) == [entry["properties"]["string_field"] for entry in listed]
        assert list(ds.int_field.values) == [entry["properties"]["int_field"] for entry in listed]
        assert ds.B1.dtype == np.dtype("uint8")  # "range": {"max": 255}, no "min"
        rows, cols = slice(0, 16), slice(100, 140)
        values = ds.B1.isel(y=rows, x=cols).values
        for t in range(len(listed)):
            np.testing.assert_array_equal(values[t], expected_window(0, "uint8", rows, cols, time_index=t))
        # One page from the local server; the recorded pages from the replay, each after the
        # first asked with the previous nextPageToken and the same filter (else the replay 400s).
        assert endpoint.count("listAssets") - listings_before == endpoint.listing_pages

    # --- computePixels of an expression ---------------------------------------------------

    def test_compute_pixels_of_an_expression(self, endpoint):
        info = recorded_info()
        vv = info["bands"][0]
        grid = grid_of_info_band(vv)
        get_pixels_before = endpoint.count("getPixels")
        ds = self.open(endpoint, load_expression(COMPUTED_IMAGE_ID), bands=["VV", "VH"])
        assert dict(ds.sizes) == {"y": grid.height, "x": grid.width}
        assert ds.VV.dtype == np.dtype(dtype_of_pixel_type(vv["data_type"])) == np.dtype("float64")
        assert ds.rio.crs.to_epsg() == 32634
        assert tuple(ds.rio.transform())[:6] == tuple(grid.transform)[:6]
        assert ds.attrs["familyName"] == info["properties"]["familyName"]
        rows, cols = slice(22000, 22018), slice(5, 37)
        window = ds.isel(y=rows, x=cols).compute()
        for index, band_id in enumerate(("VV", "VH")):
            np.testing.assert_array_equal(window[band_id].values, expected_window(index, "float64", rows, cols))
        assert endpoint.count("valueCompute") >= 1 and endpoint.count("computePixels") >= 1
        assert endpoint.count("getPixels") == get_pixels_before

    def test_open_every_band_of_a_computed_image_with_a_sheared_band(self, endpoint):
        """The recorded S1 scene has a 21 x 10 px sheared ``angle`` band: the finest grid wins, with a warning."""
        info = recorded_info()
        grid = grid_of_info_band(info["bands"][0])
        with pytest.warns(MixedGridWarning, match="'VV'"):
            ds = self.open(endpoint, load_expression(COMPUTED_IMAGE_ID))
        assert list(ds.data_vars) == [band["id"] for band in info["bands"]]
        assert dict(ds.sizes) == {"y": grid.height, "x": grid.width}
        assert [ds[band["id"]].dtype for band in info["bands"]] == [
            np.dtype(dtype_of_pixel_type(band["data_type"])) for band in info["bands"]
        ]

    # --- errors ---------------------------------------------------------------------------

    def test_missing_asset_is_a_404_not_retried(self, endpoint):
        before = endpoint.count("getAsset")
        with pytest.raises(AssetNotFoundError) as raised:
            self.open(endpoint, "no/such/asset")
        assert raised.value.status == 404
        assert "projects/earthengine-public/assets/no/such/asset" in str(raised.value)
        assert endpoint.count("getAsset") == before + 1

    def test_bad_request_is_a_400_with_the_server_message(self, endpoint):
        before = endpoint.count("listAssets")
        with pytest.raises(EarthEngineRequestError) as raised:
            self.open(endpoint, COLLECTION_ID, filter="string_field = ")  # malformed: no value
        error = raised.value
        assert error.status == 400 and not isinstance(error, AssetNotFoundError)
        assert error.server_message and error.server_message in str(error)
        assert endpoint.count("listAssets") == before + 1  # a 400 is never retried

    def test_quota_429_is_retried_and_retry_after_obeyed(self, endpoint):
        with endpoint.quota_limited() as limited:
            started = time.monotonic()
            ds = self.open(limited, IMAGE_ID, bands=["B1"])
            elapsed = time.monotonic() - started
            assert limited.count("getAsset") == 2  # the 429, then the answer
            np.testing.assert_array_equal(
                ds.B1.isel(y=slice(0, 4), x=slice(0, 5)).values, expected_window(0, "uint16", slice(0, 4), slice(0, 5))
            )
        if limited.sends_retry_after:
            assert elapsed >= float(ERRORS["quota"]["headers"]["Retry-After"])

    def test_permission_denied_is_a_403_naming_asset_and_project(self, endpoint):
        with pytest.raises(AssetNotAccessibleError) as raised:
            self.open(endpoint, FORBIDDEN_ASSET)
        error = raised.value
        assert error.status == 403 and error.asset == FORBIDDEN_ASSET and error.project == endpoint.project
        assert "does not exist" in str(error) and FORBIDDEN_ASSET in str(error)
        assert error.server_message == ERRORS["forbidden"]["body"]["error"]["message"]
        assert endpoint.count("getAsset") >= 1


class TestLocalServer(ClientContract):
    @pytest.fixture(scope="class")
    @classmethod
    def endpoint(cls):
        with LocalEndpoint.running() as local:
            yield local

    @pytest.mark.xfail(
        strict=True,
        raises=AssetNotFoundError,
        reason="the local server has no per-asset permissions: an asset it does not hold is a 404, never a 403",
    )
    def test_permission_denied_is_a_403_naming_asset_and_project(self, endpoint):
        super().test_permission_denied_is_a_403_naming_asset_and_project(endpoint)


class TestReplayServer(ClientContract):
    @pytest.fixture(scope="class")
    @classmethod
    def endpoint(cls):
        with ReplayEndpoint.running() as replay:
            yield replay

    def test_the_replay_answers_only_what_was_recorded(self, endpoint):
        """The replay is strict: an unrecorded filter is the recorded 400, an unknown asset the 404."""
        with pytest.raises(EarthEngineRequestError) as raised:
            self.open(endpoint, COLLECTION_ID, filter='string_field = "baz"')
        assert raised.value.status == 400 and raised.value.server_message == "errorly"
        with pytest.raises(AssetNotFoundError):
            self.open(endpoint, "projects/earthengine-public/assets/other")
