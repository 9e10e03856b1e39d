"""Errors raised by the transport layer. Messages never contain tokens or credentials."""

from __future__ import annotations


class EarthEngineError(RuntimeError):
    """Base class of errors from an Earth Engine endpoint."""


class EarthEngineRequestError(EarthEngineError):
    """The endpoint refused a request (4xx other than 429): retrying cannot help.

    ``status`` is the HTTP status, ``server_message`` the endpoint's own words.
    """

    def __init__(self, message: str, *, status: int, server_message: str, request: str) -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message
        self.request = request


class AssetNotFoundError(EarthEngineRequestError, KeyError):
    """404: the asset does not exist (or is not visible to these credentials)."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class AssetNotAccessibleError(EarthEngineRequestError):
    """403 on an asset: Earth Engine does not say whether it is missing or forbidden (not retried).

    ``asset`` is the asset's full name when known, ``project`` the quota project sent (or None).
    """

    def __init__(
        self, message: str, *, status: int, server_message: str, request: str, asset: str | None, project: str | None
    ) -> None:
        super().__init__(message, status=status, server_message=server_message, request=request)
        self.asset = asset
        self.project = project


class RetriesExhaustedError(EarthEngineError):
    """A retryable failure (429, 5xx, dropped or corrupt response) persisted through every attempt."""

    def __init__(self, message: str, *, attempts: int, last_status: int | None, request: str) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_status = last_status
        self.request = request


class RequestTimeoutError(RetriesExhaustedError, TimeoutError):
    """Attempts ran out of time (``request_timeout`` each; a silent or dripping server)."""


class RequestCancelledError(EarthEngineError):
    """The request was cancelled (its read cancelled, or the process is exiting)."""


class EndpointUnreachableError(EarthEngineError, ConnectionError):
    """Nothing answers at the endpoint (connection refused, unknown host)."""


class CorruptResponseError(EarthEngineError):
    """A response body that does not decode to what was requested (retryable)."""


class CredentialsError(EarthEngineError):
    """Credentials could not be loaded or refreshed (nothing was sent with them)."""
