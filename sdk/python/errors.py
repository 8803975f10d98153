"""Typed errors: one exception class per normalised error code the router answers with.

The router (and its admin listener) answer every failure in the OpenAI shape
``{"error": {"message", "type", "param", "code"}}`` with ``code`` from its fixed vocabulary
(docs/router.md). `error_from` turns such an answer into the matching class, so callers catch
``RateLimitError`` or ``GuardrailBlockedError`` rather than comparing strings. Errors that happen on
this side of the wire (a stream that could not be resumed) have their own classes.
"""

from __future__ import annotations

from typing import Any


class InferFluxError(Exception):
    """Any failure the SDK reports; ``code`` is the router's error code (or the SDK's own)."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "unknown",
        status: int | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.param = param
        self.retry_after = retry_after
        self.request_id = request_id


class APIError(InferFluxError):
    """The router answered with an error (an HTTP status, or an ``error`` event mid-stream)."""


class BadRequestError(APIError):
    """The request itself is wrong (``bad_request``, and the generic admin ``invalid_request_error``)."""


class ContentFilteredError(BadRequestError):
    """``content_filtered``: the upstream filtered the content."""


class ContextLengthError(BadRequestError):
    """``context_length``: the prompt and answer do not fit the model's context."""


class GuardrailBlockedError(BadRequestError):
    """``guardrail_blocked``: a tenant guardrail refused the input or the output."""


class InputTooLargeError(BadRequestError):
    """``input_too_large``: more text than the tenant's guardrails allow."""


class AuthenticationError(APIError):
    """``auth`` or ``invalid_token``: a missing, malformed, expired or revoked credential."""


class InvalidResumeTokenError(AuthenticationError):
    """A resume token the router did not sign (forged, or signed with a retired key): 401."""


class PermissionDeniedError(APIError):
    """``insufficient_scope``: a valid credential that may not use this route or model."""


class NotFoundError(APIError):
    """``not_found``: no such model, prompt, tenant or key."""


class StreamGoneError(NotFoundError):
    """A stream that can no longer be resumed (410): its token expired or it left the replay buffer."""


class ConflictError(APIError):
    """``conflict``: e.g. a request id already in flight, or a tenant declared by a resource."""


class RateLimitError(APIError):
    """``rate_limited`` or ``overloaded``: come back after ``retry_after`` seconds."""


class QuotaExceededError(RateLimitError):
    """``insufficient_quota``: a budget would be exceeded."""


class UnavailableError(APIError):
    """``unavailable``: no replica can serve the model now (loading, restarting)."""


class GatewayTimeoutError(APIError):
    """``timeout``: the upstream took longer than the router allows."""


class UpstreamError(APIError):
    """``upstream_error``: the runtime or provider failed."""


class APIConnectionError(InferFluxError):
    """The router could not be reached, or the connection broke before an answer."""


class StreamInterruptedError(InferFluxError):
    """The connection dropped and the stream could not be resumed within the reconnect budget."""


class ProtocolError(InferFluxError):
    """The router sent something the contract does not allow (a gap in offsets, a malformed event)."""


_BY_CODE: dict[str, type[APIError]] = {
    "bad_request": BadRequestError,
    "invalid_request_error": BadRequestError,
    "content_filtered": ContentFilteredError,
    "context_length": ContextLengthError,
    "guardrail_blocked": GuardrailBlockedError,
    "input_too_large": InputTooLargeError,
    "auth": AuthenticationError,
    "invalid_token": AuthenticationError,
    "insufficient_scope": PermissionDeniedError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "rate_limited": RateLimitError,
    "overloaded": RateLimitError,
    "insufficient_quota": QuotaExceededError,
    "unavailable": UnavailableError,
    "timeout": GatewayTimeoutError,
    "upstream_error": UpstreamError,
}
_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: StreamGoneError,
    413: InputTooLargeError,
    429: RateLimitError,
    502: UpstreamError,
    503: UnavailableError,
    504: GatewayTimeoutError,
}


def retry_after_seconds(value: str | None) -> float | None:
    """A ``retry-after`` header in seconds (the router sends whole seconds), None when absent or a date."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_from(
    status: int | None,
    document: Any,
    *,
    retry_after: float | None = None,
    request_id: str | None = None,
    resuming: bool = False,
) -> APIError:
    """The typed error for an OpenAI-shaped error ``document`` answered with ``status``.

    ``resuming`` marks an answer to a resume request, where 401 means a forged token and 410 a
    stream that is gone, whatever the code says.
    """
    detail = document.get("error") if isinstance(document, dict) else None
    if not isinstance(detail, dict):
        detail = {}
    code = str(detail.get("code") or "unknown")
    message = str(detail.get("message") or f"HTTP {status}")
    kind: type[APIError]
    if resuming and status == 401:
        kind = InvalidResumeTokenError
    elif status == 410:
        kind = StreamGoneError
    else:
        kind = _BY_CODE.get(code) or _BY_STATUS.get(status or 0, APIError)
    param = detail.get("param")
    return kind(
        message,
        code=code,
        status=status,
        param=param if isinstance(param, str) else None,
        retry_after=retry_after,
        request_id=request_id,
    )
