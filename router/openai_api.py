"""The OpenAI-compatible front door: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``
and ``/v1/models``.

Requests are routed by their ``model`` field and forwarded byte for byte. Streams are relayed
chunk by chunk as they arrive; the relay only counts events and reads the final ``usage``. It never
adds SSE comments, ``id:`` or ``retry:`` fields, which the official ``openai`` SDK cannot parse when
mixed into a stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from inferflux.crds.inferencemodel import Balancer as Policy
from inferflux.router import failover
from inferflux.router.asgi import (
    JSON,
    SSE_HEADERS,
    Receive,
    Scope,
    Send,
    cancel_on_disconnect,
    header,
    parse_json,
    read_body,
    send_bytes,
    send_error,
    send_json,
)
from inferflux.router.dispatch import Dispatcher, Exchange, prompt_prefix
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.identity.authenticate import permit_model, principal_of
from inferflux.router.metrics import NO_TENANT, Metrics
from inferflux.router.pipeline import Call, OutputFilter, Pipeline, Usage, drained, filtered
from inferflux.router.providers.chain import served_by_header
from inferflux.router.providers.handler import ChainHandler
from inferflux.router.recent_requests import GRANTED_NOTE, QUEUE_NOTE, TTFT_NOTE
from inferflux.router.scheduling.demand import PRIORITY_HEADER, Demand
from inferflux.router.sse import UsageScanner, count_events, openai_error_event
from inferflux.router.telemetry import genai
from inferflux.router.telemetry.bridge import GenAiMetrics, Operation
from inferflux.router.telemetry.exemplars import exemplar
from inferflux.router.telemetry.tracing import fail
from inferflux.router.upstream import classify_status

log = logging.getLogger("inferflux.router")
GAP_SAMPLE_MASK = 3
TPOT_NOTE = "metrics.tpot"  # Call.notes: seconds per output token after the first
ROUTES = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
}


@dataclass
class Relayed:
    """A stream's relay state, carried over to its continuation when a replica breaks."""

    scanner: UsageScanner
    filters: list[OutputFilter]
    transcript: failover.Transcript | None  # the events relayed, kept only while failover is possible
    events: int = 0
    first: float = 0.0  # when the first chunk came (time per output token counts from it)
    last: float = 0.0
    opening: bool = False  # a continued chat stream's role event is still to be dropped


@dataclass
class Upstream:
    """Where and how a call goes to a runtime: the path, the headers, the prefix to balance on."""

    path: str
    headers: dict[str, str]
    prefix: bytes | None
    demand: Demand | None = None


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
        pipeline: Pipeline | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.prefix_chars = prefix_chars
        self.providers = providers
        self.pipeline = pipeline if pipeline is not None else Pipeline()
        self.genai_metrics: GenAiMetrics | None = None  # the OTel metrics bridge, when it is on

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
        call: Call | None = None
        status = 0
        try:
            raw = await read_body(receive)
            document = parse_request(raw)
            permit_model(scope, document["model"])
            call = Call(
                scope["inferflux.request_id"],
                label,
                document["model"],
                document,
                raw,
                principal_of(scope),
                document.get("stream") is True,
                started,
                headers=scope.get("inferflux.headers", []),
            )
            await self.pipeline.admit(call)
            status = await self._serve(scope, receive, send, call)
        except UpstreamError as error:
            if call is not None and not call.finished:
                call.fail(error)
                await self.pipeline.finish(call)
            status = status or (call.status if call is not None else 0) or error.status
            raise  # the router answers it, unless the answer had already started
        finally:
            if call is not None:
                call.status = call.status or status
                await self.pipeline.finish(call)  # once: covers a client gone mid-stream
            model = call.model if call is not None else "-"
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(label, model, str(status)).inc()
            self.metrics.duration.labels(label, model).observe(elapsed, exemplar(status >= 400 or not status))
            if call is not None and call.usage is not None:
                self._count_tenant_tokens(call, call.usage)
            if self.genai_metrics is not None and call is not None:
                self.genai_metrics.record(self._operation(call, elapsed))

    async def _serve(self, scope: Scope, receive: Receive, send: Send, call: Call) -> int:
        """Send an admitted call to its runtime or through the fallback chain; the status answered."""
        route = self.dispatcher.holder.table.models.get(call.model)
        if route is not None and (route.provider or route.fallback) and self.providers is not None:
            return await self._via_chain(call, receive, send)
        prefix = None
        if route is not None and route.balancer == Policy.PREFIX_HASH:
            prefix = prompt_prefix(call.document, self.prefix_chars)
        headers = {"content-type": "application/json", "x-request-id": call.request_id}
        demand = self.dispatcher.demands.of(
            call.principal,
            len(call.body),
            call.document,
            completes=call.route != "embeddings",
            header=header(scope, PRIORITY_HEADER.encode()),
        )
        upstream = Upstream(scope["path"], headers, prefix, demand)
        if await cancel_on_disconnect(receive, self._relay(send, call, upstream)):
            call.status = 499
            call.error = "client_gone"
        return call.status

    async def _via_chain(self, call: Call, receive: Receive, send: Send) -> int:
        """Serve through the fallback chain: a provider route, or a model with fallbacks declared."""
        assert self.providers is not None
        if call.route == "chat":
            await self.providers.chat(call.document, receive, send, call)
        elif call.route == "embeddings":
            served = await self.providers.chain.embeddings(call.document)
            await self.providers.finish(call, served.model, served.body.get("usage"))
            await send_json(send, 200, served.body, [served_by_header(served.model)])
        else:
            raise UpstreamError(
                ErrorCode.BAD_REQUEST,
                f"model {call.model!r} has a provider or fallbacks; use /v1/chat/completions",
                param="model",
            )
        return call.status or 200

    async def _relay(self, send: Send, call: Call, upstream: Upstream) -> None:
        async with self.dispatcher.exchange(
            call.model,
            upstream.path,
            call.body,
            upstream.headers,
            upstream.prefix,
            genai.traced_request(call.route, call.document),
            upstream.demand,
        ) as ex:
            call.upstream = ex.route.name
            if upstream.demand is not None:  # the console's recent requests show the queue wait
                call.notes[QUEUE_NOTE] = upstream.demand.waited
                call.notes[GRANTED_NOTE] = upstream.demand.granted
            try:
                if ex.response.status >= 400:
                    await self._relay_error(send, ex, call)
                elif call.stream and ex.response.content_type == "text/event-stream":
                    await self._relay_stream(send, ex, call, upstream)
                else:
                    await self._relay_body(send, ex, call)
            finally:
                if upstream.demand is not None and call.usage is not None:
                    upstream.demand.used = call.usage.total  # corrects the tenant's fair share

    async def _relay_body(self, send: Send, ex: Exchange, call: Call) -> None:
        """A whole answer: read it, let the output filters see it, finish the stages, send it."""
        payload = await ex.response.read()
        call.status = ex.response.status
        self._account(call, payload)
        genai.record_answer(ex.span, payload)
        filters = self.pipeline.outputs(call)
        if filters:
            try:
                payload = filtered(filters, payload) + drained(filters)
            except UpstreamError as error:
                call.fail(error)
                await self.pipeline.finish(call)
                await send_error(send, error)
                return
        await self.pipeline.finish(call)
        await send_bytes(send, call.status, payload, [JSON])

    async def _relay_error(self, send: Send, ex: Exchange, call: Call) -> None:
        """Pass an upstream error on, in the OpenAI shape even when the upstream used another."""
        payload = await ex.response.read()
        try:
            document = orjson.loads(payload)
            shaped = isinstance(document, dict) and isinstance(document.get("error"), dict)
        except orjson.JSONDecodeError:
            document, shaped = None, False
        call.status = ex.response.status
        if shaped:
            assert isinstance(document, dict)
            code = document["error"].get("code")
            call.error = code if isinstance(code, str) else "upstream_error"
            await self.pipeline.finish(call)
            await send_bytes(send, call.status, payload, [JSON])
        else:
            error = classify_status(ex.response.status)
            call.error = error.code.value
            self.metrics.upstream_errors.labels(ex.route.name, error.code.value).inc()
            await self.pipeline.finish(call)
            await send_error(send, error)

    async def _relay_stream(self, send: Send, ex: Exchange, call: Call, upstream: Upstream) -> None:
        """Forward SSE bytes as they come; an upstream failure mid-stream is continued on another
        replica when it can be (`_fail_over`), else it becomes an error event."""
        model = call.model
        call.status = 200
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        relayed = Relayed(UsageScanner(), self.pipeline.outputs(call), self._transcript(call, ex))
        # Ends before the dispatcher's own total-time guard, so the client gets a proper error event.
        budget = self.dispatcher.client.timeouts.total - (time.perf_counter() - call.started)
        failure: UpstreamError | None = None
        try:
            async with asyncio.timeout(budget):
                try:
                    await self._pump(send, ex, call, relayed)
                except UpstreamError:
                    raise
                except Exception:
                    if relayed.transcript is None:
                        raise
                    await self._fail_over(send, ex, call, relayed, upstream)
            if relayed.filters:
                await send(
                    {"type": "http.response.body", "body": drained(relayed.filters), "more_body": True}
                )
        except TimeoutError:
            failure = UpstreamError(ErrorCode.TIMEOUT, "stream exceeded the total time limit")
        except UpstreamError as error:  # an output filter stopped the answer, or failover could not help
            failure = error
        except Exception:  # a connection can fail many ways mid-body
            failure = UpstreamError(ErrorCode.UPSTREAM_ERROR, "upstream stream broke off")
        scanner = relayed.scanner
        call.usage = Usage.from_openai(scanner.usage)
        call.notes["events"] = relayed.events
        if scanner.usage:
            genai.record_usage(ex.span, scanner.usage)
        if failure is not None:
            fail(ex.span, failure.code.value)
            call.error = failure.code.value
            self.metrics.upstream_errors.labels(model, failure.code.value).inc()
            body = openai_error_event(failure.body())
            await send({"type": "http.response.body", "body": body, "more_body": True})
        self.metrics.stream_chunks.labels(model).inc(relayed.events)
        if call.usage is not None:
            self._count_tokens(call, call.usage)
            if failure is None:
                self._time_tokens(call, relayed.first, relayed.last, call.usage.completion_tokens)
        await self.pipeline.finish(call)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _transcript(self, call: Call, ex: Exchange) -> failover.Transcript | None:
        """A transcript when this stream could be continued elsewhere: another replica exists."""
        limit = self.dispatcher.failover_buffer_bytes
        if limit <= 0 or call.route == "embeddings" or len(ex.route.endpoints) < 2:
            return None
        return failover.Transcript(limit)

    async def _pump(self, send: Send, ex: Exchange, call: Call, relayed: Relayed) -> None:
        """Relay one upstream's events to the client until it ends; a broken upstream raises."""
        gap = self.metrics.chunk_gap.labels(call.model)
        transcript = relayed.transcript
        scanner = relayed.scanner
        filters = relayed.filters
        async for chunk in ex.response.iter_any():
            now = time.perf_counter()
            if not relayed.last:
                relayed.first = now
                self.metrics.ttft.labels(call.model).observe(now - call.started, exemplar())
            elif relayed.events & GAP_SAMPLE_MASK == 0:  # a quarter of the gaps: same distribution, less cost
                gap.observe(now - relayed.last)
            relayed.last = now
            if transcript is not None:
                chunk = transcript.take(chunk)
                if relayed.opening:
                    chunk, settled = failover.skip_opening(chunk)
                    relayed.opening = not settled
                if not chunk:
                    continue
            relayed.events += count_events(chunk)
            scanner.feed(chunk)
            if filters:
                chunk = filtered(filters, chunk)
                if not chunk:  # all held back: nothing to write
                    continue
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if transcript is not None and (rest := transcript.rest()):
            await send(
                {
                    "type": "http.response.body",
                    "body": filtered(filters, rest) if filters else rest,
                    "more_body": True,
                }
            )

    async def _fail_over(
        self, send: Send, ex: Exchange, call: Call, relayed: Relayed, upstream: Upstream
    ) -> None:
        """Continue a stream whose replica broke on the others in turn (router/failover.py).

        Returns once the client's stream is whole; raises `UpstreamError` (the error event the
        client then gets) when no replica is left or the request cannot be continued.
        """
        assert relayed.transcript is not None
        counter = self.metrics.failovers
        broke = "upstream stream broke off"
        log.warning("a %s stream of %s broke off mid-body; failing over", call.route, call.model)
        while True:
            progress = failover.read_progress(relayed.transcript.data, call.route)
            if progress.done:  # every event had arrived; only the connection's close was lost
                return
            if progress.finish_reason is not None or failover.exhausted(call.document, progress):
                await send(
                    {
                        "type": "http.response.body",
                        "body": failover.closing(progress, call.route, "length"),
                        "more_body": True,
                    }
                )
                counter.labels(call.model, "closed").inc()
                return
            document = (
                None
                if relayed.transcript.overflowed
                else failover.continuation(call.document, call.route, progress)
            )
            if document is None:
                counter.labels(call.model, "not_continuable").inc()
                raise UpstreamError(ErrorCode.UPSTREAM_ERROR, f"{broke}; this request cannot be continued")
            opened = False
            try:
                async with self.dispatcher.failover(
                    call.model,
                    upstream.path,
                    orjson.dumps(document),
                    upstream.headers,
                    ex.tried,
                    genai.traced_request(call.route, document),
                ) as continued:
                    opened = True
                    if (
                        continued.response.status >= 400
                        or continued.response.content_type != "text/event-stream"
                    ):
                        counter.labels(call.model, "refused").inc()
                        raise UpstreamError(
                            ErrorCode.UPSTREAM_ERROR, f"{broke}; the replica refused to continue it"
                        )
                    counter.labels(call.model, "continued").inc()
                    relayed.opening = call.route == "chat"
                    try:
                        await self._pump(send, continued, call, relayed)
                        return
                    except UpstreamError:
                        raise
                    except Exception as error:  # this one broke too: the next goes on from what was said
                        log.warning(
                            "the continuation of a %s stream broke off on %s too (%s)",
                            call.model,
                            continued.endpoint.pod or continued.endpoint.url,
                            type(error).__name__,
                        )
            except UpstreamError:
                if opened:
                    raise
                counter.labels(call.model, "no_replica").inc()
                raise UpstreamError(
                    ErrorCode.UPSTREAM_ERROR, f"{broke}; no other replica could continue it"
                ) from None

    def _account(self, call: Call, payload: bytes) -> None:
        """Read ``usage`` from a whole answer into the call and the token counters."""
        if payload.rfind(b'"usage"') < 0:
            return
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        call.usage = Usage.from_openai(document.get("usage") if isinstance(document, dict) else None)
        if call.usage is not None:
            self._count_tokens(call, call.usage)

    def _count_tokens(self, call: Call, usage: Usage) -> None:
        if usage.prompt_tokens:
            self.metrics.tokens.labels(call.model, "prompt").inc(usage.prompt_tokens)
        if usage.completion_tokens:
            self.metrics.tokens.labels(call.model, "completion").inc(usage.completion_tokens)

    def _count_tenant_tokens(self, call: Call, usage: Usage) -> None:
        """Tokens by tenant, for every route (runtimes and providers alike)."""
        tenant = self.metrics.tenant_label(call.tenant or NO_TENANT)
        if usage.prompt_tokens:
            self.metrics.tenant_tokens.labels(tenant, "prompt").inc(usage.prompt_tokens)
        if usage.completion_tokens:
            self.metrics.tenant_tokens.labels(tenant, "completion").inc(usage.completion_tokens)

    def _operation(self, call: Call, elapsed: float) -> Operation:
        """A finished call as the OTel metrics bridge records it."""
        route = self.dispatcher.holder.table.models.get(call.model)
        provider = route.provider.name if route is not None and route.provider is not None else "inferflux"
        failed = call.status >= 400 or not call.status or call.error
        usage = call.usage
        return Operation(
            genai.OPERATIONS.get(call.route, call.route),
            str(provider),
            call.model,
            elapsed,
            error_type=(call.error or str(call.status)) if failed else "",
            input_tokens=usage.prompt_tokens if usage is not None else None,
            output_tokens=usage.completion_tokens if usage is not None else None,
            time_to_first_token=call.notes.get(TTFT_NOTE),
            time_per_output_token=call.notes.get(TPOT_NOTE),
        )

    def _time_tokens(self, call: Call, first: float, last: float, completion_tokens: int) -> None:
        """Time to first chunk and per output token of a complete stream, for the metrics.

        Per output token: first to last chunk over the tokens after the first (the first token's
        time is the time to first chunk); a stream of one token has none.
        """
        if not first:
            return
        call.notes[TTFT_NOTE] = first - call.started
        if completion_tokens > 1:
            per_token = (last - first) / (completion_tokens - 1)
            call.notes[TPOT_NOTE] = per_token
            self.metrics.tpot.labels(call.model).observe(per_token)
