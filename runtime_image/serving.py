"""What serves requests: the loaded model as one unit, and the leases requests hold on it.

A hot swap replaces the whole :class:`Serving` in one assignment. Each API request takes the
current one when it arrives and uses only that one until its response is sent, so its tokens,
its engine and the model name in its reply all come from the same model. A request holds a lease
for that whole time, streaming included; the swapper unloads the old model only once its leases
are back to zero.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from inferflux.runtime.chat import ChatTemplate
from inferflux.runtime.embeddings import Embedder
from inferflux.runtime.engine import Engine, Job
from inferflux.runtime.errors import APIError
from inferflux.runtime.memory import DEFAULT_HEADROOM_FACTOR, MemoryReading, model_footprint, read_memory
from inferflux.runtime.metrics import RuntimeMetrics
from inferflux.runtime.model import Model
from inferflux.runtime.protocol import max_tokens, sampling_params, stop_strings


@dataclass(eq=False)
class Serving:
    """One loaded model with its engine, embedder, chat template and the name clients see."""

    model: Model
    engine: Engine
    embedder: Embedder
    model_id: str
    template: ChatTemplate
    footprint: int  # bytes it needs loaded: weights and KV cache (memory.model_footprint)
    leases: int = field(default=0, init=False)

    @classmethod
    def of(cls, model: Model, engine: Engine, embedder: Embedder, model_id: str) -> Serving:
        """A Serving for ``model``, with the chat template its metadata carries."""
        template = ChatTemplate(
            model.metadata("tokenizer.chat_template"),
            model.token_text(model.bos_id),
            model.token_text(model.eos_id),
        )
        footprint = model_footprint(model.path.stat().st_size, engine.n_ctx)
        return cls(model, engine, embedder, model_id, template, footprint)

    @contextlib.contextmanager
    def lease(self) -> Iterator[Serving]:
        """Hold this Serving: it is not unloaded until every lease is given back."""
        self.leases += 1
        try:
            yield self
        finally:
            self.leases -= 1

    def tokenize_prompt(self, text: str) -> list[int]:
        """Prompt tokens, adding BOS only when the rendered text does not already start with it."""
        bos = self.template.bos_token
        tokens = self.model.tokenize(text, add_special=not (bos and text.startswith(bos)))
        if not tokens:  # a model that adds no BOS has nothing to start decoding from
            raise APIError(400, "the prompt is empty: there is no token to start from", param="prompt")
        if len(tokens) >= self.engine.n_ctx:
            raise APIError(
                400,
                f"the prompt has {len(tokens)} tokens; the context holds {self.engine.n_ctx}",
                code="context_length_exceeded",
                param="messages",
            )
        return tokens

    def job(
        self,
        prompt: list[int],
        body: dict[str, Any],
        grammar: str | None,
        stops: tuple[str, ...],
        priority: int = 0,
    ) -> Job:
        """A job for ``prompt`` with the request's limits, sampling and priority."""
        limit = max_tokens(body) or self.engine.n_ctx
        return Job(
            prompt=prompt,
            max_tokens=min(limit, self.engine.n_ctx - len(prompt)),
            sampling=sampling_params(body, grammar),
            stops=stop_strings(body) + stops,
            priority=priority,
        )

    def close(self) -> None:
        """Stop the engine and free the model (after the last lease is given back)."""
        self.engine.close()
        self.embedder.close()
        self.model.close()


class Runtime:
    """The pod's state: what serves now, whether it is ready, its metrics and memory guard."""

    def __init__(
        self,
        serving: Serving,
        metrics: RuntimeMetrics,
        memory: Callable[[], MemoryReading] = read_memory,
        headroom_factor: float = DEFAULT_HEADROOM_FACTOR,
        default_system_prompt: str = "",
    ) -> None:
        self.serving = serving
        # The model's spec, not its weights: it stays across an in-place swap.
        self.default_system_prompt = default_system_prompt
        self.metrics = metrics
        self.memory = memory
        self.headroom_factor = headroom_factor  # a model fits when headroom >= factor x footprint
        self.ready = False
        self.created = int(time.time())

    def install(self, serving: Serving) -> None:
        """Serve ``serving`` from the next request on; one assignment, so none sees half a swap."""
        self.serving = serving


class Leased:
    """ASGI wrapper: the request holds a lease on the current Serving until its response is sent.

    The Serving is put in ``request.state.serving``; handlers use only that one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime = scope["app"].state.runtime
        with runtime.serving.lease() as serving:
            scope.setdefault("state", {})["serving"] = serving
            await self.app(scope, receive, send)
