"""Transport: HTTP, auth, retry, concurrency cap and decoding. The only layer that talks HTTP."""

from eexarray.transport.config import ConnectionConfig, InvalidEndpointError
from eexarray.transport.errors import (
    AssetNotFoundError,
    CorruptResponseError,
    CredentialsError,
    EarthEngineError,
    EarthEngineRequestError,
    EndpointUnreachableError,
    RetriesExhaustedError,
)
from eexarray.transport.http import RestClient, RetryPolicy, default_retry_policy, set_default_retry_policy
from eexarray.transport.session import transport_stats

__all__ = [
    "AssetNotFoundError",
    "ConnectionConfig",
    "CorruptResponseError",
    "CredentialsError",
    "EarthEngineError",
    "EarthEngineRequestError",
    "EndpointUnreachableError",
    "InvalidEndpointError",
    "RestClient",
    "RetriesExhaustedError",
    "RetryPolicy",
    "default_retry_policy",
    "set_default_retry_policy",
    "transport_stats",
]
