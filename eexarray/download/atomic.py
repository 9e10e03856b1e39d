"""Atomic outputs: one download per output at a time, written under a temporary name, published when verified.

The temporary name is the output's name plus ``.partial`` (``out.tif.partial``,
``out.zarr.partial``), in the same folder so the final rename never crosses file
systems. Nothing under the final name is ever incomplete: it appears only by that
rename, after the writer verified what it wrote and it was synced to disk.

* **One download per output**: ``OutputLock`` holds an exclusive ``flock`` on
  ``<output>.lock`` for the whole download; a second download to the same output
  (another process or thread) is refused at once, naming the holder's pid. Without the
  lock, the second run removed the first's ``.partial`` and the first published the
  second's half-written file.
* **Only our own things are deleted or replaced**: a Zarr store is ours when its root
  attributes say so (``MARKER_ATTR``, written with the store's metadata) or, while it is
  a partial store, when it holds the ``MARKER`` file (written first, before anything
  else, and removed when the store is complete: zarr warns about files it does not
  know). A folder is never replaced by a file, nor a file by a folder, and a folder that
  is not one of our stores is never deleted, with or without ``overwrite``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"
# In every partial Zarr store a download creates, written before anything else.
MARKER = ".eexarray-download"
MARKER_CONTENT = {"software": "eexarray download", "format": "ZARR"}
# The root attribute of every Zarr store a download writes (zarr format 3: zarr.json; 2: .zattrs).
MARKER_ATTR = "eexarray_download"
MARKER_VALUE = "Zarr store written by eexarray download"


class OutputLockedError(OSError):
    """Another download is writing to the same output."""


def partial_path(output: Path) -> Path:
    return output.with_name(output.name + SUFFIX)


def lock_path(output: Path) -> Path:
    return output.with_name(output.name + LOCK_SUFFIX)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_our_store(path: Path) -> bool:
    """A folder marked as a Zarr store written (or being written) by ``eexarray download``."""
    if not path.is_dir() or path.is_symlink():
        return False
    if _json(path / MARKER) == MARKER_CONTENT:
        return True
    v3 = _json(path / "zarr.json")
    attributes = v3.get("attributes") if isinstance(v3, dict) else _json(path / ".zattrs")
    return isinstance(attributes, dict) and attributes.get(MARKER_ATTR) == MARKER_VALUE


def write_marker(store: Path) -> None:
    fsync_write(store / MARKER, json.dumps(MARKER_CONTENT).encode())


def check_replaceable(path: Path, folder: bool, what: str = "output") -> None:
    """Refuse to replace (or delete) ``path`` unless it is a file (``folder`` False) or one of our stores.

    ``folder``: the download writes a folder (a Zarr store) rather than a file.
    """
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_dir():
        if not folder:
            raise IsADirectoryError(
                f"{what} {str(path)!r} is a folder; a download of a file never replaces a folder: choose another "
                "output name or remove the folder yourself"
            )
        if not is_our_store(path):
            raise FileExistsError(
                f"{what} {str(path)!r} is a folder that is not a Zarr store written by eexarray download (no "
                f"{MARKER!r} marker); it is never deleted or replaced: choose another output name or remove it yourself"
            )
    elif folder:
        raise FileExistsError(
            f"{what} {str(path)!r} is a file; a Zarr download writes a folder and never replaces a file with one: "
            "choose another output name or remove the file yourself"
        )


def remove_own(path: Path, folder: bool) -> None:
    """Delete our leftover ``path`` (a file, or one of our stores), if there is one; refuse anything else."""
    check_replaceable(path, folder, what="leftover")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def fsync_write(path: Path, content: bytes) -> None:
    """Write a small file and sync it to disk."""
    with open(path, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_path(path: Path) -> None:
    """Sync a file's data, or a folder's entries, to disk."""
    flags = os.O_RDWR if os.name == "nt" else os.O_RDONLY  # Windows syncs only files open for writing
    if path.is_dir():
        if os.name == "nt":  # Windows cannot open (or sync) a folder; NTFS journals its entries
            return
        flags |= getattr(os, "O_DIRECTORY", 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """Sync a file, or every file and folder of a tree, to disk (already clean files cost one syscall)."""
    if not path.is_dir():
        fsync_path(path)
        return
    for folder, _, files in os.walk(path):
        for name in files:
            fsync_path(Path(folder) / name)
        fsync_path(Path(folder))


def publish(partial: Path, output: Path, overwrite: bool) -> None:
    """Move the complete, verified ``partial`` to ``output`` (replacing it only with ``overwrite``).

    The partial is synced to disk first, and the folder after the rename, so a power cut
    never leaves a final name pointing at data that was not written.
    """
    folder = partial.is_dir()
    fsync_tree(partial)
    if not (output.exists() or output.is_symlink()):
        os.rename(partial, output)
    elif not overwrite:
        raise FileExistsError(f"{str(output)!r} appeared during the download; the result is in {str(partial)!r}")
    else:
        check_replaceable(output, folder)  # again: it may have changed during the download
        if folder:
            # A folder cannot replace another atomically: move the old one aside first.
            aside = output.with_name(f"{output.name}.replaced-{os.getpid()}")
            os.rename(output, aside)
            os.rename(partial, output)
            shutil.rmtree(aside)
        else:
            os.replace(partial, output)
    fsync_path(output.parent)


class OutputLock:
    """An exclusive lock on ``<output>.lock`` for the duration of a download (see the module doc).

    The lock file is removed on release while still locked; a waiter that then locks the
    removed file sees it is no longer the one at that path and starts again, so two runs
    never both believe they hold the lock.
    """

    _held: set[Path] = set()  # outputs locked by this process (flock does not exclude our own threads)
    _held_lock = threading.Lock()

    def __init__(self, output: Path) -> None:
        self.output = output
        self.path = lock_path(output)
        self.fd = -1

    def acquire(self) -> None:
        with OutputLock._held_lock:
            if self.output in OutputLock._held:
                raise OutputLockedError(self._busy_message(os.getpid()))
            OutputLock._held.add(self.output)
        try:
            self._acquire_file()
        except BaseException:
            with OutputLock._held_lock:
                OutputLock._held.discard(self.output)
            raise

    def _acquire_file(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not _try_lock(fd):
                    raise OutputLockedError(self._busy_message(_read_pid(fd)))
                try:
                    current = os.stat(self.path)
                except FileNotFoundError:
                    current = None
                if current is not None and os.path.samestat(current, os.fstat(fd)):
                    if not _holds_a_pid_or_nothing(fd):  # a file of the user's, not a lock file of ours
                        raise FileExistsError(
                            f"{str(self.path)!r} is in the way of the download's lock file and was not made by "
                            "eexarray download; remove it or choose another output name"
                        )
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, str(os.getpid()).encode())
                    self.fd = fd
                    return
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the holder removed this lock file as we waited for it: take the new one

    def _busy_message(self, pid: int | None) -> str:
        holder = f" (process {pid})" if pid else ""
        return (
            f"another download to {str(self.output)!r} is running{holder}: two downloads to one output would "
            f"corrupt it. Wait for it to finish or choose another output (lock file {str(self.path)!r})"
        )

    def release(self) -> None:
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):  # gone already, or Windows (an open file cannot be removed)
            os.unlink(self.path)  # while still locked: see the class doc
        os.close(self.fd)
        self.fd = -1
        with OutputLock._held_lock:
            OutputLock._held.discard(self.output)


@contextlib.contextmanager
def locked(output: Path) -> Iterator[OutputLock]:
    lock = OutputLock(output)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: a byte-range lock on the first byte
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _head(fd: int) -> str:
    """The first bytes of the lock file: the holder's pid, or nothing."""
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 33).decode(errors="replace")


def _holds_a_pid_or_nothing(fd: int) -> bool:
    head = _head(fd)
    return len(head) <= 32 and (not head.strip() or head.strip().isdigit())


def _read_pid(fd: int) -> int | None:
    try:
        text = _head(fd).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
