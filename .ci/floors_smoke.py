"""Smoke test of eexarray at its declared dependency floors (run by .ci/run in its own venv).

The venv holds eexarray with the extras ``zarr,netcdf,progress,demo,distributed`` and the
lowest versions its pyproject allows (``uv pip install --resolution lowest-direct``).
Core: import, the local server, a small read checked against the server's own pixels, a
dask reduction, a PNG preview, a GeoTIFF download checked against the read, and
google-auth credentials against a server that requires a token. Extras: Zarr and netCDF
downloads read back, a tqdm bar, a matplotlib figure, and a compute on a
dask.distributed client (whose version must be dask's). Any warning of eexarray's own fails.
"""

from __future__ import annotations

import io
import sys
import tempfile
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

import eexarray
from eexarray.geometry import PixelGrid, Window, normalize_crs
from eexarray.server.demo_catalog import build_demo_catalog

ASSET = "eexarray/demo/S2_LANDSCAPE"
ROWS, COLS = slice(200, 264), slice(100, 164)
PACKAGES = [
    *("dask", "distributed", "xarray", "numpy", "pandas", "rioxarray", "rasterio", "pyproj", "affine", "pillow"),
    *("requests", "urllib3", "google-auth", "zarr", "netCDF4", "tqdm", "matplotlib"),
]


def expected_pixels(band: str, time: int) -> np.ndarray:
    """The server's own pixels of ``band`` in the window, masked pixels as NaN."""
    collection = next(asset for asset in build_demo_catalog() if asset.asset_id == ASSET)
    image = collection.images[time]
    window = Window(ROWS.start, ROWS.stop, COLS.start, COLS.stop)
    return image.read_band(image.band_index(band), window).astype("float64").filled(np.nan)


def _iso(time: np.datetime64) -> str:
    return str(np.datetime_as_string(time, unit="s")) + "Z"


def check_core(server: Any, tmp: Path) -> Any:
    """The core features; returns the opened Dataset and the checked window."""
    ds = eexarray.open_dataset(ASSET, endpoint=server.url, bands=["B4", "B8"], mask_and_scale=True, chunks={})
    assert ds.sizes["time"] == 25 and ds.sizes["y"] == ds.sizes["x"] == 1536, dict(ds.sizes)
    assert ds.rio.crs.to_epsg() == 32633, ds.rio.crs
    window = ds.isel(time=slice(0, 2), y=ROWS, x=COLS).compute()
    for time in range(2):
        for band in ("B4", "B8"):
            got = window[band].isel(time=time).values.astype("float64")
            want = expected_pixels(band, time)
            assert np.isfinite(want).any(), "the window should hold unmasked pixels"
            np.testing.assert_array_equal(got, want, err_msg=f"{band}, image {time}")
    # A lazy computation through dask, reduced over time.
    mean = ds.B8.isel(time=slice(0, 2), y=ROWS, x=COLS).mean("time").compute()
    np.testing.assert_allclose(mean.values, window.B8.mean("time").values)
    # A PNG preview rendered by the server (Pillow) and decoded by the client.
    rgba = ds.eexarray.preview(["B8"], min=0, max=5000, width=64, time=0, output="array")
    assert rgba.dtype == np.uint8 and rgba.shape == (64, 64, 4), (rgba.dtype, rgba.shape)
    # One download to GeoTIFF, read back with rasterio and compared with the read above.
    import rasterio

    tif = download(server, ds, window, tmp / "out.tif", "GEO_TIFF")
    with rasterio.open(tif) as written:
        assert written.crs.to_epsg() == 32633 and written.shape == (64, 64), (written.crs, written.shape)
        data = written.read(1, masked=True).astype("float64").filled(np.nan)
    np.testing.assert_array_equal(data, window.B4.isel(time=0).values, err_msg="downloaded GeoTIFF")
    # google-auth credentials against a server that requires a bearer token.
    from google.oauth2.credentials import Credentials

    with eexarray.serve(token="floors-secret") as secured:
        opened = eexarray.open_dataset(
            ASSET, endpoint=secured.url, bands=["B4"], credentials=Credentials("floors-secret")
        )
        assert opened.sizes["time"] == 25, dict(opened.sizes)
    return ds, window


def download(server: Any, ds: Any, window: Any, output: Path, format: str) -> Path:
    """The window's first image, band B4, downloaded in ``format``."""
    first = ds.time.values[0]
    return eexarray.download(
        ASSET,
        output,
        format=format,
        bands=["B4"],
        start=_iso(first - np.timedelta64(1, "h")),  # the first image only
        end=_iso(first + np.timedelta64(1, "h")),
        endpoint=server.url,
        progress=False,
        grid=PixelGrid(normalize_crs("EPSG:32633"), window.rio.transform(), 64, 64),
    )


def check_extras(server: Any, ds: Any, window: Any, tmp: Path) -> None:
    import xarray as xr

    expected = window.B4.isel(time=0).values
    store = download(server, ds, window, tmp / "out.zarr", "ZARR")
    with xr.open_zarr(store) as written:  # _FillValue (the no-data value) decodes to NaN
        np.testing.assert_array_equal(written.B4.squeeze().values, expected, err_msg="Zarr download")
    netcdf = download(server, ds, window, tmp / "out.nc", "NETCDF")
    with xr.open_dataset(netcdf, engine="netcdf4") as written:
        np.testing.assert_array_equal(written.B4.squeeze().values, expected, err_msg="netCDF download")

    from eexarray.progress import track_listing

    bar = io.StringIO()
    assert list(track_listing(range(5), description="listing", progress=True, threshold=2, file=bar)) == list(range(5))
    assert "5" in bar.getvalue(), bar.getvalue()

    figure = ds.eexarray.preview(["B8"], min=0, max=5000, width=64, time=0)  # a matplotlib Figure
    figure.savefig(tmp / "preview.png")

    from dask.distributed import Client

    assert version("dask") == version("distributed"), (version("dask"), version("distributed"))
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"):
        mean = ds.B8.isel(time=slice(0, 2), y=ROWS, x=COLS).mean("time").compute()
    np.testing.assert_allclose(mean.values, window.B8.mean("time").values, err_msg="distributed compute")


def main() -> int:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except Exception:  # noqa: BLE001 - not installed
            found[name] = "-"
    print("versions:", " ".join(f"{k}=={v}" for k, v in found.items()), flush=True)
    # eexarray warns when a dependency is too old for a feature (it then degrades): at the
    # floors that is a failure, so the floors are those of every feature.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with eexarray.serve() as server, tempfile.TemporaryDirectory() as tmp:
            ds, window = check_core(server, Path(tmp))
            print("core: passed", flush=True)
            check_extras(server, ds, window, Path(tmp))
            print("extras: passed", flush=True)
    own = [f"{w.category.__name__}: {w.message}" for w in caught if w.category.__module__.startswith("eexarray")]
    assert not own, "eexarray warned at the floors:\n" + "\n".join(own)
    print("floors smoke test passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
