"""The prefix cache on an agent-like workload: a long shared system prompt and growing histories."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from .conftest import metric

pytestmark = pytest.mark.slow

TOOLS = ["search", "read_file", "write_file", "run_tests", "open_issue", "comment", "deploy", "rollback"]
SYSTEM = "You are a coding agent working in a large repository. Follow these rules.\n" + "\n".join(
    f"Rule {n}: before you call {tool}, state which file you will touch and why; after {tool} "
    f"returns, summarise the result in one sentence and decide the next step."
    for n, tool in enumerate(TOOLS * 2, 1)
)
AGENTS = 3
TURNS = 4


async def agent(client: openai.AsyncOpenAI, name: str) -> list[tuple[int, int]]:
    """One agent's conversation: each turn resends the whole history plus a new user message."""
    history: list[Any] = [{"role": "system", "content": SYSTEM}]
    counts = []
    for turn in range(TURNS):
        history.append({"role": "user", "content": f"Agent {name}, step {turn}: what do you do next?"})
        reply = await client.chat.completions.create(
            model="smollm2-135m", messages=history, max_tokens=24, temperature=0
        )
        assert reply.usage is not None
        assert reply.usage.prompt_tokens_details is not None
        counts.append((reply.usage.prompt_tokens, reply.usage.prompt_tokens_details.cached_tokens or 0))
        history.append({"role": "assistant", "content": reply.choices[0].message.content})
    return counts


async def test_an_agent_workload_hits_the_prefix_cache(chat_runtime_url: str) -> None:
    prompt_before = metric(chat_runtime_url, "inferflux_runtime_prompt_tokens_total")
    reused_before = metric(chat_runtime_url, "inferflux_runtime_prefix_cache_reused_tokens_total")
    client = openai.AsyncOpenAI(base_url=chat_runtime_url + "/v1", api_key="unused", timeout=300)
    runs = await asyncio.gather(*(agent(client, name) for name in "ABC"[:AGENTS]))
    await client.close()
    counts = [pair for run in runs for pair in run]
    print(f"(prompt tokens, cached tokens) per agent and turn: {runs}")
    assert min(prompt for prompt, _ in counts) > 300  # the shared system prompt is long
    reported = sum(cached for _, cached in counts) / sum(prompt for prompt, _ in counts)
    prompt = metric(chat_runtime_url, "inferflux_runtime_prompt_tokens_total") - prompt_before
    reused = metric(chat_runtime_url, "inferflux_runtime_prefix_cache_reused_tokens_total") - reused_before
    measured = reused / prompt
    print(f"prefix cache hit ratio on {AGENTS} agents x {TURNS} turns: {measured:.1%}")
    assert measured == pytest.approx(reported)  # what clients are told is what the engine did
    assert measured > 0.6
