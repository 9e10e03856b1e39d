"""Transport: HTTP, auth, retry, concurrency cap and decoding. The only layer that talks HTTP."""

from eexarray.transport.config import ConnectionConfig, InvalidEndpointError
from eexarray.transport.errors import (
    AssetNotFoundError,
    CorruptResponseError,
    EarthEngineError,
    EarthEngineRequestError,
    EndpointUnreachableError,
    RetriesExhaustedError,
)
from eexarray.transport.http import RestClient, RetryPolicy
from eexarray.transport.session import transport_stats

__all__ = [
    "AssetNotFoundError",
    "ConnectionConfig",
    "CorruptResponseError",
    "EarthEngineError",
    "EarthEngineRequestError",
    "EndpointUnreachableError",
    "InvalidEndpointError",
    "RestClient",
    "RetriesExhaustedError",
    "RetryPolicy",
    "transport_stats",
]
