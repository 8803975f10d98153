"""Every error code the router can answer with maps to its own typed error."""

from __future__ import annotations

import pytest

from inferflux.client import errors
from inferflux.router.errors import ErrorCode, UpstreamError, error_body, status_for


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_router_code_has_a_typed_error(code: ErrorCode) -> None:
    error = errors.error_from(status_for(code), error_body(code, "why", param="model"), retry_after=2.0)
    assert type(error) is not errors.APIError
    assert error.code == code.value
    assert error.status == status_for(code)
    assert error.param == "model"
    assert error.retry_after == 2.0
    assert str(error) == "why"


def test_the_classes_group_as_callers_catch_them() -> None:
    def typed(code: ErrorCode) -> errors.APIError:
        return errors.error_from(status_for(code), error_body(code, "x"))

    assert isinstance(typed(ErrorCode.INSUFFICIENT_QUOTA), errors.RateLimitError)
    assert isinstance(typed(ErrorCode.OVERLOADED), errors.RateLimitError)
    assert isinstance(typed(ErrorCode.GUARDRAIL_BLOCKED), errors.BadRequestError)
    assert isinstance(typed(ErrorCode.INVALID_TOKEN), errors.AuthenticationError)
    assert isinstance(typed(ErrorCode.UNAVAILABLE), errors.UnavailableError)


def test_resume_answers_are_typed_by_status() -> None:
    forged = UpstreamError(ErrorCode.AUTH, "resume_token signature does not match", status=401)
    assert isinstance(errors.error_from(401, forged.body(), resuming=True), errors.InvalidResumeTokenError)
    assert not isinstance(errors.error_from(401, forged.body()), errors.InvalidResumeTokenError)
    gone = UpstreamError(ErrorCode.NOT_FOUND, "resume_token has expired", status=410)
    assert isinstance(errors.error_from(410, gone.body(), resuming=True), errors.StreamGoneError)


def test_an_answer_without_the_error_shape_still_gets_a_class_by_status() -> None:
    assert isinstance(errors.error_from(503, b"<html>"), errors.UnavailableError)
    assert isinstance(errors.error_from(418, None), errors.APIError)
    assert errors.error_from(502, {"error": "text"}).message == "HTTP 502"


@pytest.mark.parametrize(("header", "seconds"), [("3", 3.0), ("0", 0.0), (None, None), ("Wed, 21 Oct", None)])
def test_retry_after_header(header: str | None, seconds: float | None) -> None:
    assert errors.retry_after_seconds(header) == seconds
