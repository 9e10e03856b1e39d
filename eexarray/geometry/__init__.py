"""Pure geometry core: CRS normalisation, pixel grids, windows and tiling.

Nothing in this package performs I/O. Both the client and the local server
build on it, so its behaviour is the single definition of "which pixel is where".
"""

from eexarray.geometry.crs import (
    METRES_PER_DEGREE,
    InvalidCrsError,
    crs_as_given,
    crs_equal,
    is_crs_code,
    metres_to_crs_units,
    normalize_crs,
    to_pyproj,
)
from eexarray.geometry.grid import InvalidGridError, PartialGrid, PixelGrid
from eexarray.geometry.window import Window, split_range, tile_window

__all__ = [
    "METRES_PER_DEGREE",
    "InvalidCrsError",
    "InvalidGridError",
    "PartialGrid",
    "PixelGrid",
    "Window",
    "crs_as_given",
    "crs_equal",
    "is_crs_code",
    "metres_to_crs_units",
    "normalize_crs",
    "split_range",
    "tile_window",
    "to_pyproj",
]
