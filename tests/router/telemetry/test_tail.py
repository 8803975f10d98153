"""Tail sampling keeps every failed trace whole, a ratio of the others, and bounds its buffer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from inferflux.router import telemetry
from inferflux.router.telemetry.spans import RemoteParent
from inferflux.router.telemetry.tail import sampled
from inferflux.router.telemetry.tracing import start


@pytest.fixture
def pipeline() -> Iterator[object]:
    made: list[tuple[telemetry.Tracing, InMemorySpanExporter]] = []

    def install(ratio: float, max_spans: int = 1000) -> tuple[telemetry.Tracing, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        tracing = telemetry.install(
            telemetry.TraceSettings(sample_ratio=ratio, buffer_spans=max_spans), exporter=exporter
        )
        assert tracing is not None
        made.append((tracing, exporter))
        return tracing, exporter

    yield install
    telemetry.uninstall()


def _exported(tracing: telemetry.Tracing, exporter: InMemorySpanExporter) -> tuple[ReadableSpan, ...]:
    assert tracing.flush()
    return exporter.get_finished_spans()


def _trace(fail_child: bool = False, children: int = 2) -> int:
    root = start("root", SpanKind.SERVER)
    for index in range(children):
        child = start(f"child{index}", parent=root)
        if fail_child and index == 0:
            child.set_status(Status(StatusCode.ERROR))
        child.end()
    root.end()
    return root.get_span_context().trace_id


def _trace_ids(spans: tuple[ReadableSpan, ...]) -> set[int]:
    return {span.context.trace_id for span in spans if span.context is not None}


def test_nothing_is_exported_before_the_root_ends(pipeline: object) -> None:
    tracing, exporter = pipeline(ratio=1.0)  # type: ignore[operator]
    root = start("root")
    start("child", parent=root).end()
    assert _exported(tracing, exporter) == ()
    assert tracing.sampler.buffered == 1
    root.end()
    spans = _exported(tracing, exporter)
    assert [span.name for span in spans] == ["child", "root"]
    assert spans[0].parent is not None
    assert spans[0].parent.span_id == spans[1].context.span_id
    assert tracing.sampler.buffered == 0


def test_a_failed_trace_is_kept_whole_at_ratio_zero(pipeline: object) -> None:
    tracing, exporter = pipeline(ratio=0.0)  # type: ignore[operator]
    failed = _trace(fail_child=True)
    _trace()
    spans = _exported(tracing, exporter)
    assert _trace_ids(spans) == {failed}
    assert len(spans) == 3
    assert (tracing.sampler.kept_traces, tracing.sampler.discarded_traces) == (1, 1)
    assert [span.status.status_code for span in spans] == [
        StatusCode.ERROR,
        StatusCode.UNSET,
        StatusCode.UNSET,
    ]


def test_an_error_type_attribute_counts_as_a_failure(pipeline: object) -> None:
    tracing, exporter = pipeline(ratio=0.0)  # type: ignore[operator]
    start("root", attributes={"error.type": "cancelled"}).end()
    assert len(_exported(tracing, exporter)) == 1


def test_the_ratio_decision_is_the_trace_ids_and_near_the_ratio(pipeline: object) -> None:
    tracing, exporter = pipeline(ratio=0.25)  # type: ignore[operator]
    ids = [_trace(children=0) for _ in range(2000)]
    kept = _trace_ids(_exported(tracing, exporter))
    assert kept == {trace_id for trace_id in ids if sampled(trace_id, 0.25)}
    assert 400 <= len(kept) <= 600  # binomial(2000, 0.25): 500 +- 19 standard deviation


def test_a_full_buffer_drops_and_counts_spans_but_still_decides(pipeline: object) -> None:
    tracing, exporter = pipeline(ratio=1.0, max_spans=3)  # type: ignore[operator]
    _trace(children=5)
    assert tracing.sampler.dropped == 2
    assert len(_exported(tracing, exporter)) == 4  # three buffered children and the root
    assert tracing.sampler.buffered == 0


def test_a_span_ending_after_its_root_follows_the_decision(pipeline: object) -> None:
    tracing, exporter = pipeline(ratio=0.0)  # type: ignore[operator]
    root: Span = start("root")
    late = start("late", parent=root)
    root.set_status(Status(StatusCode.ERROR))
    root.end()
    late.end()
    assert [span.name for span in _exported(tracing, exporter)] == ["root", "late"]


def test_a_remote_parent_continues_its_trace_and_the_span_is_a_local_root(pipeline: object) -> None:
    tracing, exporter = pipeline(ratio=1.0)  # type: ignore[operator]
    start("server", SpanKind.SERVER, parent=RemoteParent(trace_id=0xABC, span_id=0x12)).end()
    (span,) = _exported(tracing, exporter)
    assert span.context.trace_id == 0xABC
    assert span.parent is not None
    assert (span.parent.span_id, span.parent.is_remote) == (0x12, True)
