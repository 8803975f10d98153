"""The normalised error vocabulary and the OpenAI error shape."""

from __future__ import annotations

import pytest

from inferflux.router.errors import ErrorCode, UpstreamError, code_for_status, error_body, status_for


def test_every_code_has_a_status_and_a_type() -> None:
    for code in ErrorCode:
        assert 400 <= status_for(code) < 600
        assert error_body(code, "m")["error"]["type"]


def test_error_body_is_the_openai_shape() -> None:
    assert error_body(ErrorCode.NOT_FOUND, "no such model", param="model") == {
        "error": {
            "message": "no such model",
            "type": "invalid_request_error",
            "param": "model",
            "code": "not_found",
        }
    }


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "rate_limited"),
        (401, "auth"),
        (403, "auth"),
        (404, "not_found"),
        (504, "timeout"),
        (503, "unavailable"),
        (422, "bad_request"),
        (500, "upstream_error"),
    ],
)
def test_statuses_classify(status: int, code: str) -> None:
    assert code_for_status(status) == code


def test_upstream_error_carries_retry_after_and_retryability() -> None:
    error = UpstreamError(ErrorCode.RATE_LIMITED, "slow down", retry_after=2.4)
    assert error.status == 429
    assert error.headers() == [(b"retry-after", b"2")]
    assert not error.retryable
    assert UpstreamError(ErrorCode.UNAVAILABLE, "x").retryable
    assert UpstreamError(ErrorCode.UPSTREAM_ERROR, "x", status=500).status == 500
