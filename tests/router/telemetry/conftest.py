"""An installed tracing pipeline exporting to memory, removed after the test; an OTLP metrics receiver.

The receiver is a tiny OTLP/HTTP metrics endpoint decoding each POST /v1/metrics with
opentelemetry-proto: a test fixture standing where an OpenTelemetry Collector would, not a fake of
a product.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
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


@dataclass
class Point:
    """One histogram data point as received."""

    metric: str
    unit: str
    attributes: dict[str, Any]
    count: int
    sum: float


@dataclass
class OtlpReceiver:
    """Listens on a free loopback port; ``url`` is its metrics endpoint."""

    requests: list[ExportMetricsServiceRequest] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> OtlpReceiver:
        app = web.Application()
        app.router.add_post("/v1/metrics", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(self._runner, sock)
        await site.start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/metrics"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        message = ExportMetricsServiceRequest()
        message.ParseFromString(await request.read())
        self.requests.append(message)
        self.content_types.append(request.content_type)
        return web.Response(
            body=ExportMetricsServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    def points(self) -> list[Point]:
        """The histogram points of the last export (cumulative: it holds all recorded so far)."""
        found = []
        for message in self.requests[-1:]:
            for resource in message.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        for point in metric.histogram.data_points:
                            attributes = {a.key: _value(a.value) for a in point.attributes}
                            found.append(Point(metric.name, metric.unit, attributes, point.count, point.sum))
        return found

    def service_names(self) -> set[str]:
        return {
            _value(a.value)
            for message in self.requests
            for resource in message.resource_metrics
            for a in resource.resource.attributes
            if a.key == "service.name"
        }

    async def wait(self, predicate: Any, within: float = 10.0) -> None:
        """Poll until ``predicate(self)`` holds; fail after ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate(self):
            assert loop.time() < deadline, "the OTLP receiver did not get the expected metrics in time"
            await asyncio.sleep(0.05)


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    """An `OtlpReceiver` listening on a free loopback port."""
    running = await OtlpReceiver().start()
    yield running
    await running.stop()
