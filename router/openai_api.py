"""The OpenAI-compatible front door: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``
and ``/v1/models``.

Requests are routed by their ``model`` field and forwarded byte for byte. Streams are relayed
chunk by chunk as they arrive; the relay only counts events and reads the final ``usage``. It never
adds SSE comments, ``id:`` or ``retry:`` fields, which the official ``openai`` SDK cannot parse when
mixed into a stream.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson

from inferflux.crds.inferencemodel import Balancer as Policy
from inferflux.router.asgi import (
    JSON,
    SSE_HEADERS,
    Receive,
    Scope,
    Send,
    cancel_on_disconnect,
    parse_json,
    read_body,
    send_bytes,
    send_error,
    send_json,
)
from inferflux.router.dispatch import Dispatcher, Exchange, prompt_prefix
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.identity.authenticate import permit_model, principal_of
from inferflux.router.metrics import Metrics
from inferflux.router.providers.chain import served_by_header
from inferflux.router.providers.handler import ChainHandler
from inferflux.router.sse import UsageScanner, count_events, openai_error_event
from inferflux.router.telemetry import genai
from inferflux.router.telemetry.tracing import fail
from inferflux.router.upstream import classify_status

GAP_SAMPLE_MASK = 3
ROUTES = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
}


@dataclass
class Call:
    """One proxied request as the relay needs it; ``status`` is filled in as the answer goes out."""

    model: str
    path: str
    body: bytes
    stream: bool
    headers: dict[str, str]
    prefix: bytes | None
    started: float
    status: list[int]
    trace: genai.TracedRequest | None = None  # described on the upstream span (tracing on)


def parse_request(body: bytes) -> dict[str, Any]:
    """The JSON request document; anything but an object with a string ``model`` is a 400."""
    document = parse_json(body)
    if not isinstance(document, dict):
        raise UpstreamError(ErrorCode.BAD_REQUEST, "request body must be a JSON object")
    if not isinstance(document.get("model"), str) or not document["model"]:
        raise UpstreamError(ErrorCode.BAD_REQUEST, "'model' is required", param="model")
    return document


class OpenAIRoutes:
    """Handlers for the ``/v1`` routes, sharing one `Dispatcher`."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        metrics: Metrics,
        prefix_chars: int = 256,
        providers: ChainHandler | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.prefix_chars = prefix_chars
        self.providers = providers

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every served model the caller may use, in the OpenAI list shape."""
        table = self.dispatcher.holder.table
        principal = principal_of(scope)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": route.namespace or "inferflux"}
            for name, route in sorted(table.models.items())
            if principal is None or principal.may_use(name)
        ]
        await send_json(send, 200, {"object": "list", "data": data})

    async def proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one request by its ``model`` and relay the answer, streamed or not."""
        started = time.perf_counter()
        label = ROUTES[scope["path"]]
        model = "-"
        status = [0]
        try:
            raw = await read_body(receive)
            document = parse_request(raw)
            model = document["model"]
            permit_model(scope, model)
            route = self.dispatcher.holder.table.models.get(model)
            if route is not None and (route.provider or route.fallback) and self.providers is not None:
                status[0] = await self._via_chain(label, document, receive, send)
                return
            prefix = None
            if route is not None and route.balancer == Policy.PREFIX_HASH:
                prefix = prompt_prefix(document, self.prefix_chars)
            headers = {"content-type": "application/json", "x-request-id": scope["inferflux.request_id"]}
            call = Call(
                model,
                scope["path"],
                raw,
                document.get("stream") is True,
                headers,
                prefix,
                started,
                status,
                genai.traced_request(label, document),
            )
            work = self._relay(send, call)
            if await cancel_on_disconnect(receive, work):
                status[0] = 499
        except UpstreamError as error:
            if not status[0]:
                status[0] = error.status
                await send_error(send, error)
        finally:
            self.metrics.requests.labels(label, model, str(status[0])).inc()
            self.metrics.duration.labels(label, model).observe(time.perf_counter() - started)

    async def _via_chain(self, label: str, document: dict[str, Any], receive: Receive, send: Send) -> int:
        """Serve through the fallback chain: a provider route, or a model with fallbacks declared."""
        assert self.providers is not None
        if label == "chat":
            await self.providers.chat(document, receive, send)
        elif label == "embeddings":
            served = await self.providers.chain.embeddings(document)
            await send_json(send, 200, served.body, [served_by_header(served.model)])
        else:
            raise UpstreamError(
                ErrorCode.BAD_REQUEST,
                f"model {document['model']!r} has a provider or fallbacks; use /v1/chat/completions",
                param="model",
            )
        return 200

    async def _relay(self, send: Send, call: Call) -> None:
        status = call.status
        async with self.dispatcher.exchange(
            call.model, call.path, call.body, call.headers, call.prefix, call.trace
        ) as ex:
            upstream_status = ex.response.status
            if upstream_status >= 400:
                await self._relay_error(send, ex, status)
            elif call.stream and ex.response.content_type == "text/event-stream":
                await self._relay_stream(send, ex, call.model, status, call.started)
            else:
                payload = await ex.response.read()
                status[0] = upstream_status
                await send_bytes(send, upstream_status, payload, [JSON])
                self._account(call.model, payload)
                genai.record_answer(ex.span, payload)

    async def _relay_error(self, send: Send, ex: Exchange, status: list[int]) -> None:
        """Pass an upstream error on, in the OpenAI shape even when the upstream used another."""
        payload = await ex.response.read()
        try:
            document = orjson.loads(payload)
            shaped = isinstance(document, dict) and isinstance(document.get("error"), dict)
        except orjson.JSONDecodeError:
            shaped = False
        status[0] = ex.response.status
        if shaped:
            await send_bytes(send, ex.response.status, payload, [JSON])
        else:
            error = classify_status(ex.response.status)
            self.metrics.upstream_errors.labels(ex.route.name, error.code.value).inc()
            await send_error(send, error)

    async def _relay_stream(
        self, send: Send, ex: Exchange, model: str, status: list[int], started: float
    ) -> None:
        """Forward SSE bytes as they come; an upstream failure mid-stream becomes an error event."""
        status[0] = 200
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        scanner = UsageScanner()
        gap = self.metrics.chunk_gap.labels(model)
        events = 0
        last = 0.0
        # Ends before the dispatcher's own total-time guard, so the client gets a proper error event.
        budget = self.dispatcher.client.timeouts.total - (time.perf_counter() - started)
        failure: UpstreamError | None = None
        try:
            async with asyncio.timeout(budget):
                async for chunk in ex.response.iter_any():
                    now = time.perf_counter()
                    if not last:
                        self.metrics.ttft.labels(model).observe(now - started)
                    elif events & GAP_SAMPLE_MASK == 0:  # a quarter of the gaps: same distribution, less cost
                        gap.observe(now - last)
                    last = now
                    events += count_events(chunk)
                    scanner.feed(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except TimeoutError:
            failure = UpstreamError(ErrorCode.TIMEOUT, "stream exceeded the total time limit")
        except Exception:  # a connection can fail many ways mid-body
            failure = UpstreamError(ErrorCode.UPSTREAM_ERROR, "upstream stream broke off")
        if failure is not None:
            fail(ex.span, failure.code.value)
            self.metrics.upstream_errors.labels(model, failure.code.value).inc()
            body = openai_error_event(failure.body())
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        self.metrics.stream_chunks.labels(model).inc(events)
        if scanner.usage:
            self._count_tokens(model, scanner.usage)
            genai.record_usage(ex.span, scanner.usage)

    def _account(self, model: str, payload: bytes) -> None:
        at = payload.rfind(b'"usage"')
        if at < 0:
            return
        try:
            usage = orjson.loads(payload).get("usage")
        except (orjson.JSONDecodeError, AttributeError):
            return
        if isinstance(usage, dict):
            self._count_tokens(model, usage)

    def _count_tokens(self, model: str, usage: dict[str, Any]) -> None:
        for kind in ("prompt_tokens", "completion_tokens"):
            value = usage.get(kind)
            if isinstance(value, int) and value > 0:
                self.metrics.tokens.labels(model, kind.removesuffix("_tokens")).inc(value)
