"""Request planning: which requests cover which chunk, under which limits. Pure, no I/O."""

from eexarray.planning.limits import DEFAULT_LIMITS, MAX_BANDS, MAX_PIXELS_PER_SIDE, MAX_REQUEST_BYTES, RequestLimits
from eexarray.planning.tiles import PlannedRequest, auto_tile_shape, band_groups, plan_requests

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_BANDS",
    "MAX_PIXELS_PER_SIDE",
    "MAX_REQUEST_BYTES",
    "PlannedRequest",
    "RequestLimits",
    "auto_tile_shape",
    "band_groups",
    "plan_requests",
]
