"""An installed tracing pipeline exporting to memory, removed after the test; an OTLP metrics receiver."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

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


def _load(filename: str, name: str) -> Any:
    """A helper module beside this file, registered as ``name`` (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(filename))
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


otlp_receiver = _load("otlp_receiver.py", "inferflux_tests_otlp_receiver")


@pytest.fixture
async def receiver() -> AsyncIterator[Any]:
    """An `OtlpReceiver` listening on a free loopback port."""
    running = await otlp_receiver.OtlpReceiver().start()
    yield running
    await running.stop()
