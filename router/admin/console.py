"""The admin console: a static page at ``/console`` and the admin routes that feed it.

The page itself (router/admin/static/) is plain HTML, one vanilla JS module and CSS, served without
a credential because it holds none: the operator types the admin token into its login form, the
page keeps it in the tab's ``sessionStorage`` and sends it as ``Authorization: Bearer`` to the
admin API, exactly like any other admin client. Everything the page shows comes from authenticated
admin routes:

- ``GET /admin/v1/console/snapshot``: the models of this router's routing table, each with its
  conditions, revision, replicas, queue depth and in-flight requests, this router's recent
  guardrail verdicts and its recent requests;
- ``GET /admin/v1/console/events``: the same snapshot as Server-Sent Events, sent at once, then
  whenever it changes (checked every second), with a comment line as heartbeat in between;
- ``GET /admin/v1/guardrails/verdicts``: the recent verdicts alone (router/guardrails/recent.py);
- ``GET /admin/v1/requests/recent``: the recent requests alone (router/recent_requests.py).

A model's conditions (Ready, Progressing, Stalled) are those the operator last wrote on the
InferenceModel and published with the routing table; a table from a file (local mode) has none.
Queue depth and in-flight are this router replica's own counts, not a cluster-wide sum. The static
files go out with a strict Content-Security-Policy (same-origin scripts, styles and connections
only, no framing), so that an injected script or style has nowhere to run or send the token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from inferflux.crds.meta import ConditionType
from inferflux.crds.routing import ModelRoute, RoutingTable
from inferflux.router.guardrails.recent import RecentVerdicts
from inferflux.router.recent_requests import RecentRequests

STATIC = Path(__file__).parent / "static"
CHECK_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
SNAPSHOT_REQUESTS = 50  # the newest recent requests the live snapshot carries
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    """The console's static files, with `SECURITY_HEADERS`."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


class Admission(Protocol):
    """What the console reads of a model's queue (the dispatcher's fair queue or FIFO)."""

    @property
    def queued(self) -> int: ...

    @property
    def active(self) -> int: ...


@dataclass
class ConsoleSources:
    """Where the console's live data comes from, read at every snapshot."""

    table: Callable[[], RoutingTable]
    admissions: Mapping[str, Admission]
    recent: RecentVerdicts | None = None  # None: the guardrail stage is off on this router
    requests: RecentRequests | None = None  # None: INFERFLUX_CONSOLE_RECENT_REQUESTS=0
    trace_url: str = ""  # INFERFLUX_CONSOLE_TRACE_URL, with {trace_id}


def model_state(route: ModelRoute) -> dict[str, str | None]:
    """A model's state in one word, with the reason and message behind it.

    ``Stalled`` (the operator gave up until the spec changes), ``Ready``, ``Progressing`` (not Ready
    yet, a rollout under way), ``Not ready``, or ``Not reported`` when the table carries no
    condition (a table from a file, or a model the operator has not reported on yet).
    """
    found = {condition.type: condition for condition in route.conditions}
    ready = found.get(ConditionType.READY)
    stalled = found.get(ConditionType.STALLED)
    progressing = found.get(ConditionType.PROGRESSING)
    if stalled is not None and stalled.status == "True":
        state, cause = "Stalled", stalled
    elif ready is None:
        return {"state": "Not reported", "reason": None, "message": None}
    elif ready.status == "True":
        state, cause = "Ready", ready
    elif progressing is not None and progressing.status == "True":
        state, cause = "Progressing", ready
    else:
        state, cause = "Not ready", ready
    return {"state": state, "reason": cause.reason or None, "message": cause.message or None}


def models_view(table: RoutingTable, admissions: Mapping[str, Admission]) -> list[dict[str, Any]]:
    """Every model of ``table``, sorted by name, with its replicas and this router's queue counts."""
    models = []
    for name, route in sorted(table.models.items()):
        admission = admissions.get(name)
        models.append(
            {
                "name": name,
                "namespace": route.namespace,
                "engine": str(route.engine),
                **model_state(route),
                "conditions": [condition.to_wire() for condition in route.conditions],
                "revision": route.revision,
                "replicas": [
                    {"pod": endpoint.pod, "url": endpoint.url, "revision": endpoint.revision}
                    for endpoint in route.endpoints
                ],
                "provider": str(route.provider.name) if route.provider is not None else None,
                "fallback": list(route.fallback),
                "scaleToZero": route.scale_to_zero,
                "maxConcurrency": route.max_concurrency,
                "queued": admission.queued if admission is not None else 0,
                "inFlight": admission.active if admission is not None else 0,
            }
        )
    return models


def requests_view(sources: ConsoleSources, limit: int | None = None) -> dict[str, Any]:
    """This router's recent requests, newest first, and whether trace links are configured."""
    requests = sources.requests
    entries = requests.entries(limit) if requests is not None else []
    return {
        "enabled": requests is not None,
        "traceLinks": bool(sources.trace_url),
        "recent": [entry.view(sources.trace_url) for entry in entries],
    }


def snapshot(sources: ConsoleSources) -> dict[str, Any]:
    """What the console shows live: models, recent guardrail verdicts and recent requests."""
    recent = sources.recent
    return {
        "models": models_view(sources.table(), sources.admissions),
        "guardrails": {
            "enabled": recent is not None,
            "recent": [entry.view() for entry in recent.entries()] if recent is not None else [],
        },
        "requests": requests_view(sources, SNAPSHOT_REQUESTS),
    }


async def events(
    sources: ConsoleSources,
    disconnected: Callable[[], Any],
    check_seconds: float = CHECK_SECONDS,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> AsyncIterator[bytes]:
    """SSE frames: the snapshot now, then each changed one, a heartbeat comment when idle."""
    last = b""
    idle = 0.0
    while not await disconnected():
        current = orjson.dumps(snapshot(sources))
        if current != last:
            last, idle = current, 0.0
            yield b"event: snapshot\ndata: " + current + b"\n\n"
        elif idle >= heartbeat_seconds:
            idle = 0.0
            yield b": heartbeat\n\n"
        await asyncio.sleep(check_seconds)
        idle += check_seconds


def add_console(app: FastAPI, prefix: str, sources: ConsoleSources) -> None:
    """The console's routes on the admin ``app`` (whose dependencies demand an admin credential)
    and its static page at ``/console``."""

    @app.get(f"{prefix}/console/snapshot", tags=["console"])
    async def console_snapshot() -> dict[str, Any]:
        """Models with replicas, queue depth and in-flight; recent guardrail verdicts."""
        return snapshot(sources)

    @app.get(f"{prefix}/console/events", tags=["console"], response_class=StreamingResponse)
    async def console_events(request: Request) -> StreamingResponse:
        """The snapshot as Server-Sent Events, on every change."""
        headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
        return StreamingResponse(
            events(sources, request.is_disconnected), media_type="text/event-stream", headers=headers
        )

    @app.get(f"{prefix}/guardrails/verdicts", tags=["guardrails"])
    async def recent_verdicts() -> dict[str, Any]:
        """This router's recent guardrail verdicts, newest first: types and actions, never text."""
        recent = sources.recent
        entries = [entry.view() for entry in recent.entries()] if recent is not None else []
        return {"object": "list", "enabled": recent is not None, "data": entries}

    @app.get(f"{prefix}/requests/recent", tags=["console"])
    async def recent_requests() -> dict[str, Any]:
        """This router's recent requests, newest first: timings, status and trace id, never content."""
        return {"object": "list", **requests_view(sources)}

    app.mount("/console", ConsoleFiles(directory=STATIC, html=True), name="console")
