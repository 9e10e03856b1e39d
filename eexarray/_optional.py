"""Optional dependencies: imported where a feature uses them, with an error naming the extra.

``require("zarr", "zarr", "download(format='ZARR')")`` returns the module, or raises
``ModuleNotFoundError: download(format='ZARR') needs the 'zarr' extra: pip install 'eexarray[zarr]'``
when ``zarr`` itself is not installed. Any other import failure (a broken install, a
missing dependency *of* ``zarr`` or a missing submodule of an installed ``zarr``) is
raised unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType


def missing_extra_message(extra: str, purpose: str) -> str:
    """The one wording of the error (also for a check with :func:`available` before work starts)."""
    return f"{purpose} needs the {extra!r} extra: pip install 'eexarray[{extra}]'"


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` (dotted names allowed), or say which extra of eexarray installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        parts = module.split(".")
        own = {".".join(parts[: i + 1]) for i in range(len(parts))}
        if error.name not in own or available(parts[0]):
            raise  # the package is there but something it imports is not: a broken install
        raise ModuleNotFoundError(missing_extra_message(extra, purpose), name=error.name) from error


def available(package: str) -> bool:
    """Whether ``package`` is installed (without importing it): for checks before work starts."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a broken package: not "not installed"
        return True
