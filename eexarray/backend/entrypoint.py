"""The xarray entrypoint: ``xr.open_dataset(asset, engine="eexarray")``. Thin by design."""

from __future__ import annotations

from typing import Any

import xarray as xr
from xarray.backends import BackendEntrypoint

from eexarray.backend import expressions
from eexarray.backend.computed import resolve_computed
from eexarray.backend.dataset import OpenedAsset, build_dataset
from eexarray.backend.metadata import resolve_asset
from eexarray.backend.options import parse_options
from eexarray.naming import asset_name, looks_like_asset
from eexarray.transport import ConnectionConfig, RestClient

OPEN_PARAMETERS = (
    "bands",
    "crs",
    "scale",
    "region",
    "grid",
    "start",
    "end",
    "filter",
    "endpoint",
    "high_volume",
    "project",
    "credentials",
    "max_concurrency",
    "mask_and_scale",
    "file_format",
)


def open_eexarray(
    asset: Any,
    *,
    drop_variables: Any = None,
    bands: Any = None,
    crs: Any = None,
    scale: Any = None,
    region: Any = None,
    grid: Any = None,
    start: Any = None,
    end: Any = None,
    filter: Any = None,
    endpoint: str | None = None,
    high_volume: bool = False,
    project: str | None = None,
    credentials: Any = None,
    max_concurrency: int | None = None,
    mask_and_scale: bool = False,
    file_format: str = "NPY",
) -> xr.Dataset:
    """Validate every option, fetch metadata (one get, one paged listing) and build the lazy Dataset."""
    expression = expressions.from_ee_object(asset)
    if expression is None and isinstance(asset, dict):
        expression = expressions.validate_expression(asset)
    name = asset_name(asset) if expression is None else None
    options = parse_options(
        bands=bands,
        crs=crs,
        scale=scale,
        region=region,
        grid=grid,
        start=start,
        end=end,
        filter=filter,
        mask_and_scale=mask_and_scale,
        file_format=file_format,
    )
    config = ConnectionConfig.create(
        endpoint, high_volume=high_volume, project=project, credentials=credentials, max_concurrency=max_concurrency
    )
    client = RestClient(config)
    if expression is not None:
        resolved = resolve_computed(client, f"projects/{config.project or 'earthengine-legacy'}", expression, options)
    else:
        assert name is not None  # set above whenever the asset is not an expression
        resolved = resolve_asset(client, name, options)
    return build_dataset(OpenedAsset(resolved, config, options), drop_variables)


class EexarrayBackendEntrypoint(BackendEntrypoint):
    description = "Open Google Earth Engine image assets and collections lazily (getPixels per chunk)."
    url = "https://github.com/eexarray/eexarray"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", *OPEN_PARAMETERS)

    def open_dataset(self, filename_or_obj: Any, *, drop_variables: Any = None, **options: Any) -> xr.Dataset:
        unknown = sorted(set(options) - set(OPEN_PARAMETERS))
        if unknown:
            raise TypeError(f"Unknown eexarray option(s) {unknown}; valid options are {list(OPEN_PARAMETERS)}")
        return open_eexarray(filename_or_obj, drop_variables=drop_variables, **options)

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        return looks_like_asset(filename_or_obj)
