"""Acceptance: the official openai and anthropic SDKs with an API key, through the router with auth
on, against the real runtime serving the small model."""

from __future__ import annotations

import anthropic
import openai
import pytest

from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.router.identity import api_keys
from inferflux.router.policy.effective import PolicyHolder

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Name three colours."}]


async def test_sdks_with_an_api_key_on_the_real_runtime(runtime_url, make_router, route, tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"q" * 32)
    holder = PolicyHolder()
    holder.set_snapshot(PolicySnapshot(tenants={"team": TenantPolicy(name="team", models=["gemma"])}))
    key, record = api_keys.generate(api_keys.load_hasher(str(secret)), "team")
    holder.put_key(record.id, record)
    harness = await make_router(
        {"gemma": route([runtime_url], name="gemma")}, policy=holder, auth=True, auth_secret_file=str(secret)
    )

    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key=key, max_retries=0)
    answer = await client.chat.completions.create(
        model="gemma", messages=MESSAGES, max_tokens=6, temperature=0
    )
    assert answer.choices[0].message.content
    assert answer.usage is not None
    assert answer.usage.completion_tokens > 0
    assert [model.id async for model in client.models.list()] == ["gemma"]
    await client.close()
    wrong = openai.AsyncOpenAI(
        base_url=harness.url + "/v1", api_key="ifx_" + "a" * 16 + "_" + "b" * 43, max_retries=0
    )
    with pytest.raises(openai.AuthenticationError) as refused:
        await wrong.chat.completions.create(model="gemma", messages=MESSAGES, max_tokens=2)
    assert refused.value.code == "invalid_token"
    await wrong.close()

    claude = anthropic.AsyncAnthropic(base_url=harness.url, api_key=key, max_retries=0)
    message = await claude.messages.create(model="gemma", max_tokens=6, messages=MESSAGES)
    assert message.content[0].type == "text"
    assert message.content[0].text
    assert message.usage.output_tokens > 0
    await claude.close()
    stranger = anthropic.AsyncAnthropic(base_url=harness.url, api_key="not-a-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        await stranger.messages.create(model="gemma", max_tokens=2, messages=MESSAGES)
    await stranger.close()
