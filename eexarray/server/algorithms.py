"""``GET /v1/projects/*/algorithms``: the algorithms this server can evaluate.

The official client fetches this list once in ``ee.Initialize`` and builds its
``ee.Image`` / ``ee.ImageCollection`` methods from it; listing only what the server
implements makes unsupported operations fail in the client, by name, instead of as
an obscure server error. Entries use the REST ``Algorithm`` shape.
"""

from __future__ import annotations

from typing import Any


def _argument(name: str, type_: str, description: str, optional: bool = False, default: Any = None) -> dict[str, Any]:
    argument: dict[str, Any] = {"argumentName": name, "type": type_, "description": description}
    if optional:
        argument["optional"] = True
        if default is not None:
            argument["defaultValue"] = default
    return argument


ALGORITHMS: tuple[dict[str, Any], ...] = (
    {
        "name": "algorithms/Image.load",
        "description": "Loads an image by its asset id.",
        "returnType": "Image",
        "arguments": [
            _argument("id", "String", "The asset id of the image."),
            _argument("version", "Long", "The version of the asset; -1 means the latest.", optional=True),
        ],
    },
    {
        "name": "algorithms/Image.select",
        "description": "Selects bands of an image by id, optionally renaming them.",
        "returnType": "Image",
        "arguments": [
            _argument("input", "Image", "The image to select bands from."),
            _argument("bandSelectors", "List", "Band ids (or indices) to select."),
            _argument("newNames", "List", "New names for the selected bands.", optional=True),
        ],
    },
    {
        "name": "algorithms/ImageCollection.load",
        "description": "Loads an image collection by its asset id.",
        "returnType": "ImageCollection",
        "arguments": [
            _argument("id", "String", "The asset id of the collection."),
            _argument("version", "Long", "The version of the asset; -1 means the latest.", optional=True),
        ],
    },
)


def list_algorithms() -> dict[str, Any]:
    return {"algorithms": [dict(algorithm) for algorithm in ALGORITHMS]}
