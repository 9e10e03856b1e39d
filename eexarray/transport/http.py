"""The only module that talks HTTP: JSON calls and pixel calls with retry and an in-flight cap."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

from eexarray.transport.cache import RequestCache
from eexarray.transport.cluster import request_slot
from eexarray.transport.config import ConnectionConfig
from eexarray.transport.errors import (
    AssetNotFoundError,
    CorruptResponseError,
    EarthEngineRequestError,
    EndpointUnreachableError,
    RetriesExhaustedError,
)
from eexarray.transport.session import COUNTERS, endpoint_state

T = TypeVar("T")
Body = bytes | bytearray  # response bodies: a bytearray when read straight from the socket
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``Retry-After`` wins when the server sends it."""

    max_attempts: int = 8
    initial_delay: float = 0.25
    max_delay: float = 20.0
    connect_attempts: int = 2  # a dead endpoint fails fast
    timeout: float = 300.0

    def __post_init__(self) -> None:
        for name in ("max_attempts", "connect_attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RetryPolicy.{name} must be a positive integer, got {value!r}")
        for name in ("initial_delay", "max_delay", "timeout"):
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not 0 <= value < float("inf"):
                raise ValueError(f"RetryPolicy.{name} must be a finite number of seconds >= 0, got {value!r}")
        if self.timeout == 0:
            raise ValueError("RetryPolicy.timeout must be positive, got 0")

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(self.max_delay, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return random.uniform(0, min(self.max_delay, self.initial_delay * 2**attempt))


DEFAULT_RETRY = RetryPolicy()
_process_default = DEFAULT_RETRY


def set_default_retry_policy(policy: RetryPolicy | None) -> RetryPolicy:
    """Use ``policy`` for every client of this process created with the default policy.

    Returns the previous policy (``None`` restores ``RetryPolicy()``). Process-wide, like
    the connection pools: dask workers in other processes keep their own default.
    """
    global _process_default
    if policy is not None and not isinstance(policy, RetryPolicy):
        raise TypeError(f"policy must be an eexarray.transport.RetryPolicy or None, got {type(policy).__name__}")
    previous, _process_default = _process_default, policy if policy is not None else DEFAULT_RETRY
    return previous


def default_retry_policy() -> RetryPolicy:
    """The policy clients of this process use unless given another (see ``set_default_retry_policy``)."""
    return _process_default


def _server_message(response: requests.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message") or response.reason)
    except (ValueError, AttributeError):
        return (response.text or response.reason or "")[:500]


class RestClient:
    """Earth Engine REST calls for one ``ConnectionConfig``; cheap to create, state is per process."""

    def __init__(
        self, config: ConnectionConfig, retry: RetryPolicy | None = None, cache: RequestCache | None = None
    ) -> None:
        self.config = config
        # The default policy (also as carried by pickled sources) defers to the process's default.
        self.retry = retry if retry is not None and retry != DEFAULT_RETRY else _process_default
        self.cache = cache  # pixel responses (post_bytes with a version) go through it

    def get_json(self, path: str, params: dict[str, Any] | None = None, *, what: str = "") -> Any:
        return self._call("GET", path, params=params, body=None, decode=_decode_json, what=what or path)

    def post_json(self, path: str, body: dict[str, Any], *, what: str = "") -> Any:
        return self._call("POST", path, params=None, body=body, decode=_decode_json, what=what or path)

    def post_bytes(
        self,
        path: str,
        body: dict[str, Any],
        decode: Callable[[Body], T],
        *,
        what: str = "",
        version: str | None = None,
    ) -> T:
        """POST and decode the body; a body that fails ``decode`` is retried like a 5xx.

        With a cache and the ``version`` of the asset(s) the response depends on (their
        ``updateTime``), a stored body answers instead of the server, and a body fetched
        and decoded is stored. Errors and bodies that fail ``decode`` are never stored.
        """
        cache = self.cache
        if cache is None or version is None:
            return self._call("POST", path, params=None, body=body, decode=decode, what=what or path)
        key = cache.key(self.config.endpoint, path, body, version)
        stored = cache.get(key)
        if stored is not None:
            try:
                result = decode(stored)
            except CorruptResponseError:
                cache.discard(key)  # whole on disk but not what was asked (e.g. another decoder): refetch
            else:
                COUNTERS.add(cache_hits=1)
                return result

        def decode_and_store(content: Body) -> T:
            result = decode(content)  # raises on a corrupt body, which is then retried, not stored
            cache.put(key, content)
            return result

        return self._call("POST", path, params=None, body=body, decode=decode_and_store, what=what or path)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None,
        decode: Callable[[Body], T],
        what: str,
    ) -> T:
        state = endpoint_state(self.config)
        url = self.config.url(path)
        data = json.dumps(body).encode() if body is not None else None
        last_status: int | None = None
        last_problem = ""
        refreshed = False
        attempt = 0
        connect_failures = 0
        while attempt < self.retry.max_attempts:
            headers = {"Content-Type": "application/json"} if data is not None else {}
            authorization = state.authorization(force_refresh=refreshed and attempt > 0 and last_status == 401)
            if authorization:
                headers["Authorization"] = authorization
            if self.config.project:
                headers["X-Goog-User-Project"] = self.config.project
            retry_after = None
            try:
                with request_slot(state):
                    response = state.session.request(
                        method,
                        url,
                        params=params,
                        data=data,
                        headers=headers,
                        timeout=self.retry.timeout,
                        stream=True,
                    )
                    content = _read_body(response)  # read the body while holding the slot
                COUNTERS.add(requests=1, nbytes=len(content))
            except (requests.exceptions.ChunkedEncodingError, _BodyCutShort) as error:
                # The body stopped short of its Content-Length (a dropped or truncated response).
                last_status, last_problem = None, f"response cut short ({_short(error)})"
            except requests.exceptions.ContentDecodingError as error:
                last_status, last_problem = None, f"response does not decompress ({_short(error)})"
            except requests.exceptions.ConnectionError as error:
                if _is_connect_failure(error):
                    connect_failures += 1
                    if connect_failures >= self.retry.connect_attempts:
                        raise EndpointUnreachableError(
                            f"Cannot connect to the Earth Engine endpoint {self.config.endpoint} "
                            f"({type(error).__name__}); is the server running and the URL right?"
                        ) from None
                last_status, last_problem = None, f"connection error ({type(error).__name__})"
            except requests.exceptions.Timeout:
                last_status, last_problem = None, f"timed out after {self.retry.timeout} s"
            else:
                status = response.status_code
                if status < 300:
                    try:
                        _check_length(response, content)
                        return decode(content)
                    except CorruptResponseError as error:
                        last_status, last_problem = status, f"corrupt response: {error}"
                elif status == 401 and not refreshed and self.config.credentials_source != "none":
                    refreshed = True  # refresh the token once, then fail
                    last_status = status
                    attempt += 1
                    continue
                elif status in RETRYABLE_STATUS:
                    last_status, last_problem = status, _server_message(response)
                    retry_after = response.headers.get("Retry-After")
                else:
                    message = _server_message(response)
                    error_class = AssetNotFoundError if status == 404 else EarthEngineRequestError
                    raise error_class(
                        f"Earth Engine refused {what}: HTTP {status}: {message}",
                        status=status,
                        server_message=message,
                        request=what,
                    )
            attempt += 1
            if attempt < self.retry.max_attempts:
                COUNTERS.add(retries=1)
                time.sleep(self.retry.delay(attempt - 1, retry_after))
        raise RetriesExhaustedError(
            f"Gave up on {what} after {attempt} attempts; last failure: "
            f"{'HTTP ' + str(last_status) + ': ' if last_status else ''}{last_problem}",
            attempts=attempt,
            last_status=last_status,
            request=what,
        )


class _BodyCutShort(Exception):
    """The connection ended before the declared Content-Length arrived."""


def _read_body(response: requests.Response) -> Body:
    """The whole body, read straight into one writable buffer when its length is declared.

    One copy from the socket (``requests``' ``.content`` joins 10 kB chunks: two), and
    the buffer is writable, so decoded pixel arrays can be views into it.
    """
    import urllib3.exceptions

    declared = response.headers.get("Content-Length", "")
    encoding = response.headers.get("Content-Encoding", "identity").lower()
    if response.status_code >= 300 or not declared.isdigit() or encoding != "identity":
        return response.content
    size = int(declared)
    buffer = bytearray(size)
    view = memoryview(buffer)
    filled = 0
    try:
        while filled < size:
            count = response.raw.readinto(view[filled:])
            if not count:
                break
            filled += count
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise _BodyCutShort(f"after {filled} of {size} bytes: {_short(error)}") from None
    finally:
        view.release()
        response.close()
    if filled != size:
        raise _BodyCutShort(f"{filled} of {size} bytes arrived")
    return buffer


def _short(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error)[:200]}"


def _check_length(response: requests.Response, content: Body) -> None:
    """A body whose size differs from its declared ``Content-Length`` is corrupt (when not re-encoded)."""
    declared = response.headers.get("Content-Length")
    if declared is None or response.headers.get("Content-Encoding", "identity").lower() != "identity":
        return
    try:
        expected = int(declared)
    except ValueError:
        raise CorruptResponseError(f"invalid Content-Length {declared!r}") from None
    if len(content) != expected:
        raise CorruptResponseError(f"body of {len(content)} bytes, Content-Length says {expected}")


def _is_connect_failure(error: requests.exceptions.ConnectionError) -> bool:
    """Refused or unresolvable (nothing listening), as opposed to a drop mid-response."""
    import urllib3.exceptions

    reason = error.args[0] if error.args else None
    inner = getattr(reason, "reason", reason)
    return isinstance(inner, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.NameResolutionError))


def _decode_json(content: Body) -> Any:
    try:
        return json.loads(content)
    except ValueError as error:
        raise CorruptResponseError(f"invalid JSON ({error})") from None
