"""The audit stage of the request pipeline (router/pipeline.py): one record per admitted request.

It is the first stage, so its ``finish`` runs last, after settlement and the guardrails have left
their results in the call, and it runs before the response's last byte is sent (the front doors
call ``finish`` first): a client that saw a whole answer is a client whose request is on record.

``admit`` adds the receipt header (``x-inferflux-receipt: <chain>:<random id>``; the same id is in
the record's ``receipt``) and computes the prompt's keyed hash from the request as the client sent
it, before any later stage rewrites it. When the tenant's policy sets ``audit.recordPrompts`` and a
redaction function is wired (the PII filter's), the redacted text is kept as well; without one, no
text is kept whatever the policy says. If the log has failed (disk full, fsync error), ``admit``
refuses with 503 rather than serve requests that leave no record.

Requests refused before the pipeline (no or bad credential, unknown route, malformed body) leave
no request record.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from inferflux.router.audit.log import AuditError, AuditLog
from inferflux.router.audit.prompt_hash import PromptHasher
from inferflux.router.audit.records import RequestRecord, Verdict
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.pipeline import Call, OutputFilter
from inferflux.router.policy.effective import PolicyHolder

log = logging.getLogger("inferflux.router.audit")

NOTE = "audit"
RECEIPT_HEADER = b"x-inferflux-receipt"
# Where other stages leave what the record shows: the guardrails' verdicts and the settled cost.
VERDICTS_NOTE = "verdicts"
COST_NOTE = "cost_micros"
# The fields of a request that carry the prompt, by route (chat, completions, embeddings, messages).
PROMPT_FIELDS = ("system", "messages", "prompt", "input")

Redactor = Callable[[str], str]


def prompt_of(document: dict[str, Any]) -> str:
    """The prompt-bearing fields of a request as canonical JSON: what the hash (and text) covers."""
    fields = {name: document[name] for name in PROMPT_FIELDS if name in document}
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True)
class Admitted:
    """What ``admit`` worked out for ``finish``."""

    receipt: str
    prompt_hmac: str
    prompt_text: str | None


def verdicts_of(call: Call) -> list[Verdict]:
    """The guardrails' verdicts, as far as they parse (a malformed one is dropped, not fatal)."""
    found = []
    for item in call.notes.get(VERDICTS_NOTE) or ():
        try:
            found.append(Verdict.model_validate(item))
        except ValidationError:
            log.warning("audit: a verdict of request %s did not parse; left out", call.request_id)
    return found


class AuditStage:
    """Writes the audit record of every admitted request."""

    name = "audit"

    def __init__(
        self,
        audit_log: AuditLog,
        hasher: PromptHasher,
        policy: PolicyHolder,
        redact: Redactor | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.log = audit_log
        self.hasher = hasher
        self.policy = policy
        self.redact = redact
        self.clock = clock

    def _records_text(self, tenant: str | None) -> bool:
        found = self.policy.current.tenants.get(tenant) if tenant is not None else None
        audit = found.audit if found is not None else None
        return self.redact is not None and audit is not None and audit.record_prompts

    async def admit(self, call: Call) -> None:
        """Refuse when the log is broken; else hash the prompt and announce the receipt."""
        if self.log.failed:
            raise UpstreamError(ErrorCode.UNAVAILABLE, "the audit log is unavailable; retry later")
        receipt = f"{self.log.chain}:{secrets.token_hex(12)}"
        prompt = prompt_of(call.document)
        tenant = call.tenant
        text = self.redact(prompt) if self.redact is not None and self._records_text(tenant) else None
        call.notes[NOTE] = Admitted(receipt, self.hasher.digest(tenant, prompt), text)
        call.headers.append((RECEIPT_HEADER, receipt.encode()))

    async def finish(self, call: Call) -> None:
        """Append the record (one write(2): a crash after this cannot lose it)."""
        admitted: Admitted | None = call.notes.get(NOTE)
        if admitted is None:
            return
        usage = call.usage
        principal = call.principal
        cost = call.notes.get(COST_NOTE)
        record = RequestRecord(
            time=self.clock(),
            request_id=call.request_id,
            receipt=admitted.receipt,
            tenant=call.tenant,
            credential=principal.kind if principal is not None else None,
            key_id=call.key_id,
            route=call.route,
            model=call.model,
            upstream=call.upstream or None,
            status=call.status,
            error=call.error or None,
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            completion_tokens=usage.completion_tokens if usage is not None else None,
            cost_micros=cost if isinstance(cost, int) else None,
            latency_ms=round((time.perf_counter() - call.started) * 1000, 3),
            verdicts=verdicts_of(call),
            prompt_hmac=admitted.prompt_hmac,
            prompt_text=admitted.prompt_text,
        )
        try:
            self.log.append(record)
        except AuditError as error:
            log.error("audit: request %s not recorded: %s", call.request_id, error)

    def output(self, call: Call) -> OutputFilter | None:
        """The audit stage does not touch answers."""
        return None
