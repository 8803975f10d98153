"""Tail sampling keeps every failed trace whole, a ratio of the others, and bounds its buffer."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from inferflux.router.telemetry.tail import TailSampler, sampled


def _pipeline(
    ratio: float, max_spans: int = 1000
) -> tuple[TracerProvider, TailSampler, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    sampler = TailSampler(SimpleSpanProcessor(exporter), ratio, max_spans)
    provider = TracerProvider()
    provider.add_span_processor(sampler)
    return provider, sampler, exporter


def _trace(provider: TracerProvider, fail_child: bool = False, children: int = 2) -> int:
    tracer = provider.get_tracer("test")
    root = tracer.start_span("root", kind=SpanKind.SERVER)
    for index in range(children):
        child = tracer.start_span(f"child{index}", context=set_span_in_context(root))
        if fail_child and index == 0:
            child.set_status(Status(StatusCode.ERROR))
        child.end()
    root.end()
    return root.get_span_context().trace_id


def _trace_ids(spans: tuple[ReadableSpan, ...]) -> set[int]:
    return {span.context.trace_id for span in spans if span.context is not None}


def test_nothing_is_exported_before_the_root_ends() -> None:
    provider, sampler, exporter = _pipeline(ratio=1.0)
    tracer = provider.get_tracer("test")
    root = tracer.start_span("root")
    tracer.start_span("child", context=set_span_in_context(root)).end()
    assert exporter.get_finished_spans() == ()
    assert sampler.buffered == 1
    root.end()
    assert [span.name for span in exporter.get_finished_spans()] == ["child", "root"]
    assert sampler.buffered == 0


def test_a_failed_trace_is_kept_whole_at_ratio_zero() -> None:
    provider, sampler, exporter = _pipeline(ratio=0.0)
    failed = _trace(provider, fail_child=True)
    _trace(provider)
    spans = exporter.get_finished_spans()
    assert _trace_ids(spans) == {failed}
    assert len(spans) == 3
    assert (sampler.kept_traces, sampler.discarded_traces) == (1, 1)


def test_an_error_type_attribute_counts_as_a_failure() -> None:
    provider, _, exporter = _pipeline(ratio=0.0)
    root = provider.get_tracer("test").start_span("root", attributes={"error.type": "cancelled"})
    root.end()
    assert len(exporter.get_finished_spans()) == 1


def test_the_ratio_decision_is_the_trace_ids_and_near_the_ratio() -> None:
    provider, _, exporter = _pipeline(ratio=0.25)
    ids = [_trace(provider, children=0) for _ in range(2000)]
    kept = _trace_ids(exporter.get_finished_spans())
    assert kept == {trace_id for trace_id in ids if sampled(trace_id, 0.25)}
    assert 400 <= len(kept) <= 600  # binomial(2000, 0.25): 500 +- 19 standard deviation


def test_a_full_buffer_drops_and_counts_spans_but_still_decides() -> None:
    provider, sampler, exporter = _pipeline(ratio=1.0, max_spans=3)
    _trace(provider, children=5)
    assert sampler.dropped == 2
    assert len(exporter.get_finished_spans()) == 4  # three buffered children and the root
    assert sampler.buffered == 0


def test_a_span_ending_after_its_root_follows_the_decision() -> None:
    provider, _, exporter = _pipeline(ratio=0.0)
    tracer = provider.get_tracer("test")
    root = tracer.start_span("root")
    late = tracer.start_span("late", context=set_span_in_context(root))
    root.set_status(Status(StatusCode.ERROR))
    root.end()
    late.end()
    assert [span.name for span in exporter.get_finished_spans()] == ["root", "late"]
