"""Errors the server answers with, in the shape of Google APIs.

Every failure the request handlers can foresee is an ``ApiError``; the HTTP layer
turns it into ``{"error": {"code", "message", "status"}}`` with the same HTTP status.
Anything else is a server bug and is the only way to produce a 500.
"""

from __future__ import annotations

from typing import Any

# google.rpc.Code names for the HTTP statuses this server uses.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class ApiError(Exception):
    """An error answer: HTTP ``code``, Google status name and human message."""

    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_NAMES.get(code, "UNKNOWN")

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def invalid_argument(message: str) -> ApiError:
    return ApiError(400, message, "INVALID_ARGUMENT")


def failed_precondition(message: str) -> ApiError:
    return ApiError(400, message, "FAILED_PRECONDITION")


def not_found(message: str) -> ApiError:
    return ApiError(404, message, "NOT_FOUND")


def asset_not_found(name: str) -> ApiError:
    return not_found(f'Asset "{name}" not found.')


UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential."
)
