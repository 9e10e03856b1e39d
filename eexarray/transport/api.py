"""Typed Earth Engine calls built on ``RestClient``: assets, listings, pixels."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from eexarray.geometry import PixelGrid
from eexarray.transport.decode import BODY_SLACK_BYTES, DECODERS, max_body_bytes
from eexarray.transport.errors import CorruptResponseError
from eexarray.transport.http import RestClient

LIST_PAGE_SIZE = 1000


def get_asset(client: RestClient, name: str) -> dict[str, Any]:
    return client.get_json(name, what=f"get asset {name}")


def list_images(
    client: RestClient,
    collection: str,
    *,
    filter: str | None = None,
    page_size: int = LIST_PAGE_SIZE,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Every image of a collection (at most ``limit``), one paged ``listAssets`` with the filter
    pushed to the server. With a limit the last page asks for what is left, so no more than
    ``limit`` images are ever transferred."""
    params: dict[str, Any] = {"pageSize": page_size if limit is None else min(page_size, limit)}
    if filter:
        params["filter"] = filter
    listed = 0
    while limit is None or listed < limit:
        page = client.get_json(f"{collection}:listAssets", params, what=f"list images of {collection}")
        assets = page.get("assets", [])
        if limit is not None:
            assets = assets[: limit - listed]
        listed += len(assets)
        yield from assets
        token = page.get("nextPageToken")
        if not token:
            return
        params["pageToken"] = token
        if limit is not None:
            params["pageSize"] = min(page_size, limit - listed)


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
        max_bytes=max_body_bytes(file_format, shape, band_ids),
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
        max_bytes=max_body_bytes(file_format, shape, band_ids),
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
    # RGBA, a filter byte per row, and deflate's worst case (stored blocks) within the slack.
    most = grid.height * (4 * grid.width + 1) + BODY_SLACK_BYTES
    return client.post_bytes(f"{name}:getPixels", body, _check_png, what=what, max_bytes=most)
