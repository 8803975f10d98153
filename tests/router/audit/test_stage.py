"""The audit stage: through the real router (a mock OpenAI backend), and on calls directly."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from inferflux.crds.audit import AuditPolicy
from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.crds.tenant import Scope
from inferflux.router.audit.log import AuditError, AuditLog, Options
from inferflux.router.audit.prompt_hash import PromptHasher
from inferflux.router.audit.segments import segments
from inferflux.router.audit.stage import AuditStage, prompt_of
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.identity.principal import Principal
from inferflux.router.pipeline import Call, OutputFilter, Usage
from inferflux.router.policy.effective import PolicyHolder
from tests.router.audit.conftest import Keys, request

CANARY = "canary-prompt-5b9e1f"
CHAT = {"model": "m", "messages": [{"role": "user", "content": f"hello {CANARY}"}], "max_tokens": 3}


def records(audit: AuditLog) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for path in segments(audit.chain_dir)
        for line in path.read_bytes().splitlines()
        if b'"kind":"request"' in line
    ]


@pytest.fixture
async def audit(tmp_path: Path, keys: Keys) -> AsyncIterator[AuditLog]:
    log = AuditLog(tmp_path / "audit", "router-0", keys.signer(), Options())
    log.open()
    log.start()
    yield log
    await log.close()


HASHER = PromptHasher(os.urandom(32))


class Refuse:
    """A later stage that says no (a budget, a guardrail)."""

    name = "refuse"

    async def admit(self, call: Call) -> None:
        raise UpstreamError(ErrorCode.INSUFFICIENT_QUOTA, "no budget left")

    async def finish(self, call: Call) -> None:
        return None

    def output(self, call: Call) -> OutputFilter | None:
        return None


async def test_a_streamed_request_is_recorded_before_its_last_byte(
    audit: AuditLog, mocks: Any, make_router: Any, route: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stage = AuditStage(audit, HASHER, PolicyHolder())
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])}, stages=[stage])
    async with harness.post("/v1/chat/completions", {**CHAT, "stream": True}) as response:
        assert response.status == 200
        receipt = response.headers["x-inferflux-receipt"]
        body = await response.read()
        # The whole answer is here: its record must be already (no waiting, no polling).
        (record,) = records(audit)
    assert body.endswith(b"data: [DONE]\n\n")
    assert receipt.startswith("router-0:")
    assert record["receipt"] == receipt
    assert (record["status"], record["route"], record["model"], record["upstream"]) == (200, "chat", "m", "m")
    assert record["request_id"] == response.headers["x-request-id"]
    assert record["prompt_hmac"] == HASHER.digest(None, prompt_of(CHAT | {"stream": True}))
    assert "prompt_text" not in record
    assert record["latency_ms"] > 0
    written = b"".join(path.read_bytes() for path in segments(audit.chain_dir))
    assert CANARY.encode() not in written
    assert CANARY not in caplog.text  # nor in any log line of the router


async def test_a_whole_answer_and_an_upstream_error_are_recorded(
    audit: AuditLog, mocks: Any, make_router: Any, route: Any
) -> None:
    backend = await mocks()
    harness = await make_router(
        {"m": route([backend.url])}, stages=[AuditStage(audit, HASHER, PolicyHolder())]
    )
    async with harness.post("/v1/chat/completions", CHAT) as response:
        assert response.status == 200
        await response.read()
    backend.state.fail_status = 500
    async with harness.post("/v1/chat/completions", CHAT) as response:
        assert response.status == 500
        await response.read()
    first, second = records(audit)
    assert (first["status"], first["prompt_tokens"], first["completion_tokens"]) == (200, 3, 3)
    assert second["status"] == 500
    assert second["error"]


async def test_a_refusal_by_a_later_stage_is_recorded_with_its_receipt(
    audit: AuditLog, make_router: Any, route: Any
) -> None:
    harness = await make_router(
        {"m": route(["http://127.0.0.1:9"])}, stages=[AuditStage(audit, HASHER, PolicyHolder()), Refuse()]
    )
    async with harness.post("/v1/chat/completions", CHAT) as response:
        assert response.status == 429
        receipt = response.headers["x-inferflux-receipt"]
    (record,) = records(audit)
    assert (record["status"], record["error"], record["receipt"]) == (429, "insufficient_quota", receipt)


def call_of(tenant: str | None = "team-a", document: dict[str, Any] | None = None) -> Call:
    principal = (
        Principal(tenant, "api_key", "abcdefghijklmnop", frozenset({Scope.INFERENCE}), None)
        if tenant
        else None
    )
    document = document or CHAT
    return Call("req-1", "chat", "m", document, orjson.dumps(document), principal)


def holder_with(record_prompts: bool) -> PolicyHolder:
    holder = PolicyHolder()
    policy = TenantPolicy(name="team-a", audit=AuditPolicy(record_prompts=record_prompts))
    holder.set_snapshot(PolicySnapshot(tenants={"team-a": policy}))
    return holder


def redact(text: str) -> str:
    return text.replace(CANARY, "[SECRET]")


@pytest.mark.parametrize(
    ("record_prompts", "redactor", "kept"),
    [(True, redact, True), (False, redact, False), (True, None, False)],
)
async def test_prompt_text_only_when_the_tenant_opts_in_and_then_redacted(
    audit: AuditLog, record_prompts: bool, redactor: Any, kept: bool
) -> None:
    stage = AuditStage(audit, HASHER, holder_with(record_prompts), redactor)
    call = call_of()
    await stage.admit(call)
    call.status = 200
    await stage.finish(call)
    (record,) = records(audit)
    assert record["tenant"] == "team-a"
    assert (record["credential"], record["key_id"]) == ("api_key", "abcdefghijklmnop")
    assert record["prompt_hmac"] == HASHER.digest("team-a", prompt_of(CHAT))
    if kept:
        assert "[SECRET]" in record["prompt_text"]
        assert CANARY not in record["prompt_text"]
    else:
        assert "prompt_text" not in record


async def test_the_hash_covers_the_prompt_as_the_client_sent_it(audit: AuditLog) -> None:
    stage = AuditStage(audit, HASHER, PolicyHolder())
    call = call_of(None)
    await stage.admit(call)
    call.replace_document(
        {**CHAT, "messages": [{"role": "user", "content": "hello [SECRET]"}]}
    )  # a redaction
    await stage.finish(call)
    (record,) = records(audit)
    assert record["prompt_hmac"] == HASHER.digest(None, prompt_of(CHAT))
    assert "tenant" not in record


async def test_verdicts_usage_and_cost_from_the_other_stages(audit: AuditLog) -> None:
    stage = AuditStage(audit, HASHER, PolicyHolder())
    call = call_of()
    await stage.admit(call)
    call.status, call.usage, call.upstream = 200, Usage(7, 5), "pod-0"
    call.notes["cost_micros"] = 1234
    call.notes["verdicts"] = [
        {"direction": "input", "check": "pii", "subject": "email", "action": "redact", "count": 2},
        {"no": "check"},  # malformed: left out, the record is still written
    ]
    await stage.finish(call)
    (record,) = records(audit)
    assert record["verdicts"] == [
        {"direction": "input", "check": "pii", "subject": "email", "action": "redact", "count": 2}
    ]
    assert (record["prompt_tokens"], record["completion_tokens"], record["cost_micros"]) == (7, 5, 1234)


async def test_a_failed_log_refuses_new_requests(tmp_path: Path, keys: Keys) -> None:
    log = AuditLog(tmp_path, "r", keys.signer())
    log.open()
    os.close(log._fd)
    log._fd = os.open("/dev/full", os.O_WRONLY)  # every write now fails with ENOSPC, as on a full disk
    stage = AuditStage(log, HASHER, PolicyHolder())
    call = call_of()
    await stage.admit(call)
    await stage.finish(call)  # logged, never raised: the answer is already on its way
    assert log.failed
    with pytest.raises(UpstreamError) as refused:
        await stage.admit(call_of())
    assert refused.value.status == 503
    with pytest.raises(AuditError, match="failed earlier"):
        log.append(request(2))
    await log.close()
