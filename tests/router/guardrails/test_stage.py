"""The guardrail stage in the real router: real HTTP, the fake runtime, per-tenant policies.

The fake runtime records the bodies it received, so these tests see what left the router.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from inferflux.crds.guardrails import GuardrailPolicy
from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.crds.tenant import Scope
from inferflux.router.errors import UpstreamError
from inferflux.router.guardrails.recent import RecentVerdicts
from inferflux.router.guardrails.stage import VERDICTS, GuardrailStage
from inferflux.router.guardrails.verdicts import GuardrailMetrics
from inferflux.router.identity.principal import Principal
from inferflux.router.pipeline import Call
from inferflux.router.sse import iter_data

EVERY = [Scope.INFERENCE, Scope.MODELS_READ]
STRICT = GuardrailPolicy.model_validate(
    {
        "pii": {"email": "redact", "phone": "block", "card": "redact"},
        "maxInputChars": 2000,
        "deniedTopics": [{"name": "weapons", "terms": ["pipe bomb"]}],
    }
)


class Setup:
    def __init__(
        self,
        harness: Any,
        backend: Any,
        keys: dict[str, str],
        stage: GuardrailStage,
        holder: Any,
        registry: Any,
    ) -> None:
        self.harness, self.backend, self.keys, self.stage = harness, backend, keys, stage
        self.holder, self.registry = holder, registry

    async def post(self, tenant: str, path: str, document: dict[str, Any]) -> tuple[int, bytes]:
        headers = {"authorization": f"Bearer {self.keys[tenant]}"}
        async with self.harness.post(path, document, headers=headers) as response:
            return response.status, await response.read()


@pytest.fixture
async def setup(
    make_router: Callable[..., Any], mocks: Callable[..., Any], route: Callable[..., Any], with_keys: Any
) -> Setup:
    tenants = with_keys(
        {
            "strict": TenantPolicy(name="strict", scopes=EVERY, guardrails=STRICT),
            "plain": TenantPolicy(name="plain", scopes=EVERY),
        }
    )
    holder = tenants.holder
    registry = CollectorRegistry()
    stage = GuardrailStage(holder, GuardrailMetrics(registry))
    backend = await mocks()
    harness = await make_router(
        {"m": route([backend.url])},
        policy=holder,
        stages=[stage],
        auth=True,
        auth_secret_file=tenants.secret_file,
    )
    return Setup(harness, backend, tenants.keys, stage, holder, registry)


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


async def test_input_is_redacted_before_it_leaves_the_router(setup: Setup) -> None:
    status, _ = await setup.post(
        "strict", "/v1/chat/completions", chat("I am ann@example.org, 4111 1111 1111 1111")
    )
    assert status == 200
    sent = setup.backend.state.bodies[-1]["messages"][0]["content"]
    assert sent == "I am [EMAIL], [CARD]"


async def test_each_tenant_gets_its_own_policy(setup: Setup) -> None:
    status, _ = await setup.post(
        "plain", "/v1/chat/completions", chat("I am ann@example.org, 4111 1111 1111 1111")
    )
    assert status == 200
    assert setup.backend.state.bodies[-1]["messages"][0]["content"] == "I am ann@example.org, [CARD]"


async def test_a_blocked_input_is_a_400_that_never_reaches_the_upstream(setup: Setup) -> None:
    status, body = await setup.post("strict", "/v1/chat/completions", chat("call +44 20 7946 0958 now"))
    assert status == 400
    error = orjson.loads(body)["error"]
    assert error["code"] == "guardrail_blocked"
    assert "phone" in error["message"]
    assert b"7946" not in body
    assert setup.backend.state.requests == 0


async def test_too_large_an_input_is_a_413(setup: Setup) -> None:
    status, body = await setup.post("strict", "/v1/completions", {"model": "m", "prompt": "x" * 2001})
    assert status == 413
    assert orjson.loads(body)["error"]["code"] == "input_too_large"


async def test_a_denied_topic_is_refused(setup: Setup) -> None:
    status, body = await setup.post(
        "strict", "/v1/completions", {"model": "m", "prompt": "build a pipe bomb"}
    )
    assert (status, orjson.loads(body)["error"]["code"]) == (400, "guardrail_blocked")
    assert "weapons" in orjson.loads(body)["error"]["message"]


async def test_a_streamed_email_over_three_chunks_is_redacted(setup: Setup) -> None:
    setup.backend.state.replies = ["Write to alice", ".smith@exam", "ple.com today."]
    document = chat("hello", stream=True)
    status, raw = await setup.post("strict", "/v1/chat/completions", document)
    assert status == 200
    assert b"alice" not in raw
    assert b"example" not in raw

    async def one() -> AsyncIterator[bytes]:
        yield raw

    text = ""
    async for payload in iter_data(one()):
        if payload != b"[DONE]":
            for choice in orjson.loads(payload)["choices"]:
                text += choice["delta"].get("content") or ""
    assert text == "Write to [EMAIL] today."


async def test_a_blocked_entity_in_a_stream_ends_it_with_an_error_event(setup: Setup) -> None:
    setup.backend.state.replies = ["Call me on +44 20 ", "7946 0958", " tomorrow", " please"]
    status, raw = await setup.post("strict", "/v1/chat/completions", chat("hello", stream=True))
    assert status == 200
    assert b"7946" not in raw
    events = raw.strip().split(b"\n\n")
    assert orjson.loads(events[-1][len(b"data: ") :])["error"]["code"] == "guardrail_blocked"
    assert b"[DONE]" not in raw


async def test_a_whole_answer_is_filtered_and_a_blocked_one_refused(setup: Setup) -> None:
    setup.backend.state.replies = ["Mail ", "bob@example.org", " for details."]
    status, body = await setup.post("strict", "/v1/chat/completions", chat("hello"))
    assert status == 200
    assert orjson.loads(body)["choices"][0]["message"]["content"] == "Mail [EMAIL] for details."
    setup.backend.state.replies = ["Ring +44 20 7946 0958."]
    status, body = await setup.post("strict", "/v1/chat/completions", chat("hello"))
    assert (status, orjson.loads(body)["error"]["code"]) == (400, "guardrail_blocked")
    assert b"7946" not in body


async def test_verdicts_are_counted_without_values(setup: Setup) -> None:
    await setup.post("strict", "/v1/chat/completions", chat("I am ann@example.org"))
    await setup.post("strict", "/v1/chat/completions", chat("call +44 20 7946 0958"))
    page = generate_latest(setup.registry).decode()
    assert 'action="redact",check="pii",direction="input",subject="email"} 1.0' in page
    assert 'action="block",check="pii",direction="input",subject="phone"} 1.0' in page
    assert "ann@" not in page
    assert "7946" not in page


def principal(tenant: str) -> Principal:
    return Principal(tenant, "api_key", "k", frozenset(EVERY), None)


async def test_the_stage_leaves_its_verdicts_for_the_audit_record(setup: Setup) -> None:
    call = Call("r1", "chat", "m", chat("mail ann@example.org"), b"{}", principal=principal("strict"))
    await setup.stage.admit(call)
    assert call.document["messages"][0]["content"] == "mail [EMAIL]"
    assert orjson.loads(call.body)["messages"][0]["content"] == "mail [EMAIL]"
    await setup.stage.finish(call)
    assert call.notes[VERDICTS] == [
        {"direction": "input", "check": "pii", "subject": "email", "action": "redact", "count": 1}
    ]


async def test_a_refusal_leaves_its_verdicts_too(setup: Setup) -> None:
    call = Call("r2", "chat", "m", chat("pipe bomb"), b"{}", principal=principal("strict"))
    with pytest.raises(UpstreamError):
        await setup.stage.admit(call)
    assert call.notes[VERDICTS] == [
        {"direction": "input", "check": "topic", "subject": "weapons", "action": "block", "count": 1}
    ]


async def test_an_unchanged_request_keeps_the_clients_bytes(setup: Setup) -> None:
    call = Call("r3", "chat", "m", chat("hello"), b"client bytes", principal=principal("strict"))
    await setup.stage.admit(call)
    assert call.body == b"client bytes"


async def test_a_guard_is_compiled_once_per_policy_and_again_when_it_changes(setup: Setup) -> None:
    stage = setup.stage
    no_tenant = Call("r4", "chat", "m", chat("x"), b"{}")
    assert stage.guard_for(no_tenant) is stage.default
    unknown = Call("r5", "chat", "m", chat("x"), b"{}", principal=principal("nobody"))
    assert stage.guard_for(unknown) is stage.default
    call = Call("r6", "chat", "m", chat("x"), b"{}", principal=principal("strict"))
    first = stage.guard_for(call)
    assert stage.guard_for(call) is first
    assert first.policy == STRICT
    changed = TenantPolicy(name="strict", scopes=EVERY, guardrails=GuardrailPolicy(output=False))
    setup.holder.set_snapshot(PolicySnapshot(tenants={"strict": changed}))
    second = stage.guard_for(call)
    assert second is not first
    assert not second.policy.output
    assert stage.output(Call("r7", "embeddings", "m", {}, b"{}", principal=principal("strict"))) is None


async def test_no_value_reaches_the_logs(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    canaries = ["canary.one@example.org", "+44 20 7946 0000", "4012 8888 8888 1881"]
    caplog.set_level(logging.DEBUG)
    setup.backend.state.replies = ["answer with ", "canary.two@example.org", " inside"]
    for canary in canaries:
        await setup.post("strict", "/v1/chat/completions", chat(f"text with {canary}"))
        await setup.post("strict", "/v1/chat/completions", chat(f"text with {canary}", stream=True))
    assert caplog.records, "the router logged nothing at all: the check would prove nothing"
    for canary in [*canaries, "canary.two@example.org"]:
        assert canary not in caplog.text
        assert canary.split("@")[0] not in caplog.text


async def test_the_seeds_inference_route_filters_its_answer(setup: Setup) -> None:
    setup.backend.state.replies = ["Mail ", "bob@example.org", " today."]
    document = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    status, body = await setup.post("strict", "/api/v1/inference", document)
    assert status == 200
    assert orjson.loads(body)["output"] == "Mail [EMAIL] today."


async def test_the_seeds_stream_route_filters_its_answer(setup: Setup) -> None:
    setup.backend.state.replies = ["Mail alice", ".smith@exam", "ple.com today."]
    document = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    status, raw = await setup.post("strict", "/api/v1/inference:stream", document)
    assert status == 200
    assert b"alice" not in raw
    text = "".join(
        orjson.loads(line[len(b"data: ") :])["text"]
        for block in raw.split(b"\n\n")
        if b"event: data" in block
        for line in block.split(b"\n")
        if line.startswith(b"data: ")
    )
    assert text == "Mail [EMAIL] today."


async def test_verdicts_reach_the_consoles_ring_buffer_refusals_included(setup: Setup) -> None:
    recent = RecentVerdicts()
    stage = GuardrailStage(setup.holder, GuardrailMetrics(CollectorRegistry()), recent=recent)
    redacted = Call("r7", "chat", "m", chat("mail ann@example.org"), b"{}", principal=principal("strict"))
    await stage.admit(redacted)
    await stage.finish(redacted)
    clean = Call("r8", "chat", "m", chat("hello"), b"{}", principal=principal("strict"))
    await stage.admit(clean)
    await stage.finish(clean)
    refused = Call("r9", "chat", "m", chat("pipe bomb"), b"{}", principal=principal("strict"))
    with pytest.raises(UpstreamError):
        await stage.admit(refused)
    views = [entry.view() for entry in recent.entries()]
    assert [(view["tenant"], view["verdicts"]) for view in views] == [
        (
            "strict",
            [{"direction": "input", "check": "topic", "subject": "weapons", "action": "block", "count": 1}],
        ),
        (
            "strict",
            [{"direction": "input", "check": "pii", "subject": "email", "action": "redact", "count": 1}],
        ),
    ]
    assert "ann@example.org" not in repr(views)
