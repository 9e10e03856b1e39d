"""The REST surface, independent of the HTTP stack: (method, target, body) -> Reply.

Routes come from ``discovery.METHODS`` under ``/v1``, ``/v1alpha`` and ``/v1beta``,
plus ``GET /$discovery/rest``. Every foreseeable failure is an ``ApiError`` answered
with its own status; the HTTP layer turns anything else into a 500.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from eexarray.geometry import InvalidCrsError, InvalidGridError
from eexarray.server.algorithms import list_algorithms
from eexarray.server.asset_json import asset_json
from eexarray.server.catalog import Catalog, ImageAsset
from eexarray.server.compute import compute_pixels, compute_value
from eexarray.server.discovery import GLOBAL_PARAMETERS, METHODS, VERSIONS, MethodSpec, discovery_document
from eexarray.server.errors import ApiError, invalid_argument, not_found
from eexarray.server.listing import list_assets, list_images
from eexarray.server.pixels import get_pixels
from eexarray.server.thumbnails import ThumbnailStore

JSON_TYPE = "application/json; charset=UTF-8"
_ROUTES = [(spec, spec.route()) for spec in METHODS]


@dataclass
class Reply:
    status: int
    body: bytes | bytearray  # NPY pixels are a bytearray, sent without another copy
    content_type: str = JSON_TYPE
    method: str = "other"  # the name it is counted under in /_stats
    pixel_record: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(value: Any, method: str, status: int = 200) -> Reply:
    return Reply(status, json.dumps(value, separators=(",", ":")).encode(), JSON_TYPE, method)


def error_reply(error: ApiError, method: str) -> Reply:
    return json_reply(error.to_json(), method, error.code)


def classify(http_method: str, target: str) -> str:
    """The /_stats name of a request, before it is handled (used for fault accounting)."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(target).path)
    if path == "/$discovery/rest":
        return "discovery"
    match = _match(http_method, path)
    return match[0].stats_name if match and match[0] else "other"


def _match(http_method: str, path: str) -> tuple[MethodSpec | None, dict[str, str]] | None:
    """``(spec, path params)``; ``(None, {})`` when the path exists for another HTTP method."""
    version, sep, rest = path.lstrip("/").partition("/")
    if not sep or version not in VERSIONS:
        return None
    other_method = False
    for spec, pattern in _ROUTES:
        found = pattern.match(rest)
        if found:
            if spec.http_method == http_method:
                return spec, found.groupdict()
            other_method = True
    return (None, {}) if other_method else None


class Api:
    def __init__(self, catalog: Catalog, compute_budget: int | None = None):
        self.catalog = catalog
        self.compute_budget = compute_budget  # ServerOptions.compute_budget
        self.thumbnails = ThumbnailStore()

    def handle(self, http_method: str, target: str, body: bytes, base_url: str) -> Reply:
        split = urllib.parse.urlsplit(target)
        path = urllib.parse.unquote(split.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        if path == "/$discovery/rest":
            return self._discovery(http_method, query, base_url)
        match = _match(http_method, path)
        if match is None:
            return error_reply(not_found(f"The requested URL {split.path} was not found on this server."), "other")
        spec, params = match
        if spec is None:
            error = ApiError(405, f"Method {http_method} is not allowed on {split.path}.", "METHOD_NOT_ALLOWED")
            return error_reply(error, "other")
        try:
            _check_query(spec, query)
            return self._dispatch(spec, params, query, body)
        except ApiError as error:
            return error_reply(error, spec.stats_name)
        except (InvalidGridError, InvalidCrsError) as error:  # bad grids/CRSs found deep in a request
            return error_reply(invalid_argument(str(error)), spec.stats_name)

    def _discovery(self, http_method: str, query: dict[str, list[str]], base_url: str) -> Reply:
        if http_method != "GET":
            return error_reply(ApiError(405, "The discovery document is read with GET."), "discovery")
        version = (query.get("version") or ["v1"])[0]
        if version not in VERSIONS:
            return error_reply(
                not_found(f"Unknown API version {version!r}; this server serves {list(VERSIONS)}"), "discovery"
            )
        return json_reply(discovery_document(base_url, version), "discovery")

    def _dispatch(self, spec: MethodSpec, params: dict[str, str], query: dict[str, list[str]], body: bytes) -> Reply:
        name = spec.stats_name
        if name == "getAsset":
            return json_reply(asset_json(self.catalog.get(params["name"])), name)
        if name == "listAssets":
            return json_reply(list_assets(self.catalog, params["parent"], query), name)
        if name == "listImages":
            return json_reply(list_images(self.catalog, params["parent"], query), name)
        if name == "listAlgorithms":
            return json_reply(list_algorithms(), name)
        if name == "getPixels":
            return self._get_pixels(params["name"], body)
        if name == "computePixels":
            return self._compute_pixels(body)
        if name == "valueCompute":
            return json_reply(compute_value(self.catalog, _json_body(body)), name)
        if name == "createThumbnail":
            return json_reply(self.thumbnails.create(self.catalog, params["parent"], _json_body(body)), name)
        if name == "thumbnailPixels":
            return self._thumbnail_pixels(params["name"])
        raise AssertionError(f"No handler for {name}")  # pragma: no cover - METHODS and handlers agree

    def _get_pixels(self, asset_name: str, body: bytes) -> Reply:
        asset = self.catalog.get(asset_name)
        if not isinstance(asset, ImageAsset):
            raise invalid_argument(f'Asset "{asset_name}" is not an image: getPixels reads IMAGE assets only.')
        result = get_pixels(asset.image, _json_body(body))
        record = {
            "method": "getPixels",
            "asset": asset_name,
            "bandIds": result.band_ids,
            "width": result.request.grid.width,
            "height": result.request.grid.height,
            "fileFormat": result.request.file_format,
            "bytes": len(result.data),
        }
        return Reply(200, result.data, result.content_type, "getPixels", record)

    def _compute_pixels(self, body: bytes) -> Reply:
        result = compute_pixels(self.catalog, _json_body(body), compute_budget=self.compute_budget)
        record = {
            "method": "computePixels",
            "asset": None,
            "bandIds": result.band_ids,
            "width": result.request.grid.width,
            "height": result.request.grid.height,
            "fileFormat": result.request.file_format,
            "bytes": len(result.data),
        }
        return Reply(200, result.data, result.content_type, "computePixels", record)

    def _thumbnail_pixels(self, name: str) -> Reply:
        result = self.thumbnails.get_pixels(self.catalog, name)
        record = {
            "method": "thumbnailPixels",
            "asset": None,
            "bandIds": result.band_ids,
            "width": result.width,
            "height": result.height,
            "fileFormat": result.file_format,
            "bytes": len(result.data),
        }
        return Reply(200, result.data, result.content_type, "thumbnailPixels", record)


def _json_body(body: bytes) -> Any:
    if not body:
        return {}
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise invalid_argument(f"Invalid JSON payload received. {error}") from None
    except RecursionError:
        raise invalid_argument("Invalid JSON payload received. It is nested too deeply.") from None


def _check_query(spec: MethodSpec, query: dict[str, list[str]]) -> None:
    for key in query:
        if key not in spec.query and key not in GLOBAL_PARAMETERS:
            raise invalid_argument(
                f'Invalid JSON payload received. Unknown name "{key}": Cannot bind query parameter. '
                f"Field '{key}' could not be found in request message."
            )
