"""The public Python API."""

from __future__ import annotations

from typing import Any

import xarray as xr

from eexarray.backend.entrypoint import EexarrayBackendEntrypoint


def open_dataset(asset: Any, *, chunks: Any = {}, **options: Any) -> xr.Dataset:  # noqa: B006 - xarray's convention
    """Open an Earth Engine image or image collection as a lazy xarray Dataset.

    Same as ``xr.open_dataset(asset, engine="eexarray", chunks=chunks, **options)``,
    except that ``chunks`` defaults to ``{}``: dask arrays whose chunks are
    request-sized tiles. Pass ``chunks=None`` for lazily indexed numpy arrays.
    See the options in docs/api.md.
    """
    if not (chunks is None or chunks == "auto" or isinstance(chunks, (dict, int, tuple))):
        raise ValueError(
            f"chunks={chunks!r} is not valid: use {{}} (request-sized tiles), 'auto', a dict, an int or None"
        )
    return xr.open_dataset(asset, engine=EexarrayBackendEntrypoint, chunks=chunks, **options)
