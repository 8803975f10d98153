"""The OpenAI-compatible adapter and a fallback chain against the project's real runtime and model.

The runtime (``python -m inferflux.runtime``, started by the runtime tests' fixture) serves the real
small GGUF model on CPU; only the two external providers in front of it are fakes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from chain_tables import Start, three_links
from fake_common import Fault

from inferflux.router.providers.openai_adapter import OpenAIAdapter

pytestmark = pytest.mark.slow
QUESTION = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8, "temperature": 0}


def _runtime_fixtures() -> ModuleType:
    """The runtime tests' fixtures (the real model, a real runtime process), shared, not copied."""
    name = "inferflux_tests_runtime_fixtures"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "runtime" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


model_path = _runtime_fixtures().model_path
runtime_url = _runtime_fixtures().runtime_url


def runtime_adapter(url: str) -> OpenAIAdapter:
    return OpenAIAdapter(
        provider="runtime", model="local", base_url=url + "/v1", api_key=None, timeout_seconds=60
    )


async def test_chat_against_the_real_runtime(runtime_url: str) -> None:
    answer = await runtime_adapter(runtime_url).chat({"model": "x", **QUESTION})
    choice = answer["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].strip()
    assert choice["finish_reason"] in ("stop", "length")
    assert 0 < answer["usage"]["completion_tokens"] <= 8


async def test_stream_against_the_real_runtime(runtime_url: str) -> None:
    chunks = [chunk async for chunk in runtime_adapter(runtime_url).chat_stream({"model": "x", **QUESTION})]
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"])
    assert text.strip()
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


async def test_429_then_timeout_is_answered_by_the_real_runtime(
    runtime_url: str, start_fake: Start, metric: Any
) -> None:
    a, b = await start_fake("openai"), await start_fake("openai")
    a.faults.append(
        Fault(429, {"error": {"message": "slow down", "type": "requests"}}, {"retry-after": "30"})
    )
    b.faults.append(Fault(hang_seconds=5))
    chain = three_links(a, b, runtime_url, runtime_timeout_seconds=60)
    before = metric("inferflux_router_fallbacks_total", from_model="second", to_model="local", code="timeout")
    served = await chain.chat({"model": "primary", **QUESTION})
    assert served.model == "local"
    assert served.body["model"] == "local"
    assert served.body["choices"][0]["message"]["content"].strip()
    assert (len(a.requests), len(b.requests)) == (1, 1)
    assert (
        metric("inferflux_router_fallbacks_total", from_model="second", to_model="local", code="timeout")
        == before + 1
    )
