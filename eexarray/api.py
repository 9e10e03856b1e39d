"""The public Python API."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import xarray as xr

from eexarray.backend.entrypoint import EexarrayBackendEntrypoint
from eexarray.backend.options import check_keywords, option_values

if TYPE_CHECKING:
    import os

    import numpy as np
    from google.auth.credentials import Credentials
    from pyproj import CRS

    from eexarray.backend.options import GeometryLike
    from eexarray.geometry import PixelGrid
    from eexarray.transport.cache import RequestCache


# The options are defined once, in eexarray.backend.options.OPEN_OPTIONS. They are written
# out here rather than generated so that type checkers, IDEs and the API reference (which
# read the source) see them; tests/core/test_options_definition.py checks them against it.
@check_keywords("eexarray")
def open_dataset(
    asset: Any,
    *,
    chunks: Any = {},  # noqa: B006 - xarray's convention
    bands: str | Sequence[str] | None = None,
    crs: str | CRS | None = None,
    scale: float | tuple[float, float] | None = None,
    resolution: float | tuple[float, float] | None = None,
    region: Sequence[float] | dict[str, Any] | GeometryLike | None = None,
    grid: PixelGrid | dict[str, Any] | None = None,
    max_pixels_per_side: int | None = None,
    resampling: Literal["nearest", "bilinear", "bicubic"] = "nearest",
    start: str | dt.date | np.datetime64 | None = None,
    end: str | dt.date | np.datetime64 | None = None,
    filter: str | None = None,
    properties: bool | Sequence[str] = False,
    groupby: Literal["solar_day"] | None = None,
    max_images: int | None = 5000,
    endpoint: str | None = None,
    high_volume: bool = False,
    project: str | None = None,
    credentials: Credentials | None = None,
    max_concurrency: int | None = None,
    request_timeout: float | None = None,
    mask_and_scale: bool = True,
    file_format: Literal["NPY", "GEO_TIFF"] = "NPY",
    request_cache: str | os.PathLike[str] | RequestCache | Literal[False] | None = None,
) -> xr.Dataset:
    """Open an Earth Engine image or image collection as a lazy xarray Dataset.

    Same as ``xr.open_dataset(asset, engine="eexarray", chunks=chunks, **options)``,
    except that ``chunks`` defaults to ``{}``: dask arrays whose chunks are
    request-sized tiles. Every option is checked before any request: a bad value
    raises ``ValueError`` or ``TypeError`` naming it. See docs/api.md.

    Args:
        asset: an asset id (``"COPERNICUS/S2_SR_HARMONIZED"``), a full asset name, an ``ee://``
            URI, an expression graph (dict) or an ``ee.Image``/``ee.ImageCollection``.
        chunks: ``{}`` or ``"auto"``: request-sized tiles; a dict per dimension; an int;
            ``None``: lazily indexed numpy arrays, no dask.
        bands: band ids to open, in this order
        crs: output CRS: `"EPSG:32610"`, WKT, or a `pyproj.CRS`
        scale: metres per pixel, or `(x, y)`, as in Earth Engine (in a geographic CRS, degrees = metres / 111319.49)
        resolution: CRS units per pixel (degrees in EPSG:4326), or `(x, y)`; exclusive with `scale`
        region: GeoJSON geometry dict, shapely geometry, or `(west, south, east, north)`, in EPSG:4326
        grid: a `PixelGrid` or a REST PixelGrid dict; exclusive with `crs`/`scale`/`resolution`/`region`
        max_pixels_per_side: largest output grid side in pixels; also caps tiles per band at 10^6 x (this / 2^20)^2
        resampling: `bilinear`/`bicubic`: interpolated by the service off the native grid (`Image.resample`)
        start: collections: keep images whose `startTime` is at or after this date (ISO 8601, e.g. `2021-06-01`)
        end: collections: keep images whose `startTime` is before this date (exclusive)
        filter: collections: an AIP-160 filter, e.g. `properties.CLOUDY_PIXEL_PERCENTAGE < 20`
        properties: collections: per-image properties as coordinates along `time`: `True` (all) or a list of names
        groupby: collections: `"solar_day"`: one time step per local solar day, mosaicked on the server
        max_images: unfiltered collections: refuse to list more images than this (`None`: no limit)
        endpoint: REST endpoint URL
        high_volume: use `https://earthengine-highvolume.googleapis.com`
        project: quota project (`X-Goog-User-Project`)
        credentials: google-auth credentials
        max_concurrency: requests in flight: per process, and across a dask.distributed cluster
        request_timeout: seconds one attempt of one request may take, connecting and the whole response included
        mask_and_scale: floats, NaN exactly where masked (masks fetched with pixels); `False`: native values
        file_format: pixel encoding on the wire: `"NPY"` or `"GEO_TIFF"`
        request_cache: a directory caching pixel responses: a rerun makes no request (docs/costs.md); `False`: off
    """
    options = option_values(locals())
    if not (chunks is None or chunks == "auto" or isinstance(chunks, (dict, int, tuple))):
        raise ValueError(
            f"chunks={chunks!r} is not valid: use {{}} (request-sized tiles), 'auto', a dict, an int or None"
        )
    with warnings.catch_warnings():
        # xarray warns when chunks cut the backend's preferred chunks; any chunks make valid
        # requests here (planning splits or shrinks them), so the advice does not apply.
        warnings.filterwarnings(
            "ignore", message="The specified chunks separate the stored chunks", category=UserWarning
        )
        dataset = xr.open_dataset(asset, engine=EexarrayBackendEntrypoint, chunks=chunks, **options)
    if "image_id" in dataset.coords and dataset["image_id"].chunks is not None:
        # xarray chunks every non-index coordinate; the ids are already in memory.
        dataset = dataset.assign_coords(image_id=dataset["image_id"].compute())
    return dataset
