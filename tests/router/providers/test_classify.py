"""Classification of upstream failures into the normalised error codes."""

from __future__ import annotations

import email.utils

import pytest

from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.providers.classify import classify, code_for, retry_after_seconds


def test_retry_after_in_milliseconds_seconds_or_http_date() -> None:
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    date = email.utils.formatdate(1_000_010, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=1_000_000) == pytest.approx(10)
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


@pytest.mark.parametrize(
    ("status", "kind", "code", "message", "expected"),
    [
        (429, "", "", "", ErrorCode.RATE_LIMITED),
        (529, "overloaded_error", "", "", ErrorCode.OVERLOADED),
        (503, "", "", "", ErrorCode.UNAVAILABLE),
        (502, "", "", "", ErrorCode.UNAVAILABLE),
        (500, "", "", "", ErrorCode.UPSTREAM_ERROR),
        (504, "", "", "", ErrorCode.TIMEOUT),
        (401, "", "invalid_api_key", "", ErrorCode.AUTH),
        (403, "permission_error", "", "", ErrorCode.AUTH),
        (400, "invalid_request_error", "context_length_exceeded", "", ErrorCode.CONTEXT_LENGTH),
        (400, "invalid_request_error", "", "prompt is too long: 9 tokens > 8", ErrorCode.CONTEXT_LENGTH),
        (400, "invalid_request_error", "content_policy_violation", "", ErrorCode.CONTENT_FILTERED),
        (422, "", "", "", ErrorCode.BAD_REQUEST),
        (None, "overloaded_error", "", "", ErrorCode.OVERLOADED),
        (None, "", "", "", ErrorCode.UPSTREAM_ERROR),
    ],
)
def test_code_for(status: int | None, kind: str, code: str, message: str, expected: ErrorCode) -> None:
    assert code_for(status, kind, code, message) is expected


def test_unknown_exceptions_become_upstream_errors_without_their_text() -> None:
    error = classify(ValueError("sk-secret in a message"), "openai")
    assert error.code is ErrorCode.UPSTREAM_ERROR
    assert "sk-secret" not in error.message
    assert classify(TimeoutError(), "groq").code is ErrorCode.TIMEOUT
    already = UpstreamError(ErrorCode.AUTH, "x")
    assert classify(already, "openai") is already
