"""Mid-stream failover: the pure pieces (router/failover.py), then the relay against fake replicas.

The fake replicas (mock_openai.py) drop their connection mid-stream with ``break_after``; the
acceptance tests at the end kill a real runtime process mid-stream.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import orjson
import pytest

from inferflux.router.failover import (
    Transcript,
    closing,
    continuation,
    exhausted,
    read_progress,
    skip_opening,
)

CHAT = [{"role": "user", "content": "Say hello."}]


def chat_event(content: str | None = None, finish: str | None = None, role: bool = False) -> bytes:
    delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
    if content is not None:
        delta["content"] = content
    event = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(event) + b"\n\n"


def test_a_transcript_relays_whole_events_only_and_keeps_them() -> None:
    transcript = Transcript(1 << 10)
    first, second = chat_event("Hel"), chat_event("lo")
    assert transcript.take(first[:10]) == b""
    assert transcript.take(first[10:] + second[:5]) == first
    assert transcript.take(second[5:]) == second
    assert transcript.data == first + second
    transcript.take(b"data: {")
    assert transcript.rest() == b"data: {"
    assert transcript.rest() == b""


def test_a_transcript_over_its_limit_keeps_nothing_and_says_so() -> None:
    transcript = Transcript(100)
    event = chat_event("x" * 80)
    assert transcript.take(event) == event  # the client still gets everything
    assert transcript.overflowed
    assert transcript.data == b""


def test_progress_reads_the_streamed_text_and_state() -> None:
    data = chat_event(role=True) + chat_event("Hello") + b"\r\n" + chat_event(" world")
    progress = read_progress(data, "chat")
    assert (progress.text, progress.content_events) == ("Hello world", 2)
    assert progress.finish_reason is None
    assert not progress.done
    assert progress.envelope == {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
    }
    finished = read_progress(data + chat_event(finish="stop") + b"data: [DONE]\n\n", "chat")
    assert finished.finish_reason == "stop"
    assert finished.done
    completion = b'data: {"choices":[{"index":0,"text":"The sky"}]}\n\n' * 2
    assert read_progress(completion, "completions").text == "The skyThe sky"


def test_a_chat_continues_as_a_final_assistant_message_counting_its_tokens() -> None:
    document = {"model": "m", "messages": CHAT, "max_tokens": 10, "stream": True, "temperature": 0}
    progress = read_progress(chat_event("Hello") + chat_event(" there"), "chat")
    body = continuation(document, "chat", progress)
    assert body == {
        **document,
        "messages": [*CHAT, {"role": "assistant", "content": "Hello there"}],
        "continue_final_message": True,
        "max_tokens_counts_final_message": True,  # the runtime counts the text's tokens itself
    }
    assert document["messages"] == CHAT  # the original request is left as it was


def test_a_completion_continues_with_the_text_appended_to_its_prompt() -> None:
    progress = read_progress(b'data: {"choices":[{"index":0,"text":" blue"}]}\n\n', "completions")
    body = continuation({"model": "m", "prompt": ["The sky is"], "max_tokens": 4}, "completions", progress)
    assert body == {"model": "m", "prompt": "The sky is blue", "max_tokens": 3}
    assert continuation({"model": "m", "prompt": [1, 2]}, "completions", progress) is None


def test_nothing_said_yet_sends_the_same_request_again() -> None:
    document = {"model": "m", "messages": CHAT, "stream": True}
    assert continuation(document, "chat", read_progress(chat_event(role=True), "chat")) == document


@pytest.mark.parametrize(
    "extra",
    [
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"n": 2},
    ],
)
def test_requests_a_grammar_or_several_choices_shape_cannot_be_continued(extra: dict[str, Any]) -> None:
    progress = read_progress(chat_event("{"), "chat")
    assert continuation({"model": "m", "messages": CHAT, **extra}, "chat", progress) is None


def test_a_finished_answer_is_closed_rather_than_continued() -> None:
    progress = read_progress(chat_event("a") + chat_event("b"), "chat")
    assert exhausted({"max_tokens": 2}, progress)
    assert not exhausted({"max_tokens": 3}, progress)
    assert not exhausted({}, progress)
    ending = closing(progress, "chat", "length")
    final, done = ending.split(b"\n\n")[:2]
    assert orjson.loads(final[6:])["choices"] == [
        {"index": 0, "delta": {}, "finish_reason": "length", "logprobs": None}
    ]
    assert done == b"data: [DONE]"
    already = read_progress(chat_event("a", finish="stop"), "chat")
    assert closing(already, "chat", "length") == b"data: [DONE]\n\n"


def test_the_continued_streams_role_event_is_dropped_once() -> None:
    role, text = chat_event(role=True), chat_event("x")
    assert skip_opening(role + text) == (text, True)
    assert skip_opening(role[:20]) == (role[:20], False)
    assert skip_opening(text + role) == (text + role, True)  # only an opening role event goes


# The relay, against fake replicas: ``A`` breaks after three pieces, ``B`` carries on.

PIECES = ["Hello", ",", " wor", "ld", "!", " Bye"]


def sse_events(raw: bytes) -> list[Any]:
    """The ``data`` payloads of a stream, JSON-decoded, ``[DONE]`` as the string."""
    found: list[Any] = []
    for block in raw.split(b"\n\n"):
        if block.startswith(b"data: "):
            payload = block[6:]
            found.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return found


def streamed_text(events: list[Any], key: str = "content") -> str:
    parts = []
    for event in events:
        if isinstance(event, dict):
            for choice in event.get("choices", []):
                parts.append((choice.get("delta") or {}).get(key) or choice.get("text") or "")
    return "".join(parts)


async def two_replicas(mocks: Any, make_router: Any, route: Any, **second: Any) -> tuple[Any, Any, Any]:
    """A router over replicas A (breaks after 3 pieces) and B; A is the one the balancer picks first."""
    a = await mocks(name="a", replies=PIECES[:4], break_after=3)
    b = await mocks(name="b", **({"replies": PIECES[3:]} | second))
    harness = await make_router({"m": route([a.url, b.url])})
    harness.router.dispatcher.balancer.acquire(b.url)  # least-outstanding now picks A first
    return a, b, harness


async def stream(harness: Any, path: str, body: dict[str, Any]) -> tuple[list[Any], float]:
    started = time.monotonic()
    async with harness.post(path, {**body, "stream": True}) as response:
        assert response.status == 200
        raw = await response.read()
    return sse_events(raw), time.monotonic() - started


def failovers(harness: Any, outcome: str, model: str = "m") -> float:
    value = harness.router.metrics.registry.get_sample_value(
        "inferflux_router_failovers_total", {"model": model, "outcome": outcome}
    )
    return value or 0.0


async def test_a_chat_stream_continues_on_the_other_replica(mocks, make_router, route) -> None:
    a, b, harness = await two_replicas(mocks, make_router, route)
    body = {"model": "m", "messages": CHAT, "max_tokens": 10, "temperature": 0}
    events, _ = await stream(harness, "/v1/chat/completions", body)
    assert streamed_text(events) == "".join(PIECES)  # nothing lost, nothing repeated
    assert not any(isinstance(event, dict) and "error" in event for event in events)
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert events[-1] == "[DONE]"
    assert (a.state.requests, b.state.requests) == (1, 1)
    assert b.state.bodies == [
        {
            **body,
            "stream": True,
            "messages": [*CHAT, {"role": "assistant", "content": "Hello, wor"}],
            "continue_final_message": True,
            "max_tokens_counts_final_message": True,
        }
    ]
    assert b.state.request_ids == a.state.request_ids  # the same request, as the runtime logs see it
    assert failovers(harness, "continued") == 1


async def test_a_continuation_that_breaks_too_goes_on_to_a_third_replica(mocks, make_router, route) -> None:
    a = await mocks(name="a", replies=PIECES[:4], break_after=3)
    b = await mocks(name="b", replies=PIECES[3:], break_after=2)
    c = await mocks(name="c", replies=PIECES[5:])
    harness = await make_router({"m": route([a.url, b.url, c.url])})
    balancer = harness.router.dispatcher.balancer
    balancer.acquire(b.url)  # A first, then B (less loaded than C), then C
    for _ in range(2):
        balancer.acquire(c.url)
    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="unused", max_retries=0)
    stream = await client.chat.completions.create(model="m", messages=CHAT, max_tokens=10, stream=True)
    pieces, reasons = [], []
    async for chunk in stream:  # the official SDK reads the joined stream as one
        pieces.append(chunk.choices[0].delta.content or "")
        reasons.append(chunk.choices[0].finish_reason)
    await client.close()
    assert "".join(pieces) == "".join(PIECES)
    assert reasons[-1] == "length"
    assert [mock.state.requests for mock in (a, b, c)] == [1, 1, 1]
    assert c.state.bodies[0]["messages"][-1] == {"role": "assistant", "content": "Hello, world!"}
    assert failovers(harness, "continued") == 2


async def test_a_completion_stream_continues_from_its_prompt_and_text(mocks, make_router, route) -> None:
    _, b, harness = await two_replicas(mocks, make_router, route)
    events, _ = await stream(harness, "/v1/completions", {"model": "m", "prompt": "Say:", "max_tokens": 10})
    assert streamed_text(events, "text") == "".join(PIECES)
    assert b.state.bodies[0]["prompt"] == "Say:Hello, wor"
    assert b.state.bodies[0]["max_tokens"] == 7


async def test_with_one_replica_the_stream_ends_with_an_error_event_at_once(
    mocks, make_router, route
) -> None:
    only = await mocks(name="a", replies=PIECES, break_after=3)
    harness = await make_router({"m": route([only.url])}, total_timeout_seconds=30.0)
    events, elapsed = await stream(harness, "/v1/chat/completions", {"model": "m", "messages": CHAT})
    assert streamed_text(events) == "Hello, wor"
    assert events[-1]["error"]["code"] == "upstream_error"
    assert elapsed < 30.0  # well inside the total timeout: the break is seen, not waited out


async def test_when_the_other_replica_is_gone_too_the_client_gets_the_error_event(
    mocks, make_router, route
) -> None:
    _, b, harness = await two_replicas(mocks, make_router, route)
    await b.stop()
    events, _ = await stream(harness, "/v1/chat/completions", {"model": "m", "messages": CHAT})
    assert streamed_text(events) == "Hello, wor"
    assert "no other replica could continue it" in events[-1]["error"]["message"]
    assert failovers(harness, "no_replica") == 1


async def test_a_json_answer_is_not_continued_mid_grammar(mocks, make_router, route) -> None:
    _, b, harness = await two_replicas(mocks, make_router, route)
    body = {"model": "m", "messages": CHAT, "response_format": {"type": "json_object"}}
    events, _ = await stream(harness, "/v1/chat/completions", body)
    assert "cannot be continued" in events[-1]["error"]["message"]
    assert b.state.requests == 0
    assert failovers(harness, "not_continuable") == 1


async def test_a_replica_refusing_the_continuation_ends_the_stream_with_the_error(
    mocks, make_router, route
) -> None:
    _, _, harness = await two_replicas(mocks, make_router, route, fail_status=400)
    events, _ = await stream(harness, "/v1/chat/completions", {"model": "m", "messages": CHAT})
    assert "refused to continue" in events[-1]["error"]["message"]
    assert failovers(harness, "refused") == 1


async def test_a_stream_that_had_all_its_tokens_is_closed_not_continued(mocks, make_router, route) -> None:
    _, b, harness = await two_replicas(mocks, make_router, route)
    events, _ = await stream(
        harness, "/v1/chat/completions", {"model": "m", "messages": CHAT, "max_tokens": 3}
    )
    assert streamed_text(events) == "Hello, wor"
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert events[-1] == "[DONE]"
    assert b.state.requests == 0
    assert failovers(harness, "closed") == 1


async def test_failover_off_keeps_the_error_event(mocks, make_router, route) -> None:
    a = await mocks(name="a", replies=PIECES, break_after=3)
    b = await mocks(name="b")
    harness = await make_router({"m": route([a.url, b.url])}, failover_buffer_bytes=0)
    harness.router.dispatcher.balancer.acquire(b.url)
    events, _ = await stream(harness, "/v1/chat/completions", {"model": "m", "messages": CHAT})
    assert events[-1]["error"]["code"] == "upstream_error"
    assert b.state.requests == 0


# Acceptance: real runtime processes (llama.cpp on the bundled model), one killed mid-stream.

STORY = {
    "model": "gemma",
    "messages": [{"role": "user", "content": "Write a poem about the sea."}],
    "max_tokens": 64,
    "temperature": 0,
    "logit_bias": {"1": -100, "106": -100, "212": -100},  # no end-of-generation: all 64 tokens
}


async def stream_and_kill(harness: Any, victim: Any, after: int) -> tuple[list[Any], str]:
    """Stream ``STORY`` through the router, SIGKILL ``victim`` once ``after`` content events arrived;
    the events, and the text the client held when the kill was sent."""
    raw, held = b"", ""
    async with asyncio.timeout(120):  # a hang fails the test instead of stalling it
        async with harness.post("/v1/chat/completions", {**STORY, "stream": True}) as response:
            assert response.status == 200
            async for chunk in response.content.iter_any():
                raw += chunk
                if not held and raw.count(b'"content":"') > after:
                    victim.kill()
                    held = streamed_text(sse_events(raw[: raw.rfind(b"\n\n") + 2]))
    return sse_events(raw), held


@pytest.mark.slow
async def test_a_runtime_killed_mid_stream_is_continued_by_the_other_replica(
    runtime_url, runtime_process, make_router, route
) -> None:
    victim_url, victim = await asyncio.to_thread(runtime_process)
    harness = await make_router({"gemma": route([victim_url, runtime_url])})
    async with harness.session.post(runtime_url + "/v1/chat/completions", json=STORY) as response:
        whole = await response.json()
    expected = whole["choices"][0]["message"]["content"]
    assert whole["usage"]["completion_tokens"] == 64  # long enough to be cut in the middle
    harness.router.dispatcher.balancer.acquire(runtime_url)  # the victim serves the stream first
    events, held = await stream_and_kill(harness, victim, after=8)
    assert victim.wait(10) == -9
    assert held
    assert len(held) < len(expected)  # the kill came mid-answer
    assert not any(isinstance(event, dict) and "error" in event for event in events)
    assert streamed_text(events) == expected  # greedy: the one answer, nothing repeated or lost
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert events[-1] == "[DONE]"
    assert failovers(harness, "continued", "gemma") == 1


@pytest.mark.slow
async def test_a_runtime_killed_mid_stream_without_another_replica_gives_the_error_event(
    runtime_process, make_router, route
) -> None:
    victim_url, victim = await asyncio.to_thread(runtime_process)
    harness = await make_router({"gemma": route([victim_url])}, total_timeout_seconds=60.0)
    events, held = await stream_and_kill(harness, victim, after=4)
    assert held
    assert events[-1]["error"]["code"] == "upstream_error"
    assert "[DONE]" not in events
    assert streamed_text(events).startswith(held)
