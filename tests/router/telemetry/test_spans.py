"""A recording span is its own ``with`` block: current inside, ended on exit, failed by an exception."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from inferflux.router import telemetry
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.telemetry.spans import NOOP, LeafSpan, Recorder, current_span, error_type
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


def test_a_leaf_span_is_a_child_of_its_parent_but_not_current(traced: Callable[..., Exported]) -> None:
    exported = traced(sample_ratio=1.0)
    with telemetry.server_span("root") as root:
        assert isinstance(root, Recorder)
        with LeafSpan(root, "budget"):
            assert current_span.get() is root
        with pytest.raises(UpstreamError), LeafSpan(root, "guardrails"):
            raise UpstreamError(ErrorCode.INSUFFICIENT_QUOTA, "no")
    spans = {span.name: span for span in exported.spans()}  # type: ignore[attr-defined]
    assert set(spans) == {"root", "budget", "guardrails"}
    for name in ("budget", "guardrails"):
        assert spans[name].parent.span_id == spans["root"].context.span_id
        assert spans[name].kind is SpanKind.INTERNAL
        assert spans["root"].start_time <= spans[name].start_time <= spans[name].end_time
    assert spans["budget"].status.status_code is StatusCode.UNSET
    assert "error.type" not in spans["budget"].attributes
    assert spans["guardrails"].attributes["error.type"] == ErrorCode.INSUFFICIENT_QUOTA.value
    assert spans["guardrails"].status.status_code is StatusCode.ERROR
    assert spans["budget"].context.span_id != spans["guardrails"].context.span_id


def test_a_failed_leaf_keeps_its_trace_and_a_successful_one_does_not(traced: Callable[..., Exported]) -> None:
    exported = traced(sample_ratio=0.0)
    with telemetry.server_span("fine") as root, LeafSpan(root, "budget"):  # type: ignore[arg-type]
        pass
    assert exported.spans() == []
    with (
        telemetry.server_span("refused") as root,
        pytest.raises(UpstreamError),
        LeafSpan(root, "budget"),  # type: ignore[arg-type]
    ):
        raise UpstreamError(ErrorCode.RATE_LIMITED, "slow down")
    assert {span.name for span in exported.spans()} == {"refused", "budget"}  # type: ignore[attr-defined]


def test_a_span_started_inside_a_leaf_goes_under_it(traced: Callable[..., Exported]) -> None:
    exported = traced(sample_ratio=1.0)
    with telemetry.server_span("root") as root:
        with LeafSpan(root, "guardrails"):  # type: ignore[arg-type]
            judge = telemetry.client_span("chat judge")
            judge.end()
        after = telemetry.client_span("chat m")
        after.end()
    spans = {span.name: span for span in exported.spans()}  # type: ignore[attr-defined]
    assert set(spans) == {"root", "guardrails", "chat judge", "chat m"}
    assert spans["chat judge"].parent.span_id == spans["guardrails"].context.span_id
    assert spans["guardrails"].parent.span_id == spans["root"].context.span_id
    assert spans["chat m"].parent.span_id == spans["root"].context.span_id


def test_a_leaf_ending_after_its_trace_was_decided_follows_the_decision(
    traced: Callable[..., Exported],
) -> None:
    exported = traced(sample_ratio=1.0)
    root = telemetry.server_span("root")
    assert isinstance(root, Recorder)
    late = LeafSpan(root, "late")
    root.end()
    assert {span.name for span in exported.spans()} == {"root"}  # type: ignore[attr-defined]
    with late:
        pass
    assert {span.name for span in exported.spans()} == {"root", "late"}  # type: ignore[attr-defined]


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
