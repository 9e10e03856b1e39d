"""eexarray: Google Earth Engine imagery as lazy, dask-backed xarray Datasets."""

import eexarray.accessor  # noqa: F401 - registers the Dataset accessor ds.eexarray (preview, plan)
from eexarray.api import open_dataset
from eexarray.download import download
from eexarray.engine.cost import ComputePlan
from eexarray.transport import transport_stats
from eexarray.transport.cache import RequestCache


def serve(*args, **kwargs):  # noqa: ANN002, ANN003 - forwards to the server package
    """Start the local Earth Engine-compatible server; see ``eexarray.server.serve``."""
    from eexarray.server import serve as _serve

    return _serve(*args, **kwargs)


__all__ = ["ComputePlan", "RequestCache", "download", "open_dataset", "serve", "transport_stats"]
__version__ = "0.1.0"
