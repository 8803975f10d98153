"""A tiny OTLP/HTTP metrics receiver for tests: decodes each POST /v1/metrics with opentelemetry-proto.

A test fixture, not a fake of a product: it stands where an OpenTelemetry Collector would, and
keeps every decoded ``ExportMetricsServiceRequest``.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)


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
