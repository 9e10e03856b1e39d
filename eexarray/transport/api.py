"""Typed Earth Engine calls built on ``RestClient``: assets, listings, pixels."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from eexarray.geometry import PixelGrid
from eexarray.transport.decode import DECODERS
from eexarray.transport.errors import CorruptResponseError
from eexarray.transport.http import RestClient

LIST_PAGE_SIZE = 1000


def get_asset(client: RestClient, name: str) -> dict[str, Any]:
    return client.get_json(name, what=f"get asset {name}")


def list_images(
    client: RestClient, collection: str, *, filter: str | None = None, page_size: int = LIST_PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Every image of a collection, one paged ``listAssets`` with the filter pushed to the server."""
    params: dict[str, Any] = {"pageSize": page_size}
    if filter:
        params["filter"] = filter
    while True:
        page = client.get_json(f"{collection}:listAssets", params, what=f"list images of {collection}")
        yield from page.get("assets", [])
        token = page.get("nextPageToken")
        if not token:
            return
        params["pageToken"] = token


def compute_value(client: RestClient, project: str, expression: dict[str, Any], *, what: str = "") -> Any:
    """``value:compute``: the JSON value of an expression (e.g. an image's getInfo metadata)."""
    body = {"expression": expression}
    return client.post_json(f"{project}/value:compute", body, what=what or "value:compute")["result"]


def compute_pixels(
    client: RestClient,
    project: str,
    expression: dict[str, Any],
    grid: PixelGrid,
    band_ids: Sequence[str],
    dtypes: Sequence[np.dtype],
    *,
    file_format: str = "NPY",
    what: str = "",
    version: str | None = None,
) -> dict[str, np.ndarray]:
    """One ``computePixels`` call, validated like ``get_pixels`` (``version``: see ``get_pixels``)."""
    decoder = DECODERS[file_format]
    body = {"expression": expression, "fileFormat": file_format, "grid": grid.to_rest(), "bandIds": list(band_ids)}
    shape = grid.shape
    return client.post_bytes(
        f"{project}/image:computePixels",
        body,
        lambda content: decoder(content, shape=shape, band_ids=band_ids, dtypes=dtypes),
        what=what or f"computePixels of {len(band_ids)} bands, {grid.width}x{grid.height} px",
        version=version,
    )


def get_pixels(
    client: RestClient,
    name: str,
    grid: PixelGrid,
    band_ids: Sequence[str],
    dtypes: Sequence[np.dtype],
    *,
    file_format: str = "NPY",
    version: str | None = None,
) -> dict[str, np.ndarray]:
    """One ``getPixels`` call: the bands of ``name`` on ``grid``, validated before return.

    ``version``: the asset's ``updateTime``; with it, a client with a request cache may
    answer from the cache (``RestClient.post_bytes``).
    """
    decoder = DECODERS[file_format]
    body = {"fileFormat": file_format, "grid": grid.to_rest(), "bandIds": list(band_ids)}
    shape = grid.shape
    what = (
        f"getPixels of {name} bands {list(band_ids)} "
        f"window {grid.width}x{grid.height} px at ({grid.transform.c}, {grid.transform.f})"
    )
    return client.post_bytes(
        f"{name}:getPixels",
        body,
        lambda content: decoder(content, shape=shape, band_ids=band_ids, dtypes=dtypes),
        what=what,
        version=version,
    )


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(content: bytes | bytearray) -> bytes:
    if not content.startswith(PNG_MAGIC):
        raise CorruptResponseError(f"not a PNG body (starts with {bytes(content[:16])!r})")
    return bytes(content)


def get_pixels_png(
    client: RestClient, name: str, grid: PixelGrid, band_ids: Sequence[str], visualization: dict[str, Any]
) -> bytes:
    """One ``getPixels`` call rendered by the server: ``visualizationOptions`` -> an RGBA PNG (raw bytes)."""
    body = {
        "fileFormat": "PNG",
        "grid": grid.to_rest(),
        "bandIds": list(band_ids),
        "visualizationOptions": visualization,
    }
    what = f"PNG preview of {name} bands {list(band_ids)} ({grid.width}x{grid.height} px)"
    return client.post_bytes(f"{name}:getPixels", body, _check_png, what=what)
