"""What the server serves: images, collections and folders, by full asset name.

Two sources, merged by ``Catalog``: ``MemoryCatalog`` (ServerImage / ServerCollection
objects given to ``serve``) and ``DirectoryCatalog`` (a root directory, read on demand
so files added while serving appear at once). Folders of a memory catalog are implied
by the ids of its assets. Names come from the request, never from the file system, and
every file path is checked to stay inside the root.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eexarray.server.errors import ApiError, asset_not_found, failed_precondition, invalid_argument
from eexarray.server.geotiff import AssetFileError, GeoTiffImage, load_geotiff
from eexarray.server.images import ServerCollection, ServerImage
from eexarray.server.names import (
    LEGACY_PREFIXES,
    LEGACY_PROJECT,
    PUBLIC_PROJECT,
    candidate_paths,
    check_path,
    name_for_id,
    parent_name,
    project_root,
    split_name,
)

logger = logging.getLogger("eexarray.server")

TIFF_SUFFIXES = (".tif", ".tiff")
COLLECTION_MARKER = "collection.json"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class ImageAsset:
    name: str
    image: ServerImage
    update_time: dt.datetime
    size_bytes: int | None = None  # None: computed from the bands


@dataclass(frozen=True)
class CollectionAsset:
    name: str
    images: tuple[ImageAsset, ...]
    properties: Mapping[str, Any]
    update_time: dt.datetime


@dataclass(frozen=True)
class FolderAsset:
    name: str
    update_time: dt.datetime


Asset = ImageAsset | CollectionAsset | FolderAsset


class MemoryCatalog:
    """Assets held as Python objects; folders implied by their names."""

    def __init__(self, entries: Iterable[ServerImage | ServerCollection], update_time: dt.datetime | None = None):
        self.update_time = update_time or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self._assets: dict[str, Asset] = {}
        self._children: dict[str, list[str]] = {}
        for entry in entries:
            if isinstance(entry, ServerCollection):
                name = name_for_id(entry.asset_id)
                members = tuple(self._image_asset(image) for image in entry.images)
                self._add(CollectionAsset(name, members, dict(entry.properties), self.update_time))
                for member in members:
                    self._add(member, listed=False)
            elif isinstance(entry, ServerImage):
                self._add(self._image_asset(entry))
            else:
                raise TypeError(
                    f"A catalog entry must be a ServerImage or ServerCollection, got {type(entry).__name__}"
                )

    def _image_asset(self, image: ServerImage) -> ImageAsset:
        return ImageAsset(name_for_id(image.asset_id), image, self.update_time)

    def _add(self, asset: Asset, listed: bool = True) -> None:
        existing = self._assets.get(asset.name)
        if existing is not None and not (isinstance(existing, FolderAsset) and isinstance(asset, FolderAsset)):
            if isinstance(existing, FolderAsset):
                raise ValueError(f"Asset {asset.name!r} is also the folder of other assets")
            raise ValueError(f"Asset {asset.name!r} is registered twice")
        if existing is not None:
            return
        self._assets[asset.name] = asset
        if not listed:
            return
        parent = parent_name(asset.name)
        self._children.setdefault(parent, []).append(asset.name)
        if "/assets/" in parent:
            holder = self._assets.get(parent)
            if holder is None:
                self._add(FolderAsset(parent, self.update_time))
            elif not isinstance(holder, FolderAsset):
                raise ValueError(f"Asset {asset.name!r} lies inside {parent!r}, which is not a folder")

    def get(self, name: str) -> Asset | None:
        return self._assets.get(name)

    def children(self, name: str) -> list[Asset]:
        asset = self._assets.get(name)
        if isinstance(asset, CollectionAsset):
            return list(asset.images)
        return [self._assets[child] for child in self._children.get(name, [])]


class DirectoryCatalog:
    """Assets stored as files under ``root`` (see docs/server.md for the layout)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = os.path.realpath(os.fspath(root))
        # Both spellings of the root, kept out of every answer (error bodies included).
        spellings = {self.root, os.path.abspath(os.fspath(root))} - {os.sep}
        self.absolute_paths = tuple(sorted(spellings, key=len, reverse=True))
        if not os.path.isdir(self.root):
            raise ValueError(f"Catalog root {os.fspath(root)!r} is not a directory")

    # -- paths ------------------------------------------------------------------------
    def _inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real == self.root or real.startswith(self.root + os.sep)

    def _path(self, relative: str) -> str:
        segments = check_path(relative)
        if any(segment.startswith(".") for segment in segments):
            raise invalid_argument(f'Asset path "{relative}" has a hidden segment')
        return os.path.join(self.root, *segments)

    def _tif(self, base: str) -> str | None:
        for suffix in TIFF_SUFFIXES:
            if os.path.isfile(base + suffix) and self._inside(base + suffix):
                return base + suffix
        return None

    # -- lookup -----------------------------------------------------------------------
    def get(self, name: str) -> Asset | None:
        for relative in candidate_paths(name):
            asset = self._asset_at(self._path(relative), name)
            if asset is not None:
                return asset
        return None

    def _asset_at(self, base: str, name: str) -> Asset | None:
        tif = self._tif(base)
        if tif is not None:
            return self._image(tif, name)
        if os.path.isdir(base) and self._inside(base):
            marker = os.path.join(base, COLLECTION_MARKER)
            if os.path.isfile(marker) and self._inside(marker):
                return self._collection(base, marker, name)
            return FolderAsset(name, _mtime(base))
        return None

    def _image(self, tif: str, name: str) -> ImageAsset:
        sidecar = os.path.splitext(tif)[0] + ".json"
        stat = os.stat(tif)
        sidecar_stamp = os.stat(sidecar).st_mtime_ns if os.path.isfile(sidecar) and self._inside(sidecar) else None
        try:
            image = _cached_geotiff(
                name, tif, sidecar if sidecar_stamp is not None else "", stat.st_mtime_ns, stat.st_size, sidecar_stamp
            )
        except AssetFileError as error:
            raise failed_precondition(f'Asset "{name}" cannot be read: {error}') from None
        return ImageAsset(name, image, _mtime(tif), stat.st_size)

    def _collection(self, directory: str, marker: str, name: str) -> CollectionAsset:
        try:
            with open(marker, encoding="utf-8") as handle:
                properties = json.load(handle)
        except (OSError, ValueError) as error:
            raise failed_precondition(f'Collection "{name}": {COLLECTION_MARKER} is not valid JSON: {error}') from None
        if not isinstance(properties, dict):
            raise failed_precondition(f'Collection "{name}": {COLLECTION_MARKER} must hold a JSON object')
        images = tuple(
            self._image(path, f"{name}/{stem}") for stem, path, kind in self._entries(directory) if kind == "image"
        )
        return CollectionAsset(name, images, properties, _mtime(marker))

    def _entries(self, directory: str) -> list[tuple[str, str, str]]:
        """``(stem, path, "image" | "dir")`` of the servable entries of a directory, sorted."""
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return []
        seen: set[str] = set()
        entries = []
        for entry in names:
            if entry.startswith("."):
                continue
            path = os.path.join(directory, entry)
            stem, suffix = os.path.splitext(entry)
            if suffix.lower() in TIFF_SUFFIXES and os.path.isfile(path):
                kind = "image"
            elif os.path.isdir(path):
                stem, kind = entry, "dir"
            else:
                continue
            if stem in seen or not self._inside(path):
                continue
            seen.add(stem)
            entries.append((stem, path, kind))
        return entries

    # -- listing ----------------------------------------------------------------------
    def children(self, name: str) -> list[Asset]:
        if "/assets/" not in name:  # a project root: projects/<p>
            project = name.split("/", 1)[1]
            return self._project_children(project)
        asset = self.get(name)
        if isinstance(asset, CollectionAsset):
            return list(asset.images)
        if not isinstance(asset, FolderAsset):
            return []
        for relative in candidate_paths(name):
            base = self._path(relative)
            if os.path.isdir(base) and self._inside(base):
                return self._listing(base, name)
        return []

    def _listing(self, directory: str, name_prefix: str, skip: Sequence[str] = ()) -> list[Asset]:
        children: list[Asset] = []
        for stem, path, kind in self._entries(directory):
            if stem in skip:
                continue
            child_name = f"{name_prefix}/{stem}"
            try:
                asset = self._image(path, child_name) if kind == "image" else self._asset_at(path, child_name)
            except ApiError as error:
                # One unreadable file must not hide its siblings: it is left out of the
                # listing (and reported by getAsset on its own name).
                logger.warning("Skipping %s in the listing of %s: %s", child_name, name_prefix, error.message)
                continue
            if asset is not None:
                children.append(asset)
        return children

    def _project_children(self, project: str) -> list[Asset]:
        assets_dir = os.path.join(self.root, "projects", project, "assets")
        prefix = f"projects/{project}/assets"
        children: list[Asset] = []
        if project == PUBLIC_PROJECT:
            children += self._listing(self.root, prefix, skip=LEGACY_PREFIXES)
        if project == LEGACY_PROJECT:
            users = os.path.join(self.root, "users")
            if os.path.isdir(users) and self._inside(users):
                children += [a for a in self._listing(users, f"{prefix}/users") if isinstance(a, FolderAsset)]
        if os.path.isdir(assets_dir) and self._inside(assets_dir):
            known = {asset.name for asset in children}
            children += [a for a in self._listing(assets_dir, prefix) if a.name not in known]
        return children


@functools.lru_cache(maxsize=8192)
def _cached_geotiff(
    name: str, tif: str, sidecar: str, mtime_ns: int, size: int, sidecar_mtime_ns: int | None
) -> GeoTiffImage:
    # The stamps are part of the key: an edited file is read again.
    return load_geotiff(name, tif, sidecar)


def _mtime(path: str) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(os.stat(path).st_mtime, dt.timezone.utc)
    except OSError:
        return _EPOCH


@dataclass
class Catalog:
    """The merged view: memory assets first, then the directory root."""

    memory: MemoryCatalog = field(default_factory=lambda: MemoryCatalog([]))
    directory: DirectoryCatalog | None = None

    @classmethod
    def build(
        cls,
        root: str | os.PathLike[str] | None = None,
        entries: Sequence[ServerImage | ServerCollection] | None = None,
    ) -> Catalog:
        return cls(MemoryCatalog(entries or []), DirectoryCatalog(root) if root is not None else None)

    def get(self, name: str) -> Asset:
        """The asset called ``name``; 404 if there is none (400 if the name is malformed)."""
        split_name(name)
        asset = self.memory.get(name)
        if asset is None and self.directory is not None:
            asset = self.directory.get(name)
        if asset is None:
            raise asset_not_found(name)
        return asset

    def children(self, parent: str) -> list[Asset]:
        """Children of a folder, collection (its images) or project root ``projects/<p>``."""
        if "/assets/" in parent:
            asset = self.get(parent)
            if isinstance(asset, ImageAsset):
                raise invalid_argument(f'Asset "{parent}" is an image: only folders and collections can be listed')
            if isinstance(asset, CollectionAsset):
                return list(asset.images)
        else:
            check_path(parent.split("/", 1)[1] if "/" in parent else "", "Project")
        listed = self.memory.children(parent)
        if self.directory is not None:
            known = {asset.name for asset in listed}
            listed += [asset for asset in self.directory.children(parent) if asset.name not in known]
        # Folders list their children by name (collections keep their images' order).
        return sorted(listed, key=lambda asset: asset.name)


__all__ = [
    "Asset",
    "Catalog",
    "CollectionAsset",
    "DirectoryCatalog",
    "FolderAsset",
    "ImageAsset",
    "MemoryCatalog",
    "project_root",
]
