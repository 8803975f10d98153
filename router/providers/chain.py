"""Fallback chains: serve a model from the first link that can, across local runtimes and providers.

The chain of a served name is the name itself followed by its route's ``fallback`` list. Each link
is tried in order; within a link, an upstream whose breaker is open (or held by a strict
``retry-after``) is skipped without a call, and a refused request (rate limit, overload,
unavailable) may be retried on the same upstream when the backoff wait fits the budget. The chain
falls through to the next link only on a retryable failure (`backoff.falls_through`); a client's
own mistake (bad request, auth, context length, content filter) is answered at once.

Streams fall through only until their first chunk: `open_stream` waits for it before returning,
so the caller can set ``x-inferflux-served-by`` before any byte goes to the client, and a failure
after that is raised to the caller as it is, never retried.

Every answer names the served model that produced it (the ``model`` field and `Served.model`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from inferflux.crds.routing import RoutingTable
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.providers.backoff import falls_through
from inferflux.router.providers.base import Body
from inferflux.router.providers.metrics import ProviderMetrics
from inferflux.router.providers.tracing import traced
from inferflux.router.providers.upstreams import Pool, Upstream

SERVED_BY_HEADER = "x-inferflux-served-by"
T = TypeVar("T")
C = TypeVar("C")


@dataclass(frozen=True)
class Served:
    """A complete answer and the served name of the link that produced it."""

    model: str
    body: Body


def chain_of(table: RoutingTable, served: str) -> list[str]:
    """The served names to try for ``served``: itself, then its fallbacks (once each, known ones only)."""
    route = table.models.get(served)
    if route is None:
        raise UpstreamError(ErrorCode.NOT_FOUND, f"model {served!r} does not exist", param="model")
    names = [served]
    for name in route.fallback:
        if name in table.models and name not in names:
            names.append(name)
    return names


async def first_answer(candidates: Sequence[C], attempt: Callable[[C], Awaitable[T]]) -> T:
    """``attempt`` on each candidate in turn until one answers.

    A failure that may fall through moves on to the next candidate, any other is raised at once;
    when every candidate failed, the last failure is raised.
    """
    last: UpstreamError | None = None
    for candidate in candidates:
        try:
            return await attempt(candidate)
        except UpstreamError as error:
            if not falls_through(error):
                raise
            last = error
    assert last is not None, "first_answer needs at least one candidate"
    raise last


class FallbackChain:
    """Runs requests along fallback chains over one routing table (swap it with `update`)."""

    def __init__(
        self,
        table: RoutingTable,
        pool: Pool,
        *,
        deadline_seconds: float = 600.0,
        metrics: ProviderMetrics | None = None,
    ) -> None:
        self.table = table
        self.pool = pool
        self.deadline_seconds = deadline_seconds
        self.metrics = metrics or ProviderMetrics()

    def update(self, table: RoutingTable) -> None:
        """Use a new routing table; breakers and connections are kept."""
        self.table = table

    async def aclose(self) -> None:
        """Close every upstream connection (router shutdown)."""
        await self.pool.aclose()

    async def chat(self, body: Body) -> Served:
        """A complete chat completion for ``body["model"]``."""
        served, answer = await self._run(body, lambda upstream: upstream.adapter.chat(body))
        return Served(served, {**answer, "model": served})

    async def embeddings(self, body: Body) -> Served:
        """Embeddings for ``body["model"]``."""
        served, answer = await self._run(
            body, lambda upstream: upstream.adapter.embeddings(body), "embeddings"
        )
        return Served(served, {**answer, "model": served})

    async def open_stream(self, body: Body) -> ChainStream:
        """A stream whose first chunk has arrived; `ChainStream.model` says which link serves it."""
        stream: list[AsyncIterator[Body]] = []
        upstreams: list[Upstream] = []

        async def first_chunk(upstream: Upstream) -> Body:
            chunks = aiter(upstream.adapter.chat_stream(body))
            try:
                first = await anext(chunks)
            except StopAsyncIteration:
                raise UpstreamError(ErrorCode.UPSTREAM_ERROR, "upstream closed the stream empty") from None
            except BaseException:
                await chunks.aclose()  # type: ignore[attr-defined]
                raise
            stream.append(chunks)
            upstreams.append(upstream)
            return first

        served, first = await self._run(body, first_chunk)
        return ChainStream(served, first, stream[-1], lambda error: self.failed(upstreams[-1], error))

    async def chat_stream(self, body: Body) -> AsyncIterator[Body]:
        """Chunks of a chat completion stream (use `open_stream` to learn the served model first)."""
        stream = await self.open_stream(body)
        async for chunk in stream:
            yield chunk

    async def _run(
        self, body: Body, call: Callable[[Upstream], Awaitable[T]], operation: str = "chat"
    ) -> tuple[str, T]:
        """``call`` on the first link that answers; raises the last link's error when none does.

        Every attempt is a client span (router/providers/tracing.py) when tracing is on.
        """
        requested = body.get("model")
        if not isinstance(requested, str) or not requested:
            raise UpstreamError(ErrorCode.BAD_REQUEST, "model is required", param="model")
        call = traced(call, operation, body)
        deadline = time.monotonic() + self.deadline_seconds
        names = chain_of(self.table, requested)

        async def link(index: int) -> tuple[str, T]:
            served = names[index]
            try:
                return served, await self._link(served, call, deadline)
            except UpstreamError as error:
                if falls_through(error) and index + 1 < len(names):
                    self.metrics.fallbacks.labels(served, names[index + 1], error.code.value).inc()
                raise

        return await first_answer(range(len(names)), link)

    async def _link(self, served: str, call: Callable[[Upstream], Awaitable[T]], deadline: float) -> T:
        """``call`` on the first upstream of one link whose breaker lets it through."""
        upstreams = await self.pool.upstreams(served, self.table.models[served])
        if not upstreams:
            raise UpstreamError(ErrorCode.UNAVAILABLE, f"model {served!r} has no ready endpoint")

        async def through_breaker(upstream: Upstream) -> T:
            if not upstream.breaker.allow():
                self.metrics.breaker_skips.labels(upstream.adapter.upstream).inc()
                self.metrics.breaker_state.labels(upstream.adapter.upstream).set(upstream.breaker.state)
                raise UpstreamError(ErrorCode.UNAVAILABLE, f"model {served!r} is cooling down after failures")
            return await self._attempts(upstream, call, deadline)

        return await first_answer(upstreams, through_breaker)

    async def _attempts(
        self, upstream: Upstream, call: Callable[[Upstream], Awaitable[T]], deadline: float
    ) -> T:
        """``call`` on one upstream, retried per its backoff policy; the breaker sees every outcome."""
        attempt = 0
        while True:
            budget = min(upstream.timeout_seconds, deadline - time.monotonic())
            if budget <= 0:
                upstream.breaker.release()
                raise UpstreamError(ErrorCode.TIMEOUT, "the request deadline passed")
            try:
                async with asyncio.timeout(budget):
                    result = await call(upstream)
            except (UpstreamError, TimeoutError) as raised:
                error = raised if isinstance(raised, UpstreamError) else self._timed_out(upstream)
                self.failed(upstream, error)
                delay = upstream.policy.delay(attempt, error)
                retry = upstream.policy.should_retry(attempt, error, streamed=False)
                if (
                    not retry
                    or delay > upstream.policy.max_wait_seconds
                    or time.monotonic() + delay >= deadline
                ):
                    raise error from None
                await asyncio.sleep(delay)
                attempt += 1
                if not upstream.breaker.allow():
                    raise error from None
                continue
            except BaseException:
                upstream.breaker.release()
                raise
            upstream.breaker.success()
            self._record(upstream, "ok")
            return result

    def _record(self, upstream: Upstream, code: str) -> None:
        """Count one call's outcome and publish the upstream's breaker state."""
        adapter = upstream.adapter
        self.metrics.requests.labels(adapter.provider, adapter.upstream, code).inc()
        if code != "ok":
            self.metrics.errors.labels(adapter.provider, code).inc()
        self.metrics.breaker_state.labels(adapter.upstream).set(upstream.breaker.state)

    @staticmethod
    def _timed_out(upstream: Upstream) -> UpstreamError:
        return UpstreamError(ErrorCode.TIMEOUT, f"{upstream.adapter.provider} timed out")

    def failed(self, upstream: Upstream, error: UpstreamError) -> None:
        """Account a failure: breaker, strict retry-after hold, metrics, and a stale key dropped."""
        upstream.breaker.failure(error.code)
        upstream.breaker.hold(upstream.policy.hold_seconds(error))
        if error.code is ErrorCode.AUTH and upstream.secret is not None:
            self.pool.secrets.invalidate(*upstream.secret)
        self._record(upstream, error.code.value)


class ChainStream:
    """The rest of a stream after its first chunk; failures past this point are never retried."""

    def __init__(
        self, model: str, first: Body, rest: AsyncIterator[Body], failed: Callable[[UpstreamError], None]
    ) -> None:
        self.model = model
        self._first: Body | None = first
        self._rest = rest
        self._failed = failed

    def __aiter__(self) -> ChainStream:
        return self

    async def __anext__(self) -> Body:
        if self._first is not None:
            chunk, self._first = self._first, None
            return self._stamp(chunk)
        try:
            chunk = await anext(self._rest)
        except UpstreamError as error:
            # Bytes already went to the client: account the failure, then let the router end the stream.
            self._failed(error)
            raise
        return self._stamp(chunk)

    def _stamp(self, chunk: Body) -> Body:
        return {**chunk, "model": self.model}

    async def aclose(self) -> None:
        """Stop reading the upstream (the client went away)."""
        await self._rest.aclose()  # type: ignore[attr-defined]


def served_by_header(model: str) -> tuple[bytes, bytes]:
    """The response header naming the served model, for the router."""
    return SERVED_BY_HEADER.encode(), model.encode()
