"""The guardrail stage of the request pipeline (router/pipeline.py).

``admit`` applies the caller's tenant's guardrails to the request's text before it leaves the
router: it may redact it (the redacted document is what goes upstream, to a runtime or an external
provider alike) or refuse it (400 ``guardrail_blocked``, 413 ``input_too_large``). ``output`` gives
the filter for the answer, streamed or whole. When the tenant's policy sets ``modelCheck``, ``admit``
then asks the judge model for a verdict on the (redacted) user text (router/guardrails/judge.py)
and refuses on "yes", or, without a verdict, as the tenant's ``onTimeout`` says. ``finish``
counts the verdicts in ``inferflux_router_guardrail_verdicts_total`` and leaves them, as records,
in ``call.notes["verdicts"]`` for the audit record, and in the admin console's ring buffer
(router/guardrails/recent.py) when one is given. Refusals are logged with the request id, the
tenant and the refused types, rules or topics, never the text.

A caller without a tenant (authentication off) or whose tenant the policy does not know gets the
default `GuardrailPolicy`. A tenant's `Guard` is compiled once and kept until its policy object
changes (the policy is immutable and swapped whole, so identity says it changed).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from inferflux.crds.guardrails import GuardrailPolicy, ModelCheck, OnTimeout
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.guardrails.guard import Guard, refusal_message
from inferflux.router.guardrails.judge import ModelJudge, Outcome, judged_text
from inferflux.router.guardrails.recent import RecentVerdicts
from inferflux.router.guardrails.verdicts import Check, Direction, GuardrailMetrics, Tally
from inferflux.router.pipeline import Call, OutputFilter
from inferflux.router.policy.effective import PolicyHolder

log = logging.getLogger("inferflux.router.guardrails")

NOTE = "guardrails"
VERDICTS = "verdicts"
# Bodies larger than this are checked in a worker thread, so that the event loop keeps serving
# other requests meanwhile (the check takes about a millisecond per 4 KB).
OFFLOAD_BYTES = 64 * 1024
# Answers of these routes carry no text.
NO_TEXT_ROUTES = frozenset({"embeddings"})


@dataclass
class Checked:
    """What the stage keeps for one call between ``admit`` and ``finish``."""

    guard: Guard
    tally: Tally


class GuardrailStage:
    """PII filter, injection rules, size limit and topic deny list for every inference request."""

    name = "guardrails"

    def __init__(
        self,
        policy: PolicyHolder,
        metrics: GuardrailMetrics,
        judge: ModelJudge | None = None,
        recent: RecentVerdicts | None = None,
    ) -> None:
        self.policy = policy
        self.metrics = metrics
        self.recent = recent  # the admin console's ring buffer of verdicts (types and actions only)
        self.judge = judge  # None: a tenant's model check never gets a verdict (its onTimeout applies)
        self.default = Guard(GuardrailPolicy())
        self._guards: dict[str, tuple[GuardrailPolicy, Guard]] = {}

    def guard_for(self, call: Call) -> Guard:
        """The compiled guardrails of ``call``'s tenant."""
        tenant = call.tenant
        found = self.policy.current.tenants.get(tenant) if tenant is not None else None
        if tenant is None or found is None:
            return self.default
        cached = self._guards.get(tenant)
        if cached is not None and cached[0] is found.guardrails:
            return cached[1]
        guard = Guard(found.guardrails)
        self._guards[tenant] = (found.guardrails, guard)
        return guard

    async def admit(self, call: Call) -> None:
        """Apply the input guardrails; refuse by raising `UpstreamError`."""
        guard = self.guard_for(call)
        checked = call.notes[NOTE] = Checked(guard, Tally())
        model_check = guard.policy.model_check
        if guard.inert and model_check is None:
            return
        try:
            if len(call.body) > OFFLOAD_BYTES:
                document = await asyncio.to_thread(guard.check_input, call.document, checked.tally)
            else:
                document = guard.check_input(call.document, checked.tally)
            if model_check is not None:
                await self._ask_model(call, model_check, document, checked.tally)
        except UpstreamError as error:
            # The pipeline runs finish only for stages whose admit returned: record the refusal here.
            log.info("request %s of tenant %s refused: %s", call.request_id, call.tenant, error.message)
            self._record(call, checked)
            raise
        if document is not call.document:
            call.replace_document(document)

    async def _ask_model(self, call: Call, check: ModelCheck, document: dict[str, Any], tally: Tally) -> None:
        """Put the user text to the judge model; refuse on "yes", or as onTimeout says without a verdict."""
        text = judged_text(document)
        if not text:
            return
        if self.judge is None:
            outcome = Outcome.UNAVAILABLE
        else:
            outcome = await self.judge.judge(check, text, call.request_id)
        if outcome.is_verdict:
            block = outcome is Outcome.UNSAFE
        else:
            block = OnTimeout(check.on_timeout) is OnTimeout.BLOCK
        tally.add(Direction.INPUT, Check.MODEL, outcome.value, "block" if block else "allow")
        if block:
            raise UpstreamError(ErrorCode.GUARDRAIL_BLOCKED, refusal_message({Check.MODEL: [outcome.value]}))

    def output(self, call: Call) -> OutputFilter | None:
        """The filter for ``call``'s answer, or None when its tenant's answers are not scanned."""
        checked: Checked | None = call.notes.get(NOTE)
        if checked is None or call.route in NO_TEXT_ROUTES:
            return None
        return checked.guard.output_filter(checked.tally, stream=call.stream)

    async def finish(self, call: Call) -> None:
        """Count the verdicts and hand them to the audit record."""
        checked: Checked | None = call.notes.get(NOTE)
        if checked is None:
            return
        blocked = sorted(
            {v.subject for v in checked.tally.verdicts() if v.direction == "output" and v.action == "block"}
        )
        if blocked:
            log.info(
                "request %s of tenant %s: answer blocked (%s)",
                call.request_id,
                call.tenant,
                ", ".join(blocked),
            )
        self._record(call, checked)

    def _record(self, call: Call, checked: Checked) -> None:
        verdicts = checked.tally.verdicts()
        self.metrics.observe(verdicts)
        if self.recent is not None:
            self.recent.add(call.tenant, verdicts)
        call.notes[VERDICTS] = [verdict.record() for verdict in verdicts]
