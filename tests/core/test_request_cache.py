"""The request cache's store (eexarray/transport/cache.py): atomic, checked, bounded, shared."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading

import pytest

from eexarray.transport.cache import DEFAULT_MAX_BYTES, RequestCache, resolve_request_cache

HEADER = len(b"EEXARRAY-RESPONSE-1\n") + 8 + 32


def body_for(key: str, size: int) -> bytes:
    """A body that can only belong to ``key`` (so a mixed-up or torn entry shows)."""
    seed = hashlib.sha256(key.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def test_round_trip_returns_a_writable_copy(tmp_path):
    cache = RequestCache(str(tmp_path)).prepare()
    key = cache.key("http://h", "a:getPixels", {"grid": 1}, "2024-01-01T00:00:00Z")
    assert cache.get(key) is None
    cache.put(key, bytearray(b"pixels" * 100))
    stored = cache.get(key)
    assert stored == b"pixels" * 100 and isinstance(stored, bytearray)
    stored[0] = 0  # decoded arrays may be views into it: it must be writable, and not shared
    assert cache.get(key) == b"pixels" * 100
    assert cache.size() == 600 + HEADER


def test_keys_differ_by_endpoint_path_body_and_version():
    base = ("http://h", "a:getPixels", {"grid": {"x": 1}, "bandIds": ["B1"]}, "v1")
    keys = {
        RequestCache.key(*base),
        RequestCache.key("http://other", *base[1:]),
        RequestCache.key(base[0], "b:getPixels", *base[2:]),
        RequestCache.key(*base[:2], {"grid": {"x": 2}, "bandIds": ["B1"]}, base[3]),
        RequestCache.key(*base[:3], "v2"),
    }
    assert len(keys) == 5
    # The body's key order does not matter (JSON is sorted), so the same request finds its entry.
    assert RequestCache.key(*base[:2], {"bandIds": ["B1"], "grid": {"x": 1}}, "v1") == RequestCache.key(*base)


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "garbage"])
def test_a_damaged_entry_is_a_miss_and_is_deleted(tmp_path, damage):
    cache = RequestCache(str(tmp_path)).prepare()
    key = cache.key("http://h", "p", {}, "v")
    cache.put(key, body_for(key, 5000))
    (path,) = [p for _, _, p in cache.entries()]
    data = bytearray(open(path, "rb").read())
    if damage == "flip a byte":
        data[HEADER + 2500] ^= 0xFF
    elif damage == "truncate":
        data = data[:-10]
    else:
        data = bytearray(b"not an entry")
    with open(path, "wb") as file:
        file.write(data)
    assert cache.get(key) is None
    assert not os.path.exists(path)


def test_least_recently_used_entries_are_evicted_to_the_bound(tmp_path):
    entry = 1000 + HEADER
    cache = RequestCache(str(tmp_path), max_bytes=3 * entry).prepare()
    keys = [cache.key("http://h", "p", {"n": n}, "v") for n in range(4)]
    for age, key in zip((400, 300, 200), keys[:3]):
        cache.put(key, body_for(key, 1000))
        path = cache._path(key)
        os.utime(path, (os.path.getmtime(path) - age,) * 2)  # written long ago, oldest first
    assert cache.get(keys[0]) == body_for(keys[0], 1000)  # used now: the most recent
    cache.put(keys[3], body_for(keys[3], 1000))  # over the bound: the least recently used goes
    assert cache.get(keys[1]) is None
    for key in (keys[0], keys[2], keys[3]):
        assert cache.get(key) == body_for(key, 1000)
    assert cache.size() <= cache.max_bytes


def test_a_body_larger_than_the_cache_is_not_stored(tmp_path):
    cache = RequestCache(str(tmp_path), max_bytes=1000).prepare()
    key = cache.key("http://h", "p", {}, "v")
    cache.put(key, b"x" * 2000)
    assert cache.get(key) is None and cache.entries() == []


def test_the_bound_holds_over_many_writes(tmp_path):
    cache = RequestCache(str(tmp_path), max_bytes=50_000).prepare()
    for n in range(200):
        key = cache.key("http://h", "p", {"n": n}, "v")
        cache.put(key, body_for(key, 700))
    assert cache.size() <= 50_000 + 50_000 // 16 + 700 + HEADER  # checked at least every 1/16 written
    assert cache.evict() <= 50_000


def _write_many(directory: str, max_bytes: int, writer: int, rounds: int) -> None:
    cache = RequestCache(directory, max_bytes)
    for n in range(rounds):
        # Shared keys (every writer writes them) and own keys; sizes vary so torn writes would show.
        for key_number in (n % 7, 100 * (writer + 1) + n):
            key = cache.key("http://h", "p", {"n": key_number}, "v")
            cache.put(key, body_for(key, 3000 + 37 * (key_number % 11)))
            found = cache.get(key)
            assert found is None or found == body_for(key, 3000 + 37 * (key_number % 11))


def test_concurrent_writers_threads_and_processes_leave_no_corrupt_entry(tmp_path):
    directory = str(tmp_path / "cache")
    max_bytes = 60_000  # small: evictions race with writes and reads
    RequestCache(directory, max_bytes).prepare()
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_many, args=(directory, max_bytes, w, 60)) for w in (0, 1)]
    for process in processes:
        process.start()
    errors: list[BaseException] = []

    def thread_writer(writer: int) -> None:
        try:
            _write_many(directory, max_bytes, writer, 60)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=thread_writer, args=(w,)) for w in (2, 3, 4, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    assert not errors, errors
    cache = RequestCache(directory, max_bytes)
    entries = cache.entries()
    assert entries, "nothing was stored"
    for _, size, path in entries:
        key = os.path.basename(path)
        body = cache.get(key)
        assert body is not None, f"corrupt entry {path}"
        assert hashlib.blake2b(body, digest_size=32).digest() == open(path, "rb").read()[HEADER - 32 : HEADER]
        assert size == len(body) + HEADER
    assert os.listdir(os.path.join(directory, "tmp")) == []  # every temporary file was renamed or removed
    assert cache.evict() <= max_bytes


def test_the_option_resolves_paths_environment_and_off(tmp_path, monkeypatch):
    monkeypatch.delenv("EEXARRAY_REQUEST_CACHE", raising=False)
    assert resolve_request_cache(None) is None
    cache = resolve_request_cache(tmp_path / "a")
    assert cache == RequestCache(str(tmp_path / "a"), DEFAULT_MAX_BYTES)
    assert os.path.isdir(tmp_path / "a" / "entries")
    monkeypatch.setenv("EEXARRAY_REQUEST_CACHE", str(tmp_path / "env"))
    assert resolve_request_cache(None) == RequestCache(str(tmp_path / "env"))
    assert resolve_request_cache(False) is None  # off, whatever the environment says
    custom = RequestCache(str(tmp_path / "b"), max_bytes=2**20)
    assert resolve_request_cache(custom) is custom and os.path.isdir(tmp_path / "b" / "tmp")


def test_bad_option_values_are_refused_before_any_request(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="cannot be used as a directory"):
        resolve_request_cache(str(a_file))
    with pytest.raises(TypeError, match="request_cache must be a directory path"):
        resolve_request_cache(True)
    with pytest.raises(TypeError, match="request_cache must be a directory path"):
        resolve_request_cache("  ")
    with pytest.raises(ValueError, match="max_bytes must be a positive integer"):
        RequestCache(str(tmp_path), max_bytes=0)
