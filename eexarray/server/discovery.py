"""The table of REST methods this server supports, and the discovery document built from it.

The official ``earthengine-api`` client builds its API surface from
``GET /$discovery/rest?version=v1``; serving a document generated from this table
makes that client call exactly the methods below (and fail clearly, client-side, on
any other). The router matches requests against the same table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

VERSIONS = ("v1", "v1alpha", "v1beta")
ASSET_NAME = "^projects/[^/]+/assets/.*$"
PROJECT_NAME = "^projects/[^/]+$"
THUMBNAIL_NAME = "^projects/[^/]+/thumbnails/[^/]+$"


@dataclass(frozen=True)
class MethodSpec:
    """One REST method: discovery description plus the name it is counted under in /_stats."""

    stats_name: str
    resource: tuple[str, ...]  # e.g. ("projects", "assets")
    method: str  # discovery method name, e.g. "get"
    http_method: str
    path_param: str  # the {+param} the path starts with
    path_pattern: str  # discovery pattern of that parameter
    suffix: str  # text after the parameter, e.g. ":listAssets" or "/algorithms"
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    request_schema: str | None = None
    response_schema: str = "Empty"
    description: str = ""

    def route(self) -> re.Pattern[str]:
        """Regex over the decoded request path (without the version prefix)."""
        body = self.path_pattern.strip("^$")
        if body.endswith(".*"):  # asset names never contain ':' (names.check_path)
            body = body[:-2] + "[^:]*"
        return re.compile(f"^(?P<{self.path_param}>{body}){re.escape(self.suffix)}$")


# A parameter name -> its discovery description (type, format, location, ...).
_PAGE: dict[str, dict[str, Any]] = {
    "pageSize": {"type": "integer", "format": "int32", "location": "query"},
    "pageToken": {"type": "string", "location": "query"},
    "filter": {"type": "string", "location": "query"},
    "view": {"type": "string", "location": "query", "enum": ["IMAGE_VIEW_UNSPECIFIED", "FULL", "BASIC"]},
}
_TIME: dict[str, Any] = {"type": "string", "format": "google-datetime", "location": "query"}

# Order matters for routing: the first matching pattern wins.
METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("listAssets", ("projects", "assets"), "listAssets", "GET", "parent", ASSET_NAME, ":listAssets",
               dict(_PAGE), None, "ListAssetsResponse",
               "Lists the images of a collection or the children of a folder."),
    MethodSpec("listImages", ("projects", "assets"), "listImages", "GET", "parent", ASSET_NAME, ":listImages",
               {**_PAGE, "startTime": _TIME, "endTime": _TIME, "region": {"type": "string", "location": "query"}},
               None, "ListImagesResponse", "Lists the images of a collection or folder, filtered by time and region."),
    MethodSpec("getPixels", ("projects", "assets"), "getPixels", "POST", "name", ASSET_NAME, ":getPixels",
               {}, "GetPixelsRequest", "HttpBody", "Fetches pixels of an image asset in a chosen grid and format."),
    MethodSpec("getAsset", ("projects", "assets"), "get", "GET", "name", ASSET_NAME, "",
               {}, None, "EarthEngineAsset", "Returns an asset's metadata."),
    MethodSpec("listAssets", ("projects",), "listAssets", "GET", "parent", PROJECT_NAME, ":listAssets",
               dict(_PAGE), None, "ListAssetsResponse", "Lists the top-level assets of a project."),
    MethodSpec("listAlgorithms", ("projects", "algorithms"), "list", "GET", "parent", PROJECT_NAME, "/algorithms",
               {}, None, "ListAlgorithmsResponse", "Lists Earth Engine's algorithm catalog."),
    MethodSpec("computePixels", ("projects", "image"), "computePixels", "POST", "project", PROJECT_NAME,
               "/image:computePixels", {}, "ComputePixelsRequest", "HttpBody",
               "Computes pixels of an image expression in a chosen grid and format."),
    MethodSpec("valueCompute", ("projects", "value"), "compute", "POST", "project", PROJECT_NAME, "/value:compute",
               {}, "ComputeValueRequest", "ComputeValueResponse", "Evaluates an expression to a JSON value."),
    MethodSpec("createThumbnail", ("projects", "thumbnails"), "create", "POST", "parent", PROJECT_NAME, "/thumbnails",
               {}, "Thumbnail", "Thumbnail",
               "Creates a thumbnail (a stored pixel request) for getDownloadId/getThumbId."),
    MethodSpec("thumbnailPixels", ("projects", "thumbnails"), "getPixels", "GET", "name", THUMBNAIL_NAME,
               ":getPixels", {}, None, "HttpBody", "Computes the pixels of a thumbnail as a file."),
)  # fmt: skip

GLOBAL_PARAMETERS: dict[str, dict[str, Any]] = {
    "$.xgafv": {"type": "string", "location": "query", "enum": ["1", "2"]},
    "access_token": {"type": "string", "location": "query"},
    "alt": {"type": "string", "location": "query", "default": "json", "enum": ["json", "media", "proto"]},
    "callback": {"type": "string", "location": "query"},
    "fields": {"type": "string", "location": "query"},
    "key": {"type": "string", "location": "query"},
    "oauth_token": {"type": "string", "location": "query"},
    "prettyPrint": {"type": "boolean", "location": "query", "default": "true"},
    "quotaUser": {"type": "string", "location": "query"},
    "uploadType": {"type": "string", "location": "query"},
    "upload_protocol": {"type": "string", "location": "query"},
}

_ANY_OBJECT = {"type": "object", "additionalProperties": {"type": "any"}}
SCHEMAS: dict[str, dict[str, Any]] = {
    "Empty": {"id": "Empty", "type": "object", "properties": {}},
    "EarthEngineAsset": {
        "id": "EarthEngineAsset",
        "type": "object",
        "properties": {
            key: {"type": "string"} for key in ("type", "name", "id", "updateTime", "startTime", "endTime", "sizeBytes")
        }
        | {"properties": _ANY_OBJECT, "geometry": _ANY_OBJECT, "bands": {"type": "array", "items": _ANY_OBJECT}},
    },
    "ListAssetsResponse": {
        "id": "ListAssetsResponse",
        "type": "object",
        "properties": {
            "assets": {"type": "array", "items": {"$ref": "EarthEngineAsset"}},
            "nextPageToken": {"type": "string"},
        },
    },
    "ListImagesResponse": {
        "id": "ListImagesResponse",
        "type": "object",
        "properties": {
            "images": {"type": "array", "items": {"$ref": "EarthEngineAsset"}},
            "nextPageToken": {"type": "string"},
        },
    },
    "GetPixelsRequest": {
        "id": "GetPixelsRequest",
        "type": "object",
        "properties": {
            "fileFormat": {"type": "string"},
            "grid": _ANY_OBJECT,
            "region": _ANY_OBJECT,
            "bandIds": {"type": "array", "items": {"type": "string"}},
            "visualizationOptions": _ANY_OBJECT,
            "workloadTag": {"type": "string"},
        },
    },
    "ComputePixelsRequest": {
        "id": "ComputePixelsRequest",
        "type": "object",
        "properties": {
            "expression": _ANY_OBJECT,
            "fileFormat": {"type": "string"},
            "grid": _ANY_OBJECT,
            "bandIds": {"type": "array", "items": {"type": "string"}},
            "visualizationOptions": _ANY_OBJECT,
            "workloadTag": {"type": "string"},
        },
    },
    "Thumbnail": {
        "id": "Thumbnail",
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "expression": _ANY_OBJECT,
            "fileFormat": {"type": "string"},
            "bandIds": {"type": "array", "items": {"type": "string"}},
            "visualizationOptions": _ANY_OBJECT,
            "filenamePrefix": {"type": "string"},
            "grid": _ANY_OBJECT,
            "workloadTag": {"type": "string"},
        },
    },
    "ComputeValueRequest": {
        "id": "ComputeValueRequest",
        "type": "object",
        "properties": {"expression": _ANY_OBJECT, "workloadTag": {"type": "string"}},
    },
    "ComputeValueResponse": {
        "id": "ComputeValueResponse",
        "type": "object",
        "properties": {"result": {"type": "any"}},
    },
    "HttpBody": {
        "id": "HttpBody",
        "type": "object",
        "properties": {"contentType": {"type": "string"}, "data": {"type": "string", "format": "byte"}},
    },
    "ListAlgorithmsResponse": {
        "id": "ListAlgorithmsResponse",
        "type": "object",
        "properties": {"algorithms": {"type": "array", "items": _ANY_OBJECT}},
    },
}


def _method_json(spec: MethodSpec, version: str) -> dict[str, Any]:
    path_parameter = {
        "type": "string",
        "location": "path",
        "required": True,
        "pattern": spec.path_pattern,
        "description": "",
    }
    flat_param = {PROJECT_NAME: "projectsId", THUMBNAIL_NAME: "projectsId}/thumbnails/{thumbnailsId"}.get(
        spec.path_pattern, "projectsId}/assets/{assetsId"
    )
    described: dict[str, Any] = {
        "id": "earthengine." + ".".join(spec.resource) + "." + spec.method,
        "description": spec.description,
        "httpMethod": spec.http_method,
        "path": f"{version}/{{+{spec.path_param}}}{spec.suffix}",
        "flatPath": f"{version}/projects/{{{flat_param}}}{spec.suffix}",
        "parameterOrder": [spec.path_param],
        "parameters": {spec.path_param: path_parameter, **{k: {**v, "description": ""} for k, v in spec.query.items()}},
        "response": {"$ref": spec.response_schema},
        "scopes": [
            "https://www.googleapis.com/auth/cloud-platform",
            "https://www.googleapis.com/auth/earthengine",
            "https://www.googleapis.com/auth/earthengine.readonly",
        ],
    }
    if spec.request_schema is not None:
        described["request"] = {"$ref": spec.request_schema}
    return described


def discovery_document(base_url: str, version: str = "v1") -> dict[str, Any]:
    """The discovery document of this server for API ``version``, rooted at ``base_url``."""
    tree: dict[str, Any] = {}
    for spec in METHODS:
        node = tree
        for part in spec.resource:
            node = node.setdefault("resources", {}).setdefault(part, {})
        methods = node.setdefault("methods", {})
        methods.setdefault(spec.method, _method_json(spec, version))
    root = base_url.rstrip("/") + "/"
    return {
        "kind": "discovery#restDescription",
        "discoveryVersion": "v1",
        "id": f"earthengine:{version}",
        "name": "earthengine",
        "canonicalName": "Earth Engine",
        "version": version,
        "revision": "0",
        "title": "Earth Engine API (eexarray local server)",
        "description": "A local Earth Engine-compatible server: the methods listed here and nothing else.",
        "ownerDomain": "eexarray.local",
        "ownerName": "eexarray",
        "documentationLink": "https://developers.google.com/earth-engine/reference/rest",
        "protocol": "rest",
        "rootUrl": root,
        "servicePath": "",
        "baseUrl": root,
        "batchPath": "batch",
        "fullyEncodeReservedExpansion": True,
        "parameters": {name: {**value, "description": ""} for name, value in GLOBAL_PARAMETERS.items()},
        "auth": {
            "oauth2": {
                "scopes": {
                    "https://www.googleapis.com/auth/cloud-platform": {"description": "Cloud Platform"},
                    "https://www.googleapis.com/auth/earthengine": {"description": "Earth Engine"},
                    "https://www.googleapis.com/auth/earthengine.readonly": {"description": "Earth Engine (read)"},
                }
            }
        },
        "schemas": SCHEMAS,
        "resources": tree["resources"],
    }
