"""Downloads of any size: ``eexarray.download(asset, output, format=...)``; see docs/downloads.md.

One module per concern: options.py (arguments), target.py (what is read), plan.py
(blocks), stream.py (bounded fetching), one writer per format (geotiff.py, npy.py,
zarr_store.py, netcdf.py; each imported only when used), atomic.py (temporary
names, the output lock, what may be replaced), resume.py (Zarr resume), progress.py (the progress bar), command.py (the
``eexarray download`` arguments).
"""

from eexarray.download.api import download
from eexarray.download.atomic import OutputLockedError
from eexarray.download.options import FORMATS
from eexarray.download.writer import OutputWriteError

__all__ = ["FORMATS", "OutputLockedError", "OutputWriteError", "download"]
