"""An installed tracing pipeline exporting to memory, removed after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inferflux.router import telemetry


class Exported:
    """The in-memory exporter behind the installed pipeline."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracing: telemetry.Tracing | None = None

    def spans(self) -> list[object]:
        """Every exported span so far (queued ones flushed first)."""
        assert self.tracing is not None
        assert self.tracing.flush()
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def traced() -> Iterator[Callable[..., Exported]]:
    """``traced(sample_ratio=..., capture_content=...)`` installs tracing into memory."""
    made: list[Exported] = []

    def install(**settings: object) -> Exported:
        exported = Exported()
        exported.tracing = telemetry.install(
            telemetry.TraceSettings(**settings),  # type: ignore[arg-type]
            exporter=exported.exporter,
        )
        made.append(exported)
        return exported

    yield install
    telemetry.uninstall()
