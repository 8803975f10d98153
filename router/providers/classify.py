"""Translate whatever an upstream SDK raised into one `UpstreamError` with a normalised `ErrorCode`.

The official OpenAI and Anthropic SDKs share a shape: a status error carries ``status_code``, the
``response`` (for ``retry-after``) and a parsed ``body``; a connection error has no status; a timeout
is a connection error subclass. Classification looks at that shape, not at the concrete SDK class,
so every adapter (and the local runtimes behind the OpenAI-compatible one) speaks one vocabulary.
"""

from __future__ import annotations

import email.utils
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

from inferflux.router.errors import ErrorCode, UpstreamError, code_for_status

# Provider-specific error types and codes that say more than the bare HTTP status.
_CODE_HINTS: dict[str, ErrorCode] = {
    "context_length_exceeded": ErrorCode.CONTEXT_LENGTH,
    "string_above_max_length": ErrorCode.CONTEXT_LENGTH,
    "content_filter": ErrorCode.CONTENT_FILTERED,
    "content_policy_violation": ErrorCode.CONTENT_FILTERED,
    "overloaded_error": ErrorCode.OVERLOADED,
    "rate_limit_error": ErrorCode.RATE_LIMITED,
    "rate_limit_exceeded": ErrorCode.RATE_LIMITED,
    "authentication_error": ErrorCode.AUTH,
    "permission_error": ErrorCode.AUTH,
    "not_found_error": ErrorCode.NOT_FOUND,
    "model_not_found": ErrorCode.NOT_FOUND,
    "request_too_large": ErrorCode.CONTEXT_LENGTH,
}
# Anthropic reports an over-long prompt as a plain invalid_request_error; only the message tells.
_CONTEXT_PHRASES = ("prompt is too long", "context length", "context window", "maximum context")
# HTTP statuses that are not in `code_for_status`'s vocabulary but have a clear meaning here.
_STATUS_HINTS = {413: ErrorCode.CONTEXT_LENGTH, 529: ErrorCode.OVERLOADED, 502: ErrorCode.UNAVAILABLE}

# Providers echo (masked) keys in auth errors: "Incorrect API key provided: sk-abc***xyz".
_KEY_LIKE = re.compile(r"\b(?:sk|gsk|pk|key)[-_][-_A-Za-z0-9*.]{6,}", re.IGNORECASE)

# The SDKs are imported by the adapters that use them, not here: together they weigh ~100 MB and
# seconds of start-up, and an SDK that was never imported cannot have raised.
_SDKS = ("openai", "anthropic")


def _sdk_errors(name: str) -> tuple[type[BaseException], ...]:
    """The error class ``name`` of each provider SDK this process has imported."""
    return tuple(getattr(sys.modules[sdk], name) for sdk in _SDKS if sdk in sys.modules)


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the upstream asked us to wait: ``retry-after-ms``, else ``retry-after`` (seconds or date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_fields(body: object) -> tuple[str, str]:
    """The provider's ``(type, code)`` strings from an error body (OpenAI or Anthropic layout)."""
    if not isinstance(body, Mapping):
        return "", ""
    inner: Any = body.get("error", body)
    if not isinstance(inner, Mapping):
        return "", ""
    return str(inner.get("type") or ""), str(inner.get("code") or "")


def code_for(status: int | None, error_type: str = "", error_code: str = "", message: str = "") -> ErrorCode:
    """The normalised code for an upstream failure, most specific evidence first."""
    for hint in (error_code, error_type):
        if hint in _CODE_HINTS:
            return _CODE_HINTS[hint]
    if any(phrase in message.lower() for phrase in _CONTEXT_PHRASES):
        return ErrorCode.CONTEXT_LENGTH
    if status is None:
        return ErrorCode.UPSTREAM_ERROR
    return _STATUS_HINTS.get(status) or code_for_status(status)


def classify(error: BaseException, upstream: str) -> UpstreamError:
    """``error`` as an `UpstreamError`; the message names the upstream but never echoes credentials."""
    if isinstance(error, UpstreamError):
        return error
    if isinstance(error, (TimeoutError, *_sdk_errors("APITimeoutError"))):
        return UpstreamError(ErrorCode.TIMEOUT, f"{upstream} timed out")
    if isinstance(error, _sdk_errors("APIConnectionError")):
        return UpstreamError(ErrorCode.UNAVAILABLE, f"{upstream} is unreachable")
    if isinstance(error, _sdk_errors("APIStatusError")):
        status_error: Any = error
        error_type, error_code = _error_fields(status_error.body)
        detail = _message(status_error.body) or f"HTTP {status_error.status_code}"
        code = code_for(status_error.status_code, error_type, error_code, detail)
        retry_after = retry_after_seconds(status_error.response.headers)
        return UpstreamError(code, f"{upstream}: {detail}", retry_after=retry_after)
    if isinstance(error, _sdk_errors("APIError")):
        # An error event inside a stream: there is no HTTP status, only the body.
        api_error: Any = error
        error_type, error_code = _error_fields(api_error.body)
        detail = _message(api_error.body) or "error event in the stream"
        return UpstreamError(code_for(None, error_type, error_code, detail), f"{upstream}: {detail}")
    return UpstreamError(ErrorCode.UPSTREAM_ERROR, f"{upstream} failed: {type(error).__name__}")


def _message(body: object) -> str:
    """The human-readable message of an error body: bounded, and with anything key-like masked."""
    if not isinstance(body, Mapping):
        return ""
    inner: Any = body.get("error", body)
    message = inner.get("message") if isinstance(inner, Mapping) else None
    return _KEY_LIKE.sub("***", str(message)[:500]) if message else ""
