"""listAssets and listImages: children of a folder, collection or project, filtered and paged.

Paging: ``pageSize`` defaults to 1000 and is capped at 10000 (larger values are
clamped, as AIP-158 asks); ``pageToken`` is opaque and bound to the listing it came
from, so a token replayed against another parent or filter is a 400.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from eexarray.server.asset_json import VIEWS, asset_json, image_json
from eexarray.server.catalog import Asset, Catalog, ImageAsset
from eexarray.server.errors import invalid_argument
from eexarray.server.filters import FilterError, parse_filter
from eexarray.server.geojson import GeometryError, intersects, parse_geometry
from eexarray.server.timestamps import parse_time

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10000

Query = Mapping[str, Sequence[str]]


def _single(query: Query, key: str) -> str | None:
    values = query.get(key)
    if not values:
        return None
    if len(values) > 1:
        raise invalid_argument(f"Query parameter {key} given {len(values)} times; give it once")
    return values[0]


def _page_size(query: Query) -> int:
    text = _single(query, "pageSize")
    if text is None or text == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(text)
    except ValueError:
        raise invalid_argument(f"pageSize must be an integer, got {text!r}") from None
    if size < 0:
        raise invalid_argument(f"pageSize must not be negative, got {size}")
    return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _view(query: Query) -> str:
    view = _single(query, "view") or "FULL"
    if view not in VIEWS:
        raise invalid_argument(f"view must be one of {list(VIEWS)}, got {view!r}")
    return "BASIC" if view == "BASIC" else "FULL"


def _listing_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _encode_token(offset: int, key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "k": key}).encode()).decode().rstrip("=")


def _decode_token(token: str | None, key: str) -> int:
    if not token:
        return 0
    try:
        content = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset, token_key = content["o"], content["k"]
    except (ValueError, KeyError, TypeError):
        raise invalid_argument(f"Invalid pageToken {token!r}") from None
    if token_key != key or not isinstance(offset, int) or offset < 0:
        raise invalid_argument(f"Invalid pageToken {token!r}: it belongs to another listing (parent, filter or view)")
    return offset


def compile_filter(text: str | None) -> Callable[[dict[str, Any]], bool] | None:
    """The AIP-160 predicate of ``text`` (None when there is no filter); 400 when malformed."""
    if text is None or not text.strip():
        return None
    try:
        return parse_filter(text)
    except FilterError as error:
        raise invalid_argument(f"Invalid filter {text!r}: {error}") from None


def _page(items: Iterable[dict[str, Any]], query: Query, key: str, field: str) -> dict[str, Any]:
    """One page of ``items``: they are built lazily and only up to the page's end (plus one, to know
    whether another page follows), so paging through a large collection costs each page its
    offset, not the whole collection."""
    size = _page_size(query)
    offset = _decode_token(_single(query, "pageToken"), key)
    head = list(itertools.islice(items, offset + size + 1))
    result: dict[str, Any] = {field: head[offset : offset + size]}
    if len(head) > offset + size:
        result["nextPageToken"] = _encode_token(offset + size, key)
    return result


def _filtered(
    assets: Iterable[Asset], predicate: Callable[[dict[str, Any]], bool] | None, view: str
) -> Iterator[dict[str, Any]]:
    for asset in assets:
        full = asset_json(asset, "FULL")
        if predicate is not None and not predicate(full):
            continue
        yield full if view == "FULL" else asset_json(asset, view)


def list_assets(catalog: Catalog, parent: str, query: Query) -> dict[str, Any]:
    """``{"assets": [...], "nextPageToken"?}`` for a folder, collection or ``projects/<p>``."""
    view = _view(query)
    text = _single(query, "filter")
    predicate = compile_filter(text)
    items = _filtered(catalog.children(parent), predicate, view)
    return _page(items, query, _listing_key("assets", parent, text, view), "assets")


def list_images(catalog: Catalog, parent: str, query: Query) -> dict[str, Any]:
    """``{"images": [...], "nextPageToken"?}``: images of a collection or folder, with time/region filters."""
    view = _view(query)
    text = _single(query, "filter")
    predicate = compile_filter(text)
    start_text, end_text, region_text = (_single(query, key) for key in ("startTime", "endTime", "region"))
    start = parse_time(start_text, "startTime") if start_text else None
    end = parse_time(end_text, "endTime") if end_text else None
    region = None
    if region_text:
        try:
            region = parse_geometry(region_text)
        except GeometryError as error:
            raise invalid_argument(f"region must be a GeoJSON geometry: {error}") from None

    def selected() -> Iterator[ImageAsset]:
        for asset in catalog.children(parent):
            if not isinstance(asset, ImageAsset):
                continue
            image = asset.image
            # Same semantics as the official client's listImages filter:
            # startTime >= start AND endTime < end AND intersects(region).
            if start is not None and (image.start_time is None or image.start_time < start):
                continue
            if end is not None and (image.end_time is None or image.end_time >= end):
                continue
            if region is not None:
                geometry = image_json(asset).get("geometry")
                if geometry is None or not intersects(parse_geometry(geometry), region):
                    continue
            yield asset

    items = _filtered(selected(), predicate, view)
    key = _listing_key("images", parent, text, view, start_text, end_text, region_text)
    return _page(items, query, key, "images")
