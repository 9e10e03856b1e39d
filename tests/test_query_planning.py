"""What the suite assumes about dask's array query planning (``DASK_ARRAY__QUERY_PLANNING``).

`.ci/run` runs the whole suite with it on and off; these tests pin the two facts that
differ between the modes, so a dask release that changes either one is noticed.
"""

from __future__ import annotations

import subprocess
import sys

import dask.array as da
import pytest

import eexarray
from eexarray.backend.narrowing import NarrowingUnavailableWarning
from eexarray.planning.expressions import mask_band_names

from .client.conftest import catalog


def test_dask_still_lacks_array_protocol():
    """tests/conftest.py stands in for ``Array.__array__`` under query planning; remove it when this fails."""
    code = (
        "import dask; dask.config.set({'array.query-planning': True}); import dask.array as da, numpy as np; "
        "print(np.asarray(da.zeros(2, chunks=1)).dtype)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "object", "dask computes np.asarray now: drop the stand-in in tests/conftest.py"


def test_band_narrowing_or_its_warning():
    """Legacy graphs fetch only the computed bands; under query planning every read fetches all
    the Dataset's bands (one request per block still) and a warning says so once."""
    with eexarray.serve(catalog=catalog()) as server:
        if da.array_expr_enabled():
            with pytest.warns(NarrowingUnavailableWarning) if not _warned() else _nothing():
                ds = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks={"y": 200, "x": 300})
        else:
            ds = eexarray.open_dataset("test/mixed", endpoint=server.url, chunks={"y": 200, "x": 300})
        ds.u8.compute()
        log = server.stats()["pixel_requests"]
    expected = ["u8", "i16", "f32", "f64"] if da.array_expr_enabled() else ["u8"]
    expected += mask_band_names(expected)  # the bands' mask bits (mask_and_scale=True, the default)
    assert len(log) == 4 and all(entry["bandIds"] == expected for entry in log)


def _warned() -> bool:
    from eexarray.backend import narrowing

    return narrowing._warned


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


GAPS = {
    "reductions": (
        "import xarray as xr; xr.DataArray(da.zeros((4, 4), chunks=2, dtype='uint8')).mean().compute()",
        "NotImplementedError",
    ),
    "fill_value": (
        "import xarray as xr, tempfile; v = xr.Variable(('y',), da.zeros(4, chunks=2, dtype='uint8'));"
        " v.encoding['_FillValue'] = 0; xr.Dataset({'a': v}).to_zarr(tempfile.mkdtemp() + '/a.zarr', compute=False)",
        "NotImplementedError",
    ),
    "store": ("da.store(da.zeros(2, chunks=1), np.empty(2))", "NotImplementedError"),
    "fancy_index": ("da.zeros(8, chunks=2)[np.array([5, 1, 5])].compute()", "AttributeError"),
    "to_delayed": ("da.zeros(4, chunks=2).to_delayed()", "AttributeError"),
}


@pytest.mark.parametrize("gap", sorted(GAPS))
def test_dask_query_planning_gaps_are_dask_not_ours(gap):
    """Each gap of tests/qp.py, reproduced without eexarray: remove its marks when this fails."""
    statement, error = GAPS[gap]
    code = (
        "import dask; dask.config.set({'array.query-planning': True}); import dask.array as da, numpy as np\n"
        f"try:\n    {statement}\nexcept {error}:\n    print('gap')\nelse:\n    print('closed')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "gap", f"dask closed the {gap} gap: drop its dask_expr_gap marks"
