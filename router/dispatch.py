"""From a ``model`` to an open upstream response: route lookup, admission, replica choice, retry.

`Dispatcher.exchange` is the single path every proxied request takes. It admits the request
through the model's fair queue (router/scheduling; the plain FIFO `Limiter` when fairness is
off), picks a replica with the model's balancing policy, and when that replica fails before
sending a byte, tries another one. The caller reads the response inside the
context; leaving it (normally, by error or by cancellation) frees the replica and the slot.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from inferflux.crds.inferencemodel import Balancer as Policy
from inferflux.crds.inferencemodel import Engine
from inferflux.crds.routing import Endpoint, ModelRoute, RoutingTable
from inferflux.router import telemetry
from inferflux.router.activation import ActivityReporter
from inferflux.router.balancer import Balancer, Choice
from inferflux.router.discovery import TableHolder
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.http1 import Response
from inferflux.router.limiter import Limiter
from inferflux.router.metrics import Metrics
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.scheduling.admission import FairAdmission
from inferflux.router.scheduling.demand import PRIORITY_HEADER, Demand, Demands
from inferflux.router.scheduling.fairqueue import Entry
from inferflux.router.scheduling.metrics import SchedulingMetrics
from inferflux.router.telemetry.genai import TracedRequest, described_request, span_name
from inferflux.router.telemetry.spans import TraceSpan
from inferflux.router.telemetry.tracing import NOOP
from inferflux.router.upstream import UpstreamClient

#: ``gen_ai.provider.name`` of InferFlux's own runtime pods (not a registered provider name).
RUNTIME_PROVIDER = "inferflux"

TOTAL_GRACE_SECONDS = 1.0


@dataclass(frozen=True)
class Fairness:
    """How the dispatcher queues requests per model (docs/scheduling.md); off: one FIFO per model."""

    enabled: bool = True
    sheddable_share: float = 0.5
    retry_after_seconds: float = 1.0
    sheddable_slots: float = 1.0
    # Models on the llama.cpp runtime preempt sheddable sequences (router/scheduling/fairqueue.py).
    runtime_preemption: bool = True


class FifoAdmission:
    """The plain FIFO `Limiter` behind the fair queue's interface (fairness off)."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    @property
    def queued(self) -> int:
        """Requests waiting for a slot."""
        return self.limiter.queued

    @property
    def active(self) -> int:
        """Requests holding a slot."""
        return self.limiter.active

    def resize(self, max_concurrency: int, max_queue: int) -> None:
        """Apply new limits from a new routing table."""
        self.limiter.resize(max_concurrency, max_queue)

    async def acquire(self, demand: Demand) -> None:
        """A slot, in arrival order whoever asks."""
        await self.limiter.acquire()

    def release(self, entry: Entry | None, used: int | None = None) -> None:
        """Give the slot back."""
        self.limiter.release()


@dataclass
class Exchange:
    """An upstream response whose headers have arrived, and where it came from."""

    response: Response
    endpoint: Endpoint
    route: ModelRoute
    span: TraceSpan = NOOP  # the attempt's client span: the relay adds the response's GenAI facts
    tried: set[str] = field(default_factory=set)  # replica URLs this request went to, this one included


@functools.lru_cache(maxsize=1024)
def upstream_span_shape(operation: str, model: str, url: str) -> tuple[str, dict[str, Any]]:
    """The name and fixed attributes of client spans to ``url`` (few shapes, one per request).

    Worked out once per shape: every request pays for its spans, kept or not. The dict is shared:
    callers copy it.
    """
    attributes = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": model,
        "gen_ai.provider.name": RUNTIME_PROVIDER,
        **telemetry.server_address(url),
    }
    return span_name(operation, model), attributes


def upstream_span(model: str, url: str, request: TracedRequest | None) -> TraceSpan:
    """The client span of one attempt at ``url`` (`NOOP` when tracing is off)."""
    if request is None:
        return NOOP
    name, attributes = upstream_span_shape(request.operation, model, url)
    span = telemetry.client_span(name, attributes.copy())  # a span owns (and adds to) its attributes
    span.defer(described_request, request)
    return span


def prompt_prefix(document: Mapping[str, Any], chars: int) -> bytes:
    """The start of the prompt, the key prefix-aware balancing hashes (messages or prompt)."""
    messages = document.get("messages")
    if isinstance(messages, list):
        parts: list[str] = []
        size = 0
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            text = content if isinstance(content, str) else str(content)
            parts.append(text)
            size += len(text)
            if size >= chars:
                break
        return "\x1e".join(parts)[:chars].encode()
    prompt = document.get("prompt")
    if isinstance(prompt, list):
        prompt = prompt[0] if prompt else ""
    return str(prompt or document.get("input") or "")[:chars].encode()


class Dispatcher:
    """Everything needed to send a request for a model to one of its replicas."""

    def __init__(
        self,
        holder: TableHolder,
        client: UpstreamClient,
        balancer: Balancer,
        metrics: Metrics,
        retries: int = 1,
        hold_seconds: float = 0.0,
        failover_buffer_bytes: int = 0,
        activity: ActivityReporter | None = None,
        activation_hold_seconds: float = 0.0,
        fairness: Fairness | None = None,
        demands: Demands | None = None,
    ) -> None:
        self.holder = holder
        self.client = client
        self.balancer = balancer
        self.metrics = metrics
        self.retries = retries
        self.hold_seconds = hold_seconds
        # Bytes of a stream kept to continue it on another replica (router/failover.py); 0: never.
        self.failover_buffer_bytes = failover_buffer_bytes
        self.activity = activity
        self.activation_hold_seconds = activation_hold_seconds
        self.fairness = fairness or Fairness()
        self.demands = demands or Demands(PolicyHolder())
        self.scheduling_metrics = SchedulingMetrics(metrics.registry)
        self.limiters: dict[str, FairAdmission | FifoAdmission] = {}
        self._held: dict[str, int] = {}
        metrics.slots.sources.append(self.slot_counts)
        holder.on_swap(self._on_swap)

    def _on_swap(self, table: RoutingTable) -> None:
        for name, route in table.models.items():
            limiter = self.limiters.get(name)
            if limiter is not None:
                limiter.resize(route.max_concurrency, route.max_queue)
        self.balancer.forget(
            {endpoint.url for route in table.models.values() for endpoint in route.endpoints}
        )
        self.metrics.table_generation.set(self.holder.generation)

    async def route(self, model: str) -> ModelRoute:
        """The route serving ``model``: unknown names are 404; a model with no ready replica is held.

        A local model with no ready replica is usually loading (a new model, a restart, a scale
        from zero): its requests wait up to ``hold_seconds`` for a table that lists a replica,
        at most ``max_queue`` of them per model, then get 503 with ``retry-after``. A model that
        scales to zero is asked to activate (router/activation.py) and its requests wait up to
        ``activation_hold_seconds`` instead. A provider route never has replicas here (it goes
        through the fallback chain): 503 at once.
        """
        route = self._known(model)
        if self.activity is not None:
            self.activity.seen(model, route)
        if route.endpoints:
            return route
        held = self._held.get(model, 0)
        wait = self._hold_for(route)
        if route.provider or wait <= 0 or held >= route.max_queue:
            raise self._no_replica(model, route)
        self._held[model] = held + 1
        gauge = self.metrics.held.labels(model)
        gauge.inc()
        try:
            async with asyncio.timeout(wait):
                while not route.endpoints:
                    if route.scale_to_zero and self.activity is not None:
                        self.activity.activate(model, route)  # rate-limited per model; again after a swap
                    await self.holder.changed()
                    route = self._known(model)
        except TimeoutError:
            raise self._no_replica(model, route, waited=wait) from None
        finally:
            self._held[model] -= 1
            gauge.dec()
        return route

    def _known(self, model: str) -> ModelRoute:
        route = self.holder.table.models.get(model)
        if route is None:
            raise UpstreamError(ErrorCode.NOT_FOUND, f"model {model!r} is not served here", param="model")
        return route

    def slot_counts(self) -> Iterator[tuple[str, int, int]]:
        """Per model: requests holding a slot and requests waiting for one (the metrics' gauges)."""
        for model, limiter in list(self.limiters.items()):
            yield model, limiter.active, limiter.queued

    def load(self, model: str) -> int:
        """Requests for ``model`` in this router now: held, queued or being served."""
        limiter = self.limiters.get(model)
        return self._held.get(model, 0) + (limiter.active + limiter.queued if limiter else 0)

    def _hold_for(self, route: ModelRoute) -> float:
        """How long a request may wait for ``route``'s first ready replica."""
        if route.scale_to_zero and self.activity is not None:
            return self.activation_hold_seconds
        return self.hold_seconds

    def _no_replica(self, model: str, route: ModelRoute, waited: float = 0.0) -> UpstreamError:
        if route.provider:
            reason = "has an external provider route"
        elif waited:
            reason = f"has no ready replica after {waited:g} s"
        else:
            reason = "has no ready replica"
        return UpstreamError(ErrorCode.UNAVAILABLE, f"model {model!r} {reason}", retry_after=1)

    def limiter(self, model: str, route: ModelRoute) -> FairAdmission | FifoAdmission:
        """The model's admission (fair queue or FIFO), created on its first request."""
        limiter = self.limiters.get(model)
        if limiter is None:
            fairness = self.fairness
            limiter = self.limiters[model] = (
                FairAdmission(
                    model,
                    route.max_concurrency,
                    route.max_queue,
                    self.scheduling_metrics,
                    fairness.sheddable_share,
                    fairness.retry_after_seconds,
                    fairness.sheddable_slots,
                    preemptive=fairness.runtime_preemption and route.engine == Engine.LLAMACPP,
                )
                if fairness.enabled
                else FifoAdmission(
                    Limiter(route.max_concurrency, route.max_queue, fairness.retry_after_seconds)
                )
            )
        return limiter

    def choose(self, model: str, route: ModelRoute, tried: set[str], prefix: bytes | None) -> Choice | None:
        """A replica not tried yet, by the model's policy; None when every replica was tried."""
        endpoints = [endpoint for endpoint in route.endpoints if endpoint.url not in tried]
        if not endpoints:
            return None
        policy = route.balancer
        if policy == Policy.PREFIX_HASH and prefix is not None:
            choice = self.balancer.prefix_hash(endpoints, prefix)
        else:
            choice = self.balancer.least_outstanding(endpoints)
        label = "preferred" if choice.preferred and not tried else ("retry" if tried else "spilled")
        self.metrics.balancer_decisions.labels(model, str(policy), label).inc()
        return choice

    @asynccontextmanager
    async def exchange(
        self,
        model: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        prefix: bytes | None = None,
        trace: TracedRequest | None = None,
        demand: Demand | None = None,
    ) -> AsyncIterator[Exchange]:
        """Admit, choose, send, and retry on another replica while nothing has been received.

        ``demand`` is the request's claim on the model's fair queue (None: no tenant, band 0); its
        priority goes upstream in ``x-inferflux-priority``, and the usage the caller writes into
        ``demand.used`` before leaving corrects the tenant's share. Each attempt is one client
        span (``trace``: the request it describes) whose ``traceparent`` goes upstream; it ends
        when the exchange does.
        """
        route = await self.route(model)
        limiter = self.limiter(model, route)
        demand = demand or self.demands.default(len(body))
        headers = {**headers, PRIORITY_HEADER: str(demand.priority)}
        waiting = time.perf_counter()
        entry: Entry | None = await limiter.acquire(demand)
        demand.granted = time.perf_counter()
        demand.waited = demand.granted - waiting
        self.metrics.queue_wait.labels(model).observe(demand.waited)
        try:
            async with self._attempts(
                model, route, path, body, headers, prefix, trace, set(), self.retries
            ) as ex:
                yield ex
        finally:
            limiter.release(entry, demand.used)

    @asynccontextmanager
    async def failover(
        self,
        model: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        tried: set[str],
        trace: TracedRequest | None = None,
    ) -> AsyncIterator[Exchange]:
        """Send a stream's continuation to a replica not in ``tried`` (router/failover.py).

        The request keeps the admission slot of its first exchange, so no limiter is involved;
        every ready replica not tried yet may be attempted, and a model that has none left is
        503 at once (no hold: the client is waiting mid-stream).
        """
        route = self._known(model)
        async with self._attempts(
            model, route, path, body, headers, None, trace, tried, len(route.endpoints)
        ) as ex:
            yield ex

    @asynccontextmanager
    async def _attempts(
        self,
        model: str,
        route: ModelRoute,
        path: str,
        body: bytes,
        headers: dict[str, str],
        prefix: bytes | None,
        trace: TracedRequest | None,
        tried: set[str],
        retries: int,
    ) -> AsyncIterator[Exchange]:
        """Replicas not in ``tried`` in turn until one sends headers, up to ``retries`` more after
        the first; ``tried`` grows with each (the exchange keeps it, for a later failover)."""
        first = len(tried)
        while True:
            current = self.holder.table.models.get(model) or route
            choice = self.choose(model, current, tried, prefix)
            if choice is None:
                raise UpstreamError(
                    ErrorCode.UNAVAILABLE, f"every replica of {model!r} failed", retry_after=1
                )
            url = choice.endpoint.url
            tried.add(url)
            self.balancer.acquire(url)
            span = upstream_span(model, url, trace)
            try:
                response = await self.client.post(url + path, body, telemetry.inject(headers, span))
            except UpstreamError as error:
                telemetry.fail(span, error.code.value)
                span.end()
                self.balancer.release(url)
                self._count_failure(model, url, error)
                if error.retryable and len(tried) - first <= retries:
                    self.metrics.retries.labels(model).inc()
                    continue
                raise
            outcome = "ok" if response.status < 400 else "error"
            telemetry.record_response(span, response.status)
            try:
                # a backstop: the relays stop at the total time themselves, cleanly, a moment earlier
                async with asyncio.timeout(self.client.timeouts.total + TOTAL_GRACE_SECONDS):
                    yield Exchange(response, choice.endpoint, current, span, tried)
            except TimeoutError:
                outcome = "timeout"
                telemetry.fail(span, ErrorCode.TIMEOUT.value)
                self.metrics.upstream_errors.labels(model, ErrorCode.TIMEOUT.value).inc()
                raise UpstreamError(ErrorCode.TIMEOUT, "upstream exchange exceeded its total time") from None
            except BaseException as error:
                outcome = "aborted"
                telemetry.fail(span, telemetry.error_type(error))
                raise
            finally:
                span.end()
                if response.at_eof():
                    response.release()
                else:
                    response.close()  # the upstream sees the disconnect and stops generating
                self.balancer.release(url)
                self.metrics.balancer_outcomes.labels(model, choice.endpoint.pod or url, outcome).inc()
            return

    def _count_failure(self, model: str, url: str, error: UpstreamError) -> None:
        self.metrics.upstream_errors.labels(model, error.code.value).inc()
        self.metrics.balancer_outcomes.labels(model, url, "failed").inc()
