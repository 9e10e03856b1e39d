"""Where and how to connect: endpoint, project, credentials, concurrency cap, deadline.

A ``ConnectionConfig`` is small and picklable. Credentials objects never travel:
pickling keeps only *how* to obtain credentials, so a dask worker finds its own
(Earth Engine's stored credentials or Application Default Credentials, or
``EEXARRAY_TOKEN``), and no token ever lands in a task graph.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_ENDPOINT = "https://earthengine.googleapis.com"
HIGH_VOLUME_ENDPOINT = "https://earthengine-highvolume.googleapis.com"
# Earth Engine's default quota allows 40 concurrent interactive requests per project.
DEFAULT_MAX_CONCURRENCY = 40
API_VERSION = "v1"
SCOPES = ("https://www.googleapis.com/auth/earthengine",)
# The deadline of one attempt of one request: connecting plus the whole response. Sized
# for the largest response Earth Engine sends, 48 MiB (its per-request limit): 300 s is
# 48 MiB at ~1.3 Mbit/s (168 KiB/s), a slow link; a server that is slower than that, or
# silent, or dripping bytes, fails the attempt (then RetryPolicy bounds the retries: http.py).
DEFAULT_REQUEST_TIMEOUT = 300.0
CREDENTIALS_SOURCES = ("object", "default", "none")


class InvalidEndpointError(ValueError):
    """An endpoint that is not an http(s) URL."""


def normalize_endpoint(value: str) -> str:
    """``scheme://host[:port][/path]`` without a trailing slash; refuses anything else."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidEndpointError(f"endpoint must be an http(s) URL such as 'http://127.0.0.1:8080', got {value!r}")
    parsed = urllib.parse.urlsplit(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidEndpointError(f"endpoint must be an http(s) URL such as 'http://127.0.0.1:8080', got {value!r}")
    try:
        parsed.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise InvalidEndpointError(f"endpoint {value!r} has an invalid port") from None
    if parsed.query or parsed.fragment:
        raise InvalidEndpointError(f"endpoint {value!r} must not carry a query or fragment")
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))


def check_request_timeout(value: object) -> float:
    """A positive, finite number of seconds; refuses anything else with the value and why."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 < float(value) < float("inf"):  # type: ignore[arg-type]
        raise ValueError(
            f"request_timeout must be a positive, finite number of seconds (the deadline of one "
            f"attempt of one request), got {value!r}"
        )
    return float(value)  # type: ignore[arg-type]


def is_google_endpoint(endpoint: str) -> bool:
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    return host.endswith(".googleapis.com")


@dataclass(frozen=True)
class ConnectionConfig:
    """Endpoint, quota project and concurrency cap; credentials kept out of pickles."""

    endpoint: str
    project: str | None = None
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    # "default": Earth Engine's stored credentials, else Application Default Credentials
    # (credentials.py); "none": no credentials (``EEXARRAY_TOKEN`` if set); "object": the
    # in-process ``credentials`` object (workers fall back to "default").
    credentials_source: str = "none"
    credentials: Any = field(default=None, compare=False, repr=False)
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", normalize_endpoint(self.endpoint))
        if (
            isinstance(self.max_concurrency, bool)
            or not isinstance(self.max_concurrency, int)
            or self.max_concurrency < 1
        ):
            raise ValueError(f"max_concurrency must be a positive integer, got {self.max_concurrency!r}")
        if self.project is not None and (not isinstance(self.project, str) or not self.project.strip()):
            raise ValueError(f"project must be a non-empty string (a Cloud project id), got {self.project!r}")
        if self.credentials_source not in CREDENTIALS_SOURCES:
            raise ValueError(
                f"credentials_source must be one of {CREDENTIALS_SOURCES}, got {self.credentials_source!r}"
            )
        object.__setattr__(self, "request_timeout", check_request_timeout(self.request_timeout))

    @classmethod
    def create(
        cls,
        endpoint: str | None = None,
        *,
        high_volume: bool = False,
        project: str | None = None,
        credentials: Any = None,
        max_concurrency: int | None = None,
        request_timeout: float | None = None,
    ) -> ConnectionConfig:
        """Resolve defaults: endpoint from ``EEXARRAY_ENDPOINT`` else Google's; default credentials
        (credentials.py) for Google endpoints; the project from ``EEXARRAY_PROJECT``, else the
        quota project of a ``credentials`` object (default credentials are only searched at the
        first request: see ``credentials.quota_project``)."""
        if endpoint is None:
            endpoint = os.environ.get("EEXARRAY_ENDPOINT") or (
                HIGH_VOLUME_ENDPOINT if high_volume else DEFAULT_ENDPOINT
            )
        elif high_volume and is_google_endpoint(endpoint):
            endpoint = HIGH_VOLUME_ENDPOINT
        endpoint = normalize_endpoint(endpoint)
        if credentials is not None:
            if not hasattr(credentials, "before_request"):
                raise TypeError(
                    f"credentials must be google-auth credentials (google.auth.credentials.Credentials), "
                    f"got {type(credentials).__name__}"
                )
            source = "object"
        elif is_google_endpoint(endpoint):
            source = "default"
        else:
            source = "none"  # a local server needs no credentials (EEXARRAY_TOKEN still applies)
        if project is None:
            project = os.environ.get("EEXARRAY_PROJECT") or None
        if project is None and credentials is not None:
            # Kept in the config so that workers, which never get the object, use it too.
            quota = getattr(credentials, "quota_project_id", None)
            project = quota if isinstance(quota, str) and quota else None
        return cls(
            endpoint=endpoint,
            project=project,
            max_concurrency=max_concurrency if max_concurrency is not None else DEFAULT_MAX_CONCURRENCY,
            credentials_source=source,
            credentials=credentials,
            request_timeout=DEFAULT_REQUEST_TIMEOUT if request_timeout is None else request_timeout,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Never pickle a credentials object (it holds tokens): a worker uses the default
        # credentials for Google's endpoints, and none (or EEXARRAY_TOKEN) for a local server.
        source = self.credentials_source
        if source == "object":
            source = "default" if is_google_endpoint(self.endpoint) else "none"
        return (
            ConnectionConfig,
            (self.endpoint, self.project, self.max_concurrency, source, None, self.request_timeout),
        )

    def without_credentials(self) -> ConnectionConfig:
        return replace(self, credentials=None)

    def url(self, path: str) -> str:
        return f"{self.endpoint}/{API_VERSION}/{path.lstrip('/')}"
