"""Transport: HTTP, auth, retry, concurrency cap and decoding. The only layer that talks HTTP."""

from eexarray.transport.config import ConnectionConfig, InvalidEndpointError
from eexarray.transport.deadline import abort_in_flight
from eexarray.transport.errors import (
    AssetNotAccessibleError,
    AssetNotFoundError,
    CorruptResponseError,
    CredentialsError,
    EarthEngineError,
    EarthEngineRequestError,
    EndpointUnreachableError,
    RequestCancelledError,
    RequestTimeoutError,
    RetriesExhaustedError,
)
from eexarray.transport.http import RestClient, RetryPolicy, default_retry_policy, set_default_retry_policy
from eexarray.transport.session import transport_stats

__all__ = [
    "AssetNotAccessibleError",
    "AssetNotFoundError",
    "ConnectionConfig",
    "CorruptResponseError",
    "CredentialsError",
    "EarthEngineError",
    "EarthEngineRequestError",
    "EndpointUnreachableError",
    "InvalidEndpointError",
    "RequestCancelledError",
    "RequestTimeoutError",
    "RestClient",
    "RetriesExhaustedError",
    "RetryPolicy",
    "abort_in_flight",
    "default_retry_policy",
    "set_default_retry_policy",
    "transport_stats",
]
