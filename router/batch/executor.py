"""Running one task through the router's normal request path, in process.

A task is sent to the same handler as an HTTP request to ``/v1/chat/completions`` (or the other two
endpoints): `OpenAIRoutes.proxy`, so the pipeline's stages (budgets, guardrails, audit) apply and
the route's runtime or provider chain serves it. The request id is ``<batch id>:<custom_id>``, which
makes the budget's charge idempotent across retries and redeliveries, and the request carries
``x-inferflux-priority: -10``, the lowest band, for the scheduler to honour (until a scheduler
reads it, batch tasks queue with interactive requests like any other).

The batch owner's tenant is looked up in the current policy for every task: a tenant suspended or
deleted after the batch was created gets ``401`` answers, not service.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

import orjson

from inferflux.crds.tenant import Scope
from inferflux.router.asgi import Message
from inferflux.router.batch.files import ANONYMOUS
from inferflux.router.batch.queue import TaskMessage
from inferflux.router.batch.records import request_id
from inferflux.router.errors import UpstreamError
from inferflux.router.identity.authenticate import _AUTHENTICATOR, PRINCIPAL, Authenticator
from inferflux.router.identity.failures import AuthFailure
from inferflux.router.identity.principal import Principal, within
from inferflux.router.openai_api import OpenAIRoutes
from inferflux.router.policy.effective import PolicyHolder

PRIORITY_HEADER = b"x-inferflux-priority"
BATCH_PRIORITY = b"-10"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the request path answered: the status and the body (JSON, or text if it was not)."""

    status: int
    body: Any


class RouterExecutor:
    """Sends tasks to the router's OpenAI front door, as a principal of the batch's tenant."""

    def __init__(self, routes: OpenAIRoutes, policy: PolicyHolder, auth: Authenticator | None) -> None:
        self.routes = routes
        self.policy = policy
        self.auth = auth  # None: authentication is off

    def principal(self, tenant: str) -> Principal | None:
        """The tenant's principal under the current policy (None when authentication is off)."""
        if self.auth is None or tenant == ANONYMOUS:
            return None
        found = self.policy.current.tenants.get(tenant)
        principal = within(found, "batch", tenant)
        # The batch was authorised when created; its tasks may use the tenant's inference rights.
        return Principal(
            principal.tenant, "batch", tenant, frozenset({Scope.INFERENCE}), principal.models, math.inf
        )

    async def run(self, task: TaskMessage) -> Answer:
        """The task's answer; a refusal anywhere on the path is an answer with its status too."""
        try:
            principal = self.principal(task.tenant)
        except AuthFailure as failure:
            return Answer(failure.status, failure.body())
        rid = request_id(task.batch, task.custom_id)
        body = task.body.encode()
        scope: dict[str, Any] = {
            "type": "http",
            "method": "POST",
            "path": task.url,
            "headers": [(b"content-type", b"application/json"), (PRIORITY_HEADER, BATCH_PRIORITY)],
            "inferflux.request_id": rid,
            "inferflux.headers": [],
        }
        if principal is not None:
            scope[PRINCIPAL] = principal
            scope[_AUTHENTICATOR] = self.auth  # permit_model counts its refusals there
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await _forever()
            return {"type": "http.disconnect"}  # pragma: no cover - never reached

        status = 0
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.routes.proxy(scope, receive, send)
        except UpstreamError as error:
            return Answer(error.status, error.body())
        payload = b"".join(chunks)
        try:
            return Answer(status, orjson.loads(payload))
        except orjson.JSONDecodeError:
            return Answer(status, payload.decode(errors="replace"))


async def _forever() -> None:
    """A client that never leaves: the watcher waits here until the request is done and cancels it."""
    await asyncio.Event().wait()
