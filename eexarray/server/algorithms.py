"""``GET /v1/projects/*/algorithms``: Earth Engine's algorithm catalog.

The official client fetches this list once in ``ee.Initialize`` and builds its
``ee.Image`` / ``ee.ImageCollection`` methods from it. The server lists the whole
catalog (``data/ee_algorithms.json``, from earthengine-api; see ``data/SOURCES.md``), so
every method exists in the client; evaluating one this server has not built is a 400
naming it (``compute.registry.not_implemented``). The implementations and the listing
live in ``eexarray.server.compute.registry``.
"""

from __future__ import annotations

from typing import Any

from eexarray.server.compute import algorithm_list


def list_algorithms() -> dict[str, Any]:
    return algorithm_list()
