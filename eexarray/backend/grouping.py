"""``groupby="solar_day"``: which images of a collection share one time step. Pure.

odc-stac's definition (``odc.stac.load(groupby="solar_day")``, its ``_convert_to_solar_time``):
an image's solar day is the date of its UTC timestamp shifted by the longitude of the centre
of the output area, in whole hours (``int(longitude / 15)`` hours, truncated toward zero).
One shift for every image (the area's, not each image's), so two tiles of one overpass always
share a day. A group keeps the images in listing order (start time, then id): the mosaic puts
the last on top, as ``ImageCollection.mosaic`` does. Its time is its first image's, as in
odc-stac. Images without a start time are never grouped.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import pyproj

from eexarray.geometry import PixelGrid


def centre_longitude(grid: PixelGrid) -> float:
    """Longitude (degrees) of the centre of ``grid``'s area."""
    west, south, east, north = grid.bounds
    to_degrees = pyproj.Transformer.from_crs(grid.pyproj_crs, "EPSG:4326", always_xy=True)
    longitude, _ = to_degrees.transform((west + east) / 2, (south + north) / 2)
    if not math.isfinite(longitude):
        raise ValueError(
            f"groupby='solar_day' needs the longitude of the output area's centre; ({(west + east) / 2}, "
            f"{(south + north) / 2}) in {grid.crs} has none: pass region= or crs=/scale= for another area"
        )
    return float(longitude)


def solar_day(start_time: str, longitude: float) -> dt.date:
    """The local solar date of an RFC 3339 UTC ``start_time`` at ``longitude``."""
    moment = dt.datetime.fromisoformat(start_time.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    return (moment + dt.timedelta(hours=int(longitude / 15))).date()


def group_by_solar_day(start_times: Sequence[str | None], longitude: float) -> list[list[int]]:
    """Indices of the images of each time step, in order; ``start_times`` are sorted."""
    groups: list[list[int]] = []
    previous: dt.date | None = None
    for index, start_time in enumerate(start_times):
        day = solar_day(start_time, longitude) if start_time else None
        if day is not None and day == previous:
            groups[-1].append(index)
        else:
            groups.append([index])
        previous = day
    return groups
