"""A local Earth Engine-compatible REST server (``eexarray serve``).

Serves GeoTIFF directories, in-memory numpy images and procedural images through the
Earth Engine REST protocol (getAsset, listAssets, listImages, getPixels, algorithms,
discovery), faithfully enough for the official ``earthengine-api`` client. It shares
only the pure grid/geometry core with the eexarray client. See docs/server.md.
"""

from eexarray.server.catalog import Catalog
from eexarray.server.geotiff import GeoTiffImage
from eexarray.server.images import (
    BandInfo,
    InMemoryImage,
    ProceduralImage,
    ServerCollection,
    ServerImage,
    procedural_collection,
    procedural_values,
)
from eexarray.server.launcher import Server, serve
from eexarray.server.options import FaultPlan, ServerOptions

__all__ = [
    "BandInfo",
    "Catalog",
    "FaultPlan",
    "GeoTiffImage",
    "InMemoryImage",
    "ProceduralImage",
    "Server",
    "ServerCollection",
    "ServerImage",
    "ServerOptions",
    "procedural_collection",
    "procedural_values",
    "serve",
]
