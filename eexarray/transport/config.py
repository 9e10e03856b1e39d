"""Where and how to connect: endpoint, project, credentials, concurrency cap.

A ``ConnectionConfig`` is small and picklable. Credentials objects never travel:
pickling keeps only *how* to obtain credentials, so a dask worker rebuilds its own
(from Application Default Credentials or ``EEXARRAY_TOKEN``), and no token ever
lands in a task graph.
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


def is_google_endpoint(endpoint: str) -> bool:
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    return host.endswith(".googleapis.com")


@dataclass(frozen=True)
class ConnectionConfig:
    """Endpoint, quota project and concurrency cap; credentials kept out of pickles."""

    endpoint: str
    project: str | None = None
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    # "adc": Application Default Credentials; "none": no Authorization header;
    # "object": the in-process ``credentials`` object (workers fall back to "adc").
    credentials_source: str = "none"
    credentials: Any = field(default=None, compare=False, repr=False)

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

    @classmethod
    def create(
        cls,
        endpoint: str | None = None,
        *,
        high_volume: bool = False,
        project: str | None = None,
        credentials: Any = None,
        max_concurrency: int | None = None,
    ) -> ConnectionConfig:
        """Resolve defaults: endpoint from ``EEXARRAY_ENDPOINT`` else Google's; ADC for Google endpoints."""
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
            source = "adc"
        else:
            source = "none"  # a local server needs no credentials (EEXARRAY_TOKEN still applies)
        return cls(
            endpoint=endpoint,
            project=project if project is not None else os.environ.get("EEXARRAY_PROJECT"),
            max_concurrency=max_concurrency if max_concurrency is not None else DEFAULT_MAX_CONCURRENCY,
            credentials_source=source,
            credentials=credentials,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Never pickle a credentials object (it holds tokens): a worker uses ADC for Google's
        # endpoints, and no credentials (or EEXARRAY_TOKEN) for a local server.
        source = self.credentials_source
        if source == "object":
            source = "adc" if is_google_endpoint(self.endpoint) else "none"
        return (ConnectionConfig, (self.endpoint, self.project, self.max_concurrency, source, None))

    def without_credentials(self) -> ConnectionConfig:
        return replace(self, credentials=None)

    def url(self, path: str) -> str:
        return f"{self.endpoint}/{API_VERSION}/{path.lstrip('/')}"
