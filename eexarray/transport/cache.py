"""An opt-in on-disk cache of pixel responses: a rerun of the same compute makes no request.

Entries are response bodies keyed by the request - endpoint, path, JSON body - and the
version of the asset(s) it reads (their ``updateTime``), so a changed asset is fetched
again. Only bodies that decoded and validated are stored (``RestClient.post_bytes``):
errors, refusals and corrupt bodies never are.

The store is one directory, shared safely by threads and processes:

* writes are atomic: a body goes to a unique temporary file in the cache's ``tmp/``,
  then ``os.replace`` moves it into place, so a reader sees a whole entry or none;
* each entry carries its length and a BLAKE2b digest, checked on every read; an entry
  that fails (a disk error, a crash before the data reached the disk) is deleted and
  counts as a miss;
* the size is bounded: a hit marks its entry recently used (its mtime), and when the
  entries exceed ``max_bytes`` the least recently used are deleted. Each process checks
  the bound after its own writes (at once when its estimate of the total is over it,
  and after every ``max_bytes / 16`` it wrote), so concurrent writers may overshoot it
  briefly, never for long.

No library is used: ``diskcache`` (the obvious candidate) is not a dependency of
eexarray, and the store needs only ``os.replace``, a digest and an mtime sort.
Responses are not user-specific on Earth Engine, but the cache does not check access:
keep one cache directory per user.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_BYTES = 10 * 2**30  # 10 GiB
ENVIRONMENT_VARIABLE = "EEXARRAY_REQUEST_CACHE"
_MAGIC = b"EEXARRAY-RESPONSE-1\n"
_DIGEST_BYTES = 32
_HEADER_BYTES = len(_MAGIC) + 8 + _DIGEST_BYTES  # magic, body length (8 bytes, little-endian), digest
_STALE_TEMPORARY_SECONDS = 3600  # a temporary file this old was left by a writer that died


@dataclass(frozen=True)
class RequestCache:
    """A response cache in ``directory`` holding at most about ``max_bytes`` of entries.

    Pickles as its two fields, so dask workers open the same directory (give a path every
    worker sees, e.g. a local disk on a single machine or a shared file system).
    """

    directory: str
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if not isinstance(self.directory, str) or not self.directory.strip():
            raise ValueError(f"request_cache needs a directory path, got {self.directory!r}")
        if isinstance(self.max_bytes, bool) or not isinstance(self.max_bytes, int) or self.max_bytes <= 0:
            raise ValueError(f"request cache max_bytes must be a positive integer, got {self.max_bytes!r}")
        object.__setattr__(self, "directory", os.path.abspath(os.path.expanduser(self.directory)))

    @property
    def entries_directory(self) -> str:
        return os.path.join(self.directory, "entries")

    def prepare(self) -> RequestCache:
        """Create the directories (or fail, naming the path) before any request is made."""
        try:
            os.makedirs(self.entries_directory, exist_ok=True)
            os.makedirs(os.path.join(self.directory, "tmp"), exist_ok=True)
        except OSError as error:
            raise ValueError(f"request_cache={self.directory!r} cannot be used as a directory: {error}") from None
        if not os.access(self.directory, os.W_OK):
            raise ValueError(f"request_cache={self.directory!r} is not writable")
        return self

    # -- keys and entries ------------------------------------------------------------------
    @staticmethod
    def key(endpoint: str, path: str, body: Any, version: str) -> str:
        """The entry name of a request: what it asks (endpoint, path, body) and of which asset version."""
        text = json.dumps([endpoint, path, body, version], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def _path(self, key: str) -> str:
        return os.path.join(self.entries_directory, key[:2], key)

    def get(self, key: str) -> bytearray | None:
        """The stored body (a writable buffer: decoded arrays may be views into it), or None."""
        path = self._path(key)
        try:
            with open(path, "rb") as file:
                header = file.read(_HEADER_BYTES)
                if len(header) != _HEADER_BYTES or not header.startswith(_MAGIC):
                    raise _BadEntry
                length = int.from_bytes(header[len(_MAGIC) : len(_MAGIC) + 8], "little")
                body = bytearray(length)
                if file.readinto(body) != length or file.read(1):
                    raise _BadEntry
        except FileNotFoundError:
            return None
        except (_BadEntry, OSError):
            self.discard(key)
            return None
        if hashlib.blake2b(body, digest_size=_DIGEST_BYTES).digest() != header[-_DIGEST_BYTES:]:
            self.discard(key)
            return None
        try:
            os.utime(path)  # recently used: the last to be evicted
        except OSError:
            pass  # evicted meanwhile by another process: the body read is still whole
        return body

    def put(self, key: str, body: bytes | bytearray | memoryview) -> None:
        """Store ``body`` under ``key`` atomically (a body larger than the whole cache is not stored)."""
        length = len(body)
        if length + _HEADER_BYTES > self.max_bytes:
            return
        digest = hashlib.blake2b(body, digest_size=_DIGEST_BYTES).digest()
        final = self._path(key)
        temporary = os.path.join(self.directory, "tmp", f"{key}.{os.getpid()}.{uuid.uuid4().hex}")
        try:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            with open(temporary, "wb") as file:
                file.write(_MAGIC + length.to_bytes(8, "little") + digest)
                file.write(body)
            os.replace(temporary, final)
        except OSError:
            # A full or read-only disk must not fail the compute: the pixels are in hand.
            try:
                os.unlink(temporary)
            except OSError:
                pass
            return
        if _usage(self).wrote(length + _HEADER_BYTES):
            self.evict()

    def discard(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except OSError:
            pass

    # -- size bound ------------------------------------------------------------------------
    def entries(self) -> list[tuple[float, int, str]]:
        """``(mtime, bytes, path)`` of every entry."""
        found = []
        try:
            shards = list(os.scandir(self.entries_directory))
        except FileNotFoundError:
            return []
        for shard in shards:
            if not shard.is_dir():
                continue
            try:
                for entry in os.scandir(shard.path):
                    try:
                        stat = entry.stat()
                    except FileNotFoundError:
                        continue  # evicted while listed
                    found.append((stat.st_mtime, stat.st_size, entry.path))
            except FileNotFoundError:
                continue
        return found

    def size(self) -> int:
        """Bytes of every entry (headers included)."""
        return sum(size for _, size, _ in self.entries())

    def evict(self) -> int:
        """Delete least recently used entries until they fit ``max_bytes``; returns the bytes kept."""
        entries = sorted(self.entries())
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass  # another process evicted it
            total -= size
        self._remove_stale_temporaries()
        _usage(self).scanned(total)
        return total

    def clear(self) -> None:
        """Delete every entry."""
        for _, _, path in self.entries():
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        _usage(self).scanned(0)

    def _remove_stale_temporaries(self) -> None:
        folder = os.path.join(self.directory, "tmp")
        limit = time.time() - _STALE_TEMPORARY_SECONDS
        try:
            for entry in os.scandir(folder):
                try:
                    if entry.stat().st_mtime < limit:
                        os.unlink(entry.path)
                except OSError:
                    continue
        except FileNotFoundError:
            pass


class _BadEntry(Exception):
    """An entry that is not a whole, valid one."""


class _Usage:
    """This process's estimate of a cache's total size, to decide when to scan it."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.total: int | None = None  # unknown until the first scan
        self.written_since_scan = 0
        self.lock = threading.Lock()

    def wrote(self, size: int) -> bool:
        """Count a write; True when it is time to check the bound."""
        with self.lock:
            self.written_since_scan += size
            if self.total is None:
                return True
            self.total += size
            return self.total > self.max_bytes or self.written_since_scan * 16 > self.max_bytes

    def scanned(self, total: int) -> None:
        with self.lock:
            self.total = total
            self.written_since_scan = 0


_usages: dict[tuple[str, int, int], _Usage] = {}
_usages_lock = threading.Lock()


def _usage(cache: RequestCache) -> _Usage:
    key = (cache.directory, cache.max_bytes, os.getpid())  # a forked child starts its own estimate
    with _usages_lock:
        usage = _usages.get(key)
        if usage is None:
            usage = _usages[key] = _Usage(cache.max_bytes)
        return usage


def resolve_request_cache(value: Any) -> RequestCache | None:
    """The ``request_cache`` option: a directory path, a ``RequestCache``, ``False`` (off) or None
    (``EEXARRAY_REQUEST_CACHE``, else off). The directory is created now, so a bad path fails
    before any request."""
    if value is None:
        value = os.environ.get(ENVIRONMENT_VARIABLE) or None
        if value is None:
            return None
    if value is False:
        return None
    if isinstance(value, RequestCache):
        return value.prepare()
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise TypeError(
            "request_cache must be a directory path, an eexarray.RequestCache, False or None, "
            f"got {type(value).__name__}: {value!r}"
        )
    return RequestCache(value).prepare()
