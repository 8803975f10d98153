"""Provider calls as client spans: one span per attempt on an upstream, current while it runs.

While the span is current, the adapters' `outgoing_headers` carry its ``traceparent`` (and the
request's ``x-request-id``) to the provider. A stream's span ends once its first chunk arrived
(that is what an attempt is: after it, the chain no longer retries); the rest of the stream is
timed by the router's server span.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from inferflux.router import telemetry
from inferflux.router.providers.upstreams import Upstream
from inferflux.router.telemetry import genai

T = TypeVar("T")


def upstream_model(model: str) -> dict[str, str]:
    """``gen_ai.request.model``: the model id the provider was asked for."""
    return {"gen_ai.request.model": model}


def traced(
    call: Callable[[Upstream], Awaitable[T]], operation: str, body: dict[str, Any]
) -> Callable[[Upstream], Awaitable[T]]:
    """``call`` wrapped in a client span per attempt (``call`` itself while tracing is off)."""
    request = genai.traced_request(operation, body)
    if request is None:
        return call

    async def attempt(upstream: Upstream) -> T:
        adapter = upstream.adapter
        model = getattr(adapter, "model", upstream.served)
        span = telemetry.client_span(
            genai.span_name(request.operation, model),
            {
                "gen_ai.operation.name": request.operation,
                "gen_ai.provider.name": adapter.provider,
                "inferflux.served_model": upstream.served,
            },
        )
        span.defer(genai.described_request, request)
        span.defer(upstream_model, model)  # after the request's own (served) model name
        try:
            with telemetry.current(span):
                result = await call(upstream)
            if isinstance(result, dict):
                span.defer(genai.response_attributes, result)
            return result
        except BaseException as error:
            telemetry.fail(span, telemetry.error_type(error))
            raise
        finally:
            span.end()

    return attempt
