"""Pure geometry core: CRS normalisation, pixel grids, windows and tiling.

Nothing in this package performs I/O. Both the client and the local server
build on it, so its behaviour is the single definition of "which pixel is where".
"""

from eexarray.geometry.crs import InvalidCrsError, crs_equal, normalize_crs, to_pyproj
from eexarray.geometry.grid import InvalidGridError, PixelGrid
from eexarray.geometry.window import Window, split_range, tile_window

__all__ = [
    "InvalidCrsError",
    "InvalidGridError",
    "PixelGrid",
    "Window",
    "crs_equal",
    "normalize_crs",
    "split_range",
    "tile_window",
    "to_pyproj",
]
