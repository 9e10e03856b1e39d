"""Asset names: short ids, full ``projects/<p>/assets/<path>`` names and their safety.

The naming rules follow the reference (and ``ee._cloud_api_utils``): a short id
starting with ``users/`` or ``projects/`` lives in ``projects/earthengine-legacy``,
every other short id in ``projects/earthengine-public``; an id already of the full
form is its own name. Paths are checked segment by segment, so no name can
reach outside a directory root however it is spelled.
"""

from __future__ import annotations

import re

from eexarray.server.errors import invalid_argument

PUBLIC_PROJECT = "earthengine-public"
LEGACY_PROJECT = "earthengine-legacy"
LEGACY_PREFIXES = ("users", "projects")

# Names received in requests: any project.
_NAME_PATTERN = re.compile(r"^projects/([^/]+)/assets/(.*)$")
# Ids converted to names: the official client's rule, which only treats an id as a full
# name when the project id is a valid Cloud project id (6-30 chars); "projects/p/assets/x"
# is a legacy id there, so it is here too.
_ID_AS_NAME_PATTERN = re.compile(
    r"^projects/((?:\w+(?:[\w\-]+\.[\w\-]+)*?\.\w+\:)?[a-z][a-z0-9\-]{4,28}[a-z0-9])/assets/(.*)$"
)
_FORBIDDEN_CHARACTERS = set('\\\x00:*?"<>|')


def check_path(path: str, what: str = "Asset path") -> list[str]:
    """The segments of a relative asset path; 400 for anything that could escape a root."""
    if not isinstance(path, str) or not path:
        raise invalid_argument(f"{what} must be a non-empty string, got {path!r}")
    if path.startswith("/"):
        raise invalid_argument(f'{what} "{path}" must be relative (no leading "/")')
    segments = path.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise invalid_argument(f'{what} "{path}" has an empty, "." or ".." segment; ids are "/"-separated names')
        bad = _FORBIDDEN_CHARACTERS.intersection(segment)
        if bad or any(ord(character) < 32 for character in segment):
            raise invalid_argument(f'{what} "{path}" contains a forbidden character {sorted(bad) or "control"}')
    return segments


def name_for_id(asset_id: str) -> str:
    """The full asset name of a short id (or of a full name, unchanged)."""
    match = _ID_AS_NAME_PATTERN.match(asset_id)
    if match:
        check_path(match.group(2), "Asset name")
        return asset_id
    segments = check_path(asset_id, "Asset id")
    project = LEGACY_PROJECT if segments[0] in LEGACY_PREFIXES else PUBLIC_PROJECT
    return f"projects/{project}/assets/{asset_id}"


def split_name(name: str) -> tuple[str, str]:
    """``(project, path)`` of ``projects/<project>/assets/<path>`` (path may be empty)."""
    match = _NAME_PATTERN.match(name)
    if not match:
        raise invalid_argument(f'Invalid asset name "{name}": expected "projects/<project>/assets/<path>"')
    project, path = match.group(1), match.group(2).rstrip("/")
    if project in (".", "..") or "\x00" in project:
        raise invalid_argument(f'Invalid project "{project}" in asset name "{name}"')
    if path:
        check_path(path, "Asset name")
    return project, path


def short_id(name: str) -> str:
    """The ``id`` field of an asset: what a user would pass to ``ee.Image(...)``."""
    project, path = split_name(name)
    first = path.split("/", 1)[0]
    if project == PUBLIC_PROJECT and first not in LEGACY_PREFIXES:
        return path
    if project == LEGACY_PROJECT and first in LEGACY_PREFIXES:
        return path
    return name


def project_root(project: str) -> str:
    """The key of a project's top level (the parent of project-level listAssets)."""
    return f"projects/{project}"


def parent_name(name: str) -> str:
    """The folder or collection holding ``name``, or its project root.

    ``users/<user>`` is itself a root folder of the legacy project: ``users`` alone
    is not an asset.
    """
    project, path = split_name(name)
    head, _, _ = path.rpartition("/")
    if not head or head in LEGACY_PREFIXES:
        return project_root(project)
    return f"projects/{project}/assets/{head}"


def candidate_paths(name: str) -> list[str]:
    """Relative paths under a directory root that may hold the asset ``name``.

    ``DIR/<id>.tif`` is the asset with short id ``<id>``; a tree laid out as
    ``DIR/projects/<p>/assets/...`` holds full names literally.
    """
    project, path = split_name(name)
    candidates = []
    if path:
        identifier = short_id(name)
        if identifier != name:
            candidates.append(identifier)
        candidates.append(f"projects/{project}/assets/{path}")
    return candidates
