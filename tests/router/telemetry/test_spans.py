"""A recording span is its own ``with`` block: current inside, ended on exit, failed by an exception."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from inferflux.router import telemetry
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.telemetry.spans import NOOP, current_span, error_type
from tests.router.telemetry.conftest import Exported


def test_a_span_is_current_inside_its_block_and_its_children_name_it(
    traced: Callable[..., Exported],
) -> None:
    exported = traced(sample_ratio=1.0)
    with telemetry.server_span("root", {"a": 1}) as root:
        assert current_span.get() is root
        with telemetry.span("stage") as stage:
            assert current_span.get() is stage
        assert current_span.get() is root
    assert current_span.get() is None
    spans = {span.name: span for span in exported.spans()}  # type: ignore[attr-defined]
    assert set(spans) == {"root", "stage"}
    assert spans["stage"].parent.span_id == spans["root"].context.span_id
    assert spans["stage"].context.trace_id == spans["root"].context.trace_id
    assert spans["root"].parent is None
    assert spans["root"].kind is SpanKind.SERVER
    assert spans["stage"].kind is SpanKind.INTERNAL
    assert dict(spans["root"].attributes) == {"a": 1}
    assert spans["root"].end_time >= spans["stage"].end_time >= spans["stage"].start_time


def test_an_escaping_exception_fails_the_span_and_the_trace_is_kept(
    traced: Callable[..., Exported],
) -> None:
    exported = traced(sample_ratio=0.0)  # only failed traces are exported
    with pytest.raises(UpstreamError), telemetry.server_span("root"), telemetry.span("stage"):
        raise UpstreamError(ErrorCode.TIMEOUT, "slow")
    assert current_span.get() is None
    spans = {span.name: span for span in exported.spans()}  # type: ignore[attr-defined]
    assert spans["stage"].attributes["error.type"] == ErrorCode.TIMEOUT.value
    assert spans["root"].attributes["error.type"] == ErrorCode.TIMEOUT.value
    assert spans["stage"].status.status_code is StatusCode.ERROR


def test_a_successful_trace_outside_the_ratio_is_not_exported(traced: Callable[..., Exported]) -> None:
    exported = traced(sample_ratio=0.0)
    with telemetry.server_span("root"), telemetry.span("stage"):
        pass
    assert exported.spans() == []


def test_a_span_ends_once_even_when_ended_inside_its_block(traced: Callable[..., Exported]) -> None:
    exported = traced(sample_ratio=1.0)
    with telemetry.server_span("root") as root:
        root.end(end_time=5)
    assert [span.end_time for span in exported.spans()] == [5]  # type: ignore[attr-defined]


def test_with_tracing_off_the_blocks_hand_out_the_shared_noop() -> None:
    telemetry.uninstall()
    with telemetry.server_span("root") as root, telemetry.span("stage") as stage:
        assert root is NOOP
        assert stage is NOOP
        assert current_span.get() is None


def test_error_type_names_cancellations_timeouts_and_codes() -> None:
    assert error_type(asyncio.CancelledError()) == "cancelled"
    assert error_type(TimeoutError()) == "timeout"
    assert error_type(UpstreamError(ErrorCode.NOT_FOUND, "x")) == ErrorCode.NOT_FOUND.value
    assert error_type(KeyError("k")) == "KeyError"
