"""``GET /v1/projects/*/algorithms``: the algorithms this server can evaluate.

The official client fetches this list once in ``ee.Initialize`` and builds its
``ee.Image`` / ``ee.ImageCollection`` methods from it; listing only what the server
implements makes unsupported operations fail in the client, by name, instead of as
an obscure server error. Entries use the REST ``Algorithm`` shape; the table itself
lives with the implementations (``eexarray.server.compute.registry``).
"""

from __future__ import annotations

from typing import Any

from eexarray.server.compute import algorithm_list


def list_algorithms() -> dict[str, Any]:
    return algorithm_list()
