"""One conversational turn through the router's normal request path.

A transcript (or a fused XR question) becomes an ``/api/v1/inference`` request: the managed prompt
(``voice`` or ``xr``, when the router serves prompts) goes in front, the pipeline's stages admit it
(budgets, guardrails, audit), the dispatcher picks a runtime, and the answer streams back through
the stages' output filters. Cancelling the task that iterates `Turn.pieces` leaves the upstream
exchange, which closes the upstream request: that is what stops generation on barge-in.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from inferflux.router.contract import InferenceRequest
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.identity.failures import forbidden
from inferflux.router.identity.principal import Principal
from inferflux.router.inference_api import InferenceRoutes, _through, text_of, upstream_call
from inferflux.router.pipeline import Call, Usage
from inferflux.router.sse import DONE, iter_data
from inferflux.router.upstream import classify_status


@dataclass
class Turn:
    """A request to answer ``messages`` (chat) for ``principal`` with ``model``."""

    principal: Principal | None
    model: str
    messages: list[dict[str, str]]
    route: str  # "voice" or "xr": what the audit record and traces call the call
    prompt_id: str | None = None
    variables: dict[str, Any] | None = None
    max_tokens: int = 128
    temperature: float | None = None  # None: the model's default
    request_id: str = field(default_factory=lambda: secrets.token_hex(16))
    # Picks the prompt's A/B variant: the session's id, so that one conversation keeps one variant
    # (and the runtime can reuse the cached prompt across its turns); the request id when empty.
    variant_key: str = ""
    usage: Usage | None = None


class TurnRunner:
    """Runs turns with the router's inference routes (their prompts, dispatcher and pipeline)."""

    def __init__(self, inference: InferenceRoutes) -> None:
        self.inference = inference

    async def pieces(self, turn: Turn) -> AsyncIterator[str]:
        """The answer's text as it streams; `UpstreamError` when refused or failed."""
        if turn.principal is not None and not turn.principal.may_use(turn.model):
            raise forbidden("model")
        prompts = self.inference.prompts
        request = InferenceRequest.model_validate(
            {
                "model": turn.model,
                "messages": turn.messages,
                "max_tokens": turn.max_tokens,
                "temperature": turn.temperature,  # None is left out of what goes upstream
                **(
                    {"prompt_id": turn.prompt_id, "variables": turn.variables}
                    if prompts is not None and turn.prompt_id
                    else {}
                ),
            }
        )
        request = await self.inference.with_prompt(request, turn.variant_key or turn.request_id)
        dispatcher, pipeline = self.inference.dispatcher, self.inference.pipeline
        await dispatcher.route(request.model)
        path, body = upstream_call(request, stream=True)
        call = Call(
            turn.request_id, turn.route, request.model, orjson.loads(body), body, turn.principal, True
        )
        await pipeline.admit(call)
        headers = {"content-type": "application/json", "x-request-id": turn.request_id}
        usage: Any = None
        try:
            async with dispatcher.exchange(call.model, path, call.body, headers) as ex:
                call.status, call.upstream = ex.response.status, ex.route.name
                if ex.response.status >= 400:
                    raise classify_status(ex.response.status)
                filters = pipeline.outputs(call)
                async for data in iter_data(_through(filters, ex.response.iter_any())):
                    if data == DONE:
                        break
                    event = orjson.loads(data)
                    if "error" in event:
                        raise UpstreamError(ErrorCode.UPSTREAM_ERROR, "upstream reported an error mid-stream")
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or []:
                        text = text_of(choice)
                        if text:
                            yield text
        except UpstreamError as error:
            call.fail(error)
            raise
        finally:
            call.usage = turn.usage = Usage.from_openai(usage)
            await pipeline.finish(call)
