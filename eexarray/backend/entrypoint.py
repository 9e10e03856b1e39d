"""The xarray entrypoint: ``xr.open_dataset(asset, engine="eexarray")``. Thin by design.

The options are defined once, in ``eexarray.backend.options.OPEN_OPTIONS``; the signature
below spells them out for ``help()`` and IDEs, and tests/core/test_options_definition.py
keeps it equal to that definition.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import xarray as xr
from xarray.backends import BackendEntrypoint
from xarray.backends.common import BACKEND_ENTRYPOINTS

from eexarray.backend.computed import resolve_computed
from eexarray.backend.dataset import OpenedAsset, build_dataset
from eexarray.backend.metadata import resolve_asset
from eexarray.backend.options import OPEN_OPTION_NAMES, check_keywords, option_values, parse_options, split_options
from eexarray.naming import asset_name, looks_like_asset
from eexarray.planning import expressions
from eexarray.transport import ConnectionConfig, RestClient
from eexarray.transport.credentials import compute_project

if TYPE_CHECKING:
    import os

    import numpy as np
    from google.auth.credentials import Credentials
    from pyproj import CRS

    from eexarray.backend.options import GeometryLike
    from eexarray.geometry import PixelGrid
    from eexarray.transport.cache import RequestCache


def open_eexarray(asset: Any, drop_variables: Any, values: Mapping[str, Any]) -> xr.Dataset:
    """Validate every option, fetch metadata (one get, one paged listing) and build the lazy Dataset."""
    expression = expressions.from_ee_object(asset)
    if expression is None and isinstance(asset, dict):
        expression = expressions.validate_expression(asset)
    name = asset_name(asset) if expression is None else None
    pixels, connection = split_options(values)
    options = parse_options(**pixels)
    config = ConnectionConfig.create(**connection)
    client = RestClient(config)
    if expression is not None:
        resolved = resolve_computed(client, compute_project(config), expression, options)
    else:
        assert name is not None  # set above whenever the asset is not an expression
        resolved = resolve_asset(client, name, options)
    return build_dataset(OpenedAsset(resolved, config, options), drop_variables)


class EexarrayBackendEntrypoint(BackendEntrypoint):
    description = "Open Google Earth Engine image assets and collections lazily (getPixels per chunk)."
    url = "https://github.com/eexarray/eexarray"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", *OPEN_OPTION_NAMES)

    @check_keywords("eexarray")
    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: Any = None,
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
        """Open an Earth Engine image or image collection lazily (what ``xr.open_dataset`` calls).

        Every option is checked before any request. See docs/api.md.

        Args:
            filename_or_obj: an asset id, full asset name or ``ee://`` URI; an expression graph;
                an ``ee.Image``/``ee.ImageCollection``.
            drop_variables: band ids to leave out.
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
        return open_eexarray(filename_or_obj, drop_variables, option_values(locals()))

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        return looks_like_asset(filename_or_obj)


# ``xr.open_dataset("ee://...")`` without ``engine=``: xarray asks its netCDF engines
# (OPTIONS["netcdf_engine_order"]: netcdf4, h5netcdf, scipy) before any installed engine,
# whatever that engine's name (plugins.sort_backends), and offers no priority for a
# third-party one. netCDF4's guess_can_open claims every "scheme://" string (kept for
# backward compatibility, pydata/xarray#10931), so it took ``ee://`` URIs and then failed
# on our options. So those engines decline ``ee://`` (a scheme netCDF-C cannot open).
# xarray imports this module while it lists its engines, before it guesses, so this
# holds without ``import eexarray``.
def _decline_ee_uris(backend: type[BackendEntrypoint]) -> None:
    original = backend.guess_can_open
    if getattr(original, "_declines_ee_uris", False):
        return

    @functools.wraps(original)
    def guess_can_open(self: BackendEntrypoint, filename_or_obj: Any) -> bool:
        if isinstance(filename_or_obj, str) and filename_or_obj.startswith("ee://"):
            return False
        return original(self, filename_or_obj)

    guess_can_open._declines_ee_uris = True  # type: ignore[attr-defined]
    backend.guess_can_open = guess_can_open  # type: ignore[method-assign]


for _engine in ("netcdf4", "h5netcdf", "scipy"):
    if _engine in BACKEND_ENTRYPOINTS:
        _decline_ee_uris(BACKEND_ENTRYPOINTS[_engine][1])
