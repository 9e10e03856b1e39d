"""The only module that talks HTTP: JSON calls and pixel calls with retry and an in-flight cap."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from requests.structures import CaseInsensitiveDict

from eexarray.transport import deadline
from eexarray.transport.cache import RequestCache
from eexarray.transport.cluster import request_slot
from eexarray.transport.config import ConnectionConfig
from eexarray.transport.credentials import apply_credentials, quota_project
from eexarray.transport.errors import (
    AssetNotAccessibleError,
    AssetNotFoundError,
    CorruptResponseError,
    EarthEngineRequestError,
    EndpointUnreachableError,
    RequestCancelledError,
    RequestTimeoutError,
    RetriesExhaustedError,
)
from eexarray.transport.session import COUNTERS, endpoint_state

T = TypeVar("T")
Body = bytes | bytearray  # response bodies: a bytearray when read straight from the socket
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Bodies of JSON calls (and error bodies of any call) are read up to this size, decompressed.
MAX_JSON_BODY_BYTES = 256 * 2**20
# Seconds the default call bound allows for local work between attempts (closing a socket,
# threads scheduled on a busy machine), on top of the attempts and the waits.
BETWEEN_ATTEMPTS = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``Retry-After`` wins when the server sends it.

    Bounds on one call (all its attempts): ``max_attempts`` attempts; ``connect_attempts``
    of them may fail to connect and ``timeout_attempts`` may run out of time (each attempt
    has the connection's ``request_timeout``: connect + whole response); and the call ends
    ``total_timeout`` seconds after it began, waits included (None: room for
    ``timeout_attempts`` whole attempts, the ``max_delay`` waits between them and
    ``BETWEEN_ATTEMPTS`` of local work: ``request_timeout`` x 2 + 20 s + 1 s by default).
    ``timeout`` caps each socket operation on its own (connect; a wait for the next bytes),
    inside the attempt's deadline.
    """

    max_attempts: int = 8
    initial_delay: float = 0.25
    max_delay: float = 20.0
    connect_attempts: int = 2  # a dead endpoint fails fast
    timeout: float = 300.0
    timeout_attempts: int = 2  # a server that ran out of time twice is stuck, not unlucky
    total_timeout: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_attempts", "connect_attempts", "timeout_attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RetryPolicy.{name} must be a positive integer, got {value!r}")
        for name in ("initial_delay", "max_delay", "timeout", "total_timeout"):
            value = getattr(self, name)
            if value is None and name == "total_timeout":
                continue
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not 0 <= value < float("inf"):
                raise ValueError(f"RetryPolicy.{name} must be a finite number of seconds >= 0, got {value!r}")
        for name in ("timeout", "total_timeout"):
            if getattr(self, name) == 0:
                raise ValueError(f"RetryPolicy.{name} must be positive, got 0")

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(self.max_delay, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return random.uniform(0, min(self.max_delay, self.initial_delay * 2**attempt))

    def call_deadline(self, request_timeout: float) -> float:
        """Seconds one call may take, all attempts and waits included."""
        if self.total_timeout is not None:
            return self.total_timeout
        # Room for every timed-out attempt the count allows, each whole: a bound that left only
        # the waits made a busy machine cut the last attempt a few milliseconds short.
        waits = self.max_delay * (self.timeout_attempts - 1)
        return request_timeout * self.timeout_attempts + waits + BETWEEN_ATTEMPTS


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
        max_bytes: int,
        version: str | None = None,
    ) -> T:
        """POST and decode the body; a body that fails ``decode``, or decompresses beyond
        ``max_bytes``, is retried like a 5xx.

        With a cache and the ``version`` of the asset(s) the response depends on (their
        ``updateTime``), a stored body answers instead of the server, and a body fetched
        and decoded is stored. Errors and bodies that fail ``decode`` are never stored.
        """
        cache = self.cache
        if cache is None or version is None:
            return self._call(
                "POST", path, params=None, body=body, decode=decode, what=what or path, max_bytes=max_bytes
            )
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

        return self._call(
            "POST", path, params=None, body=body, decode=decode_and_store, what=what or path, max_bytes=max_bytes
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None,
        decode: Callable[[Body], T],
        what: str,
        max_bytes: int | None = None,
    ) -> T:
        state = endpoint_state(self.config)
        url = self.config.url(path)
        data = json.dumps(body).encode() if body is not None else None
        request_timeout = self.config.request_timeout
        ends = time.monotonic() + self.retry.call_deadline(request_timeout)
        last_status: int | None = None
        last_problem = ""
        refreshed = False
        attempt = 0
        connect_failures = 0
        timeouts = 0
        out_of_time = False  # the call's overall bound ended it
        while attempt < self.retry.max_attempts:
            if deadline.cancelled():
                raise RequestCancelledError(f"{what} was cancelled")
            headers = CaseInsensitiveDict({"Content-Type": "application/json"} if data is not None else {})
            apply_credentials(self.config, headers, force_refresh=refreshed and attempt > 0 and last_status == 401)
            retry_after = None
            response = None
            socket_timed_out = False
            with request_slot(state):
                # The deadline starts once a slot is held: waiting for one is not the server's time.
                seconds = min(request_timeout, ends - time.monotonic())
                if seconds <= 0:
                    break  # the call's overall bound is spent
                on_wire = deadline.start_attempt(seconds)
                # A socket operation may fail sooner (RetryPolicy.timeout); otherwise the
                # watchdog's deadline is what ends the attempt, whatever it is reading.
                socket_timeout = self.retry.timeout if self.retry.timeout < seconds else seconds + 1.0
                connect_timeout = min(self.retry.timeout, seconds)  # no socket to shut down before it
                try:
                    response = state.session.request(
                        method,
                        url,
                        params=params,
                        data=data,
                        headers=headers,
                        timeout=(connect_timeout, socket_timeout),
                        stream=True,
                    )
                    # Read the body while holding the slot; JSON bodies have a fixed cap.
                    content = _read_body(response, max_bytes or MAX_JSON_BODY_BYTES)
                except (requests.exceptions.ChunkedEncodingError, _BodyCutShort) as error:
                    # The body stopped short of its Content-Length (a dropped or truncated response).
                    failure: tuple[int | None, str] | None = (None, f"response cut short ({_short(error)})")
                except requests.exceptions.ContentDecodingError as error:
                    failure = (None, f"response does not decompress ({_short(error)})")
                except _BodyTooLarge as error:
                    failure = (None, f"response too large ({error})")
                except requests.exceptions.ConnectTimeout:
                    failure = (None, f"no connection within {connect_timeout:.3g} s")
                    socket_timed_out = True  # a black hole: counted as running out of time
                except requests.exceptions.ConnectionError as error:
                    if on_wire.outcome is None and _is_connect_failure(error):
                        connect_failures += 1
                        if connect_failures >= self.retry.connect_attempts:
                            raise EndpointUnreachableError(
                                f"Cannot connect to the Earth Engine endpoint {self.config.endpoint} "
                                f"({type(error).__name__}); is the server running and the URL right?"
                            ) from None
                    failure = (None, f"connection error ({type(error).__name__})")
                except requests.exceptions.Timeout:
                    failure = (None, f"no progress for {socket_timeout:.3g} s")
                    socket_timed_out = True
                else:
                    failure = None
                finally:
                    aborted = deadline.end_attempt(on_wire)
            if aborted is not None and response is not None:
                response.close()  # its socket is shut down: never back to the pool
            if aborted == deadline.CANCELLED:
                raise RequestCancelledError(f"{what} was cancelled while on the wire")
            expired = aborted == deadline.EXPIRED
            if expired and seconds < request_timeout:
                # Cut short by the call's overall bound, not by request_timeout: give up.
                attempt += 1
                out_of_time = True
                if last_status is None and not last_problem:
                    last_problem = f"no complete response within the {seconds:.3g} s left"
                break
            if expired or socket_timed_out:
                timeouts += 1
                if expired:  # whatever was read is discarded: a body cut by the deadline may look whole
                    failure = (None, f"no complete response within {seconds:.3g} s (request_timeout)")
                assert failure is not None
                if timeouts >= self.retry.timeout_attempts:
                    last_status, last_problem = failure
                    attempt += 1
                    break
            if failure is None:
                assert response is not None  # no failure: the request returned
                COUNTERS.add(requests=1, nbytes=len(content))
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
                    raise self._refused(status, _server_message(response), path, what)
            else:
                last_status, last_problem = failure
            attempt += 1
            if attempt < self.retry.max_attempts:
                pause = self.retry.delay(attempt - 1, retry_after)
                if time.monotonic() + pause >= ends:
                    break  # no time left for another attempt after the wait
                COUNTERS.add(retries=1)
                if not deadline.wait_unless_cancelled(pause):
                    raise RequestCancelledError(f"{what} was cancelled")
        timed_out = (timeouts or out_of_time) and last_status is None
        error_class = RequestTimeoutError if timed_out else RetriesExhaustedError
        limit = ""
        if attempt < self.retry.max_attempts:
            limit = (
                f" (the limit of {timeouts} timed-out attempts)"
                if timeouts >= self.retry.timeout_attempts
                else f" (the call's limit of {self.retry.call_deadline(request_timeout):g} s)"
            )
        raise error_class(
            f"Gave up on {what} after {attempt} attempts{limit}; last failure: "
            f"{'HTTP ' + str(last_status) + ': ' if last_status else ''}{last_problem}",
            attempts=attempt,
            last_status=last_status,
            request=what,
        )

    def _refused(self, status: int, message: str, path: str, what: str) -> EarthEngineRequestError:
        """The error of a 4xx that retrying cannot fix; a 403 names the asset and the project."""
        text = f"Earth Engine refused {what}: HTTP {status}: {message}"
        if status == 404:
            return AssetNotFoundError(text, status=status, server_message=message, request=what)
        if status != 403:
            return EarthEngineRequestError(text, status=status, server_message=message, request=what)
        project = quota_project(self.config)
        project_text = f"quota project {project!r}" if project else "no quota project (pass project=)"
        asset = _asset_in(path) or _asset_in(message)
        if asset is None and "may not exist" not in message:
            return EarthEngineRequestError(
                f"{text} (sent with {project_text})", status=status, server_message=message, request=what
            )
        subject = f"the asset {asset!r}" if asset else "an asset of the request"
        return AssetNotAccessibleError(
            f"{text}. Either {subject} does not exist, or it exists and these credentials "
            f"(with {project_text}) may not read it: check the id, then that the asset is shared "
            "with the account and that the project is registered for Earth Engine.",
            status=status,
            server_message=message,
            request=what,
            asset=asset,
            project=project,
        )


_ASSET_NAME = re.compile(r"projects/[^\s'\"/:]+/assets/[^\s'\":?]+")


def _asset_in(text: str) -> str | None:
    """The first full asset name in a path or message (``projects/<p>/assets/<id>``)."""
    match = _ASSET_NAME.search(text)
    return match.group(0).rstrip(".,;)") if match else None


class _BodyCutShort(Exception):
    """The connection ended before the declared Content-Length arrived."""


class _BodyTooLarge(Exception):
    """The body (declared, or as it decompresses) exceeds what the request can take."""


# Compressed bytes read per step of a re-encoded body: urllib3 bounds what one step inflates.
_DECOMPRESS_STEP = 2**16


def _read_body(response: requests.Response, limit: int) -> Body:
    """The whole body, read straight into one writable buffer when its length is declared.

    One copy from the socket (``requests``' ``.content`` joins 10 kB chunks: two), and
    the buffer is writable, so decoded pixel arrays can be views into it. Never more
    than ``limit`` bytes: a declared length beyond it is refused before reading, and a
    compressed (or undeclared) body is read step by step and given up past it.
    """
    import urllib3.exceptions

    declared = response.headers.get("Content-Length", "")
    encoding = response.headers.get("Content-Encoding", "identity").lower()
    if response.status_code >= 300 or not declared.isdigit() or encoding != "identity":
        return _read_capped(response, limit)
    size = int(declared)
    if size > limit:
        response.close()
        raise _BodyTooLarge(f"Content-Length {size} bytes, at most {limit} expected")
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


def _read_capped(response: requests.Response, limit: int) -> bytes:
    """A body of unknown size or re-encoded (gzip...), decompressed as it arrives, up to ``limit`` bytes."""
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in response.iter_content(_DECOMPRESS_STEP):
            total += len(chunk)
            if total > limit:
                raise _BodyTooLarge(f"more than {limit} bytes once decompressed")
            chunks.append(chunk)
    finally:
        response.close()
    content = b"".join(chunks)
    # Error messages are read from the response itself (``.json()``): give it the body read.
    response._content = content
    return content


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
