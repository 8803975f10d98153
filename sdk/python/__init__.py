"""InferFlux's Python SDK: the resumable ``/api/v1/inference`` contract and the admin API.

`InferFlux` (blocking) and `AsyncInferFlux` (asyncio) stream with automatic reconnect and resume,
`AdminClient` and `AsyncAdminClient` manage tenants and keys, and every failure is a typed error
from `inferflux.client.errors`. For the OpenAI-compatible routes use the official ``openai`` SDK
with ``base_url`` (docs/sdk-python.md).
"""

from inferflux.client.admin import AdminClient, AsyncAdminClient
from inferflux.client.aio import AsyncInferenceStream, AsyncInferFlux
from inferflux.client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContentFilteredError,
    ContextLengthError,
    GatewayTimeoutError,
    GuardrailBlockedError,
    InferFluxError,
    InputTooLargeError,
    InvalidResumeTokenError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    QuotaExceededError,
    RateLimitError,
    StreamGoneError,
    StreamInterruptedError,
    UnavailableError,
    UpstreamError,
)
from inferflux.client.events import Chunk, Done, Inference, Usage
from inferflux.client.stream import Reconnect
from inferflux.client.sync import InferenceStream, InferFlux

__all__ = [
    "APIConnectionError",
    "APIError",
    "AdminClient",
    "AsyncAdminClient",
    "AsyncInferFlux",
    "AsyncInferenceStream",
    "AuthenticationError",
    "BadRequestError",
    "Chunk",
    "ConflictError",
    "ContentFilteredError",
    "ContextLengthError",
    "Done",
    "GatewayTimeoutError",
    "GuardrailBlockedError",
    "InferFlux",
    "InferFluxError",
    "Inference",
    "InferenceStream",
    "InputTooLargeError",
    "InvalidResumeTokenError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "QuotaExceededError",
    "RateLimitError",
    "Reconnect",
    "StreamGoneError",
    "StreamInterruptedError",
    "UnavailableError",
    "UpstreamError",
    "Usage",
]
