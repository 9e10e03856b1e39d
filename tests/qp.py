"""Gaps of dask's array query planning (dask 2026.8) that break xarray with or without eexarray.

`.ci/run` runs the suite with ``DASK_ARRAY__QUERY_PLANNING=True`` too. A test that needs
one of these gaps closed is marked with ``dask_expr_gap``: in that mode it must fail with
exactly the gap's exception (``strict``: once dask closes the gap the test passes, the
mark fails the run, and is removed). ``tests/test_query_planning.py`` shows each gap
without eexarray.
"""

from __future__ import annotations

import dask.array as da
import pytest

QUERY_PLANNING = da.array_expr_enabled()

REDUCTIONS = "xarray reductions (mean, median) of dask arrays: Array.__array_function__ raises NotImplementedError"
FILL_VALUE = "xarray's CF encoding of an integer dask variable with _FillValue calls full_like: NotImplementedError"
STORE = "da.store and da.from_delayed (xarray's to_zarr, xarray-beam) are not implemented for dask-expr"
TO_DELAYED = "Array.to_delayed is not implemented for dask-expr arrays: AttributeError"
FANCY_INDEX = "fancy indexing of a dask array lowers to a Shuffle that has no _token: AttributeError"


def dask_expr_gap(gap: str, raises: type[BaseException]) -> pytest.MarkDecorator:
    return pytest.mark.xfail(QUERY_PLANNING, reason=f"dask array query planning: {gap}", raises=raises, strict=True)
