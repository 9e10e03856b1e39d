"""Earth Engine asset names: short ids, full names and ``ee://`` URIs. Pure."""

from __future__ import annotations

import re

# Path segments: letters, digits, '_', '-', '.'; no empty segment, no '..'.
_SEGMENT = re.compile(r"^[A-Za-z0-9_.\-]+$")


class InvalidAssetIdError(ValueError):
    """A string that cannot be an Earth Engine asset id."""


def asset_name(asset: str) -> str:
    """The full ``projects/<project>/assets/<path>`` name of a short id, full name or ``ee://`` URI.

    Short ids under ``users/`` or ``projects/`` belong to ``earthengine-legacy``;
    every other short id to ``earthengine-public`` (the REST reference's rule).
    """
    if not isinstance(asset, str):
        raise InvalidAssetIdError(
            "An asset id must be a string such as 'COPERNICUS/S2_SR_HARMONIZED', "
            f"got {asset!r} ({type(asset).__name__})"
        )
    text = asset.strip()
    if text.startswith("ee://"):
        text = text[len("ee://") :]
    text = text.strip("/")
    if not text:
        raise InvalidAssetIdError(f"Empty asset id {asset!r}: expected e.g. 'COPERNICUS/S2_SR_HARMONIZED'")
    segments = text.split("/")
    for segment in segments:
        if not _SEGMENT.match(segment) or segment in (".", ".."):
            raise InvalidAssetIdError(
                f"Invalid asset id {asset!r}: segment {segment!r} may only use letters, digits, '_', '-' and '.'"
            )
    if len(segments) >= 4 and segments[0] == "projects" and segments[2] == "assets":
        return text
    if segments[0] == "projects" and len(segments) >= 3 and segments[2] != "assets":
        return f"projects/earthengine-legacy/assets/{text}"
    if segments[0] == "projects":
        raise InvalidAssetIdError(
            f"Invalid asset id {asset!r}: a full name looks like 'projects/<project>/assets/<path>'"
        )
    if segments[0] == "users":
        return f"projects/earthengine-legacy/assets/{text}"
    return f"projects/earthengine-public/assets/{text}"


def looks_like_asset(value: object) -> bool:
    """Cheap, offline check used by ``guess_can_open``: an ``ee://`` URI or a full asset name."""
    if not isinstance(value, str):
        return False
    return value.startswith("ee://") or bool(re.match(r"^projects/[^/]+/assets/.+", value))
