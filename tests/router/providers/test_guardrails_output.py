"""Answers from external providers pass the guardrails' output filter too (whole and streamed).

The fake provider echoes the last user message, joining its text parts with spaces: two parts
that are harmless alone ("4111 1111", "1111 1111") come back as one card number, which only the
output filter can catch.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from inferflux.crds.inferencemodel import SecretKeyRef
from inferflux.router.guardrails.stage import GuardrailStage
from inferflux.router.guardrails.verdicts import GuardrailMetrics
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.providers.secrets import env_name

KEY_REF = {"name": "provider-keys", "key": "apiKey"}
SPLIT_CARD = [{"type": "text", "text": "4111 1111"}, {"type": "text", "text": "1111 1111"}]


@pytest.fixture
async def harness(start_fake: Any, make_router: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    provider = await start_fake("openai")
    monkeypatch.setenv(env_name(SecretKeyRef(**KEY_REF)), provider.key)
    spec = {"name": "openai", "model": "gpt-x", "baseURL": provider.url + "/v1", "timeoutSeconds": 5}
    models = {"gpt": {"name": "gpt", "engine": "provider", "provider": {**spec, "apiKeySecretRef": KEY_REF}}}
    stage = GuardrailStage(PolicyHolder(), GuardrailMetrics(CollectorRegistry()))
    return await make_router(models, stages=[stage])  # auth off: the default policy redacts cards


async def post(harness: Any, path: str, document: dict[str, Any]) -> tuple[int, bytes]:
    async with harness.post(path, document) as response:
        return response.status, await response.read()


async def test_a_whole_provider_answer_is_filtered(harness: Any) -> None:
    document = {"model": "gpt", "messages": [{"role": "user", "content": SPLIT_CARD}]}
    status, body = await post(harness, "/v1/chat/completions", document)
    assert status == 200
    assert orjson.loads(body)["choices"][0]["message"]["content"] == "echo: [CARD]"


async def test_a_streamed_provider_answer_is_filtered(harness: Any) -> None:
    document = {"model": "gpt", "stream": True, "messages": [{"role": "user", "content": SPLIT_CARD}]}
    status, raw = await post(harness, "/v1/chat/completions", document)
    assert status == 200
    assert b"1111" not in raw
    assert b"[CARD]" in raw


async def test_an_anthropic_shaped_whole_answer_is_filtered(harness: Any) -> None:
    document = {"model": "gpt", "max_tokens": 32, "messages": [{"role": "user", "content": SPLIT_CARD}]}
    status, body = await post(harness, "/v1/messages", document)
    assert status == 200
    assert orjson.loads(body)["content"][0]["text"] == "echo: [CARD]"


async def test_an_anthropic_shaped_stream_is_filtered(harness: Any) -> None:
    document = {
        "model": "gpt",
        "max_tokens": 32,
        "stream": True,
        "messages": [{"role": "user", "content": SPLIT_CARD}],
    }
    status, raw = await post(harness, "/v1/messages", document)
    assert status == 200
    assert b"1111" not in raw
    text = ""
    for block in raw.split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data: "):
                event = orjson.loads(line[6:])
                if event.get("type") == "content_block_delta":
                    text += event["delta"].get("text", "")
    assert text.replace(" ", "") == "echo:[CARD]"
