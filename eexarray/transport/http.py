"""The only module that talks HTTP: JSON calls and pixel calls with retry and an in-flight cap."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

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
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``Retry-After`` wins when the server sends it."""

    max_attempts: int = 8
    initial_delay: float = 0.25
    max_delay: float = 20.0
    connect_attempts: int = 2  # a dead endpoint fails fast
    timeout: float = 300.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(self.max_delay, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return random.uniform(0, min(self.max_delay, self.initial_delay * 2**attempt))


DEFAULT_RETRY = RetryPolicy()


def _server_message(response: requests.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message") or response.reason)
    except (ValueError, AttributeError):
        return (response.text or response.reason or "")[:500]


class RestClient:
    """Earth Engine REST calls for one ``ConnectionConfig``; cheap to create, state is per process."""

    def __init__(self, config: ConnectionConfig, retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self.config = config
        self.retry = retry

    def get_json(self, path: str, params: dict[str, Any] | None = None, *, what: str = "") -> Any:
        return self._call("GET", path, params=params, body=None, decode=_decode_json, what=what or path)

    def post_json(self, path: str, body: dict[str, Any], *, what: str = "") -> Any:
        return self._call("POST", path, params=None, body=body, decode=_decode_json, what=what or path)

    def post_bytes(self, path: str, body: dict[str, Any], decode: Callable[[bytes], T], *, what: str = "") -> T:
        """POST and decode the body; a body that fails ``decode`` is retried like a 5xx."""
        return self._call("POST", path, params=None, body=body, decode=decode, what=what or path)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None,
        decode: Callable[[bytes], T],
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
                with state.in_flight:
                    response = state.session.request(
                        method, url, params=params, data=data, headers=headers, timeout=self.retry.timeout
                    )
                    content = response.content  # read the body while holding the slot
                COUNTERS.add(requests=1, nbytes=len(content))
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


def _is_connect_failure(error: requests.exceptions.ConnectionError) -> bool:
    """Refused or unresolvable (nothing listening), as opposed to a drop mid-response."""
    import urllib3.exceptions

    reason = error.args[0] if error.args else None
    inner = getattr(reason, "reason", reason)
    return isinstance(inner, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.NameResolutionError))


def _decode_json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError as error:
        raise CorruptResponseError(f"invalid JSON ({error})") from None
