"""Acceptance: spoken audio through the router to the real runtime (llama.cpp on the small model).

flite says a question; the client streams it as 20 ms PCM16 frames; the router's VAD finds the
utterance, PocketSphinx transcribes it, the ``voice`` prompt goes in front, and the real model's
answer comes back as ``partial`` then ``final`` frames. Barge-in is checked on the runtime itself:
its ``running_sequences`` gauge drops to zero once ``barge_in`` arrives.
"""

from __future__ import annotations

import asyncio
import importlib
import urllib.request
from pathlib import Path

import pytest

from inferflux.prompts.resolver import PromptResolver
from inferflux.prompts.sources import DirectorySource

# Every wait below is bounded; a hang fails here with a stack dump, long before the suite-wide 600 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
speech = importlib.import_module("inferflux_tests_speech")
RealtimeClient = importlib.import_module("inferflux_tests_realtime_client").RealtimeClient
MANIFESTS = Path(__file__).resolve().parents[3] / "prompts" / "manifests"


def running_sequences(runtime_url: str) -> float:
    with urllib.request.urlopen(runtime_url + "/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("inferflux_runtime_running_sequences "):
                return float(line.split()[1])
    raise AssertionError("the runtime exports no running_sequences gauge")


async def test_a_spoken_question_gets_a_real_answer(runtime_url, make_router, route) -> None:
    prompts = PromptResolver([DirectorySource(MANIFESTS)])
    harness = await make_router({"gemma": route([runtime_url])}, prompts=prompts)
    client = RealtimeClient(harness.session, harness.url)
    await client.open(model="gemma", max_tokens=24, temperature=0)
    spoken = speech.silence(300) + speech.speak_pcm16("what is your name") + speech.silence(700)
    for seq, chunk in enumerate(speech.frames(spoken)):
        await client.send(speech.audio_frame(chunk, seq))
        await asyncio.sleep(0.002)
    final = await client.until("final", 180)
    kinds = [frame["type"] for frame in client.frames if frame["type"] in ("partial", "final")]
    assert kinds[0] == "partial"
    assert kinds[-1] == "final"
    assert final["transcript"] == "what is your name"  # PocketSphinx heard the words
    partials = "".join(frame["text"] for frame in client.frames if frame["type"] == "partial")
    assert final["text"] == partials
    assert final["text"].strip()
    metrics = await client.until("metrics")
    assert metrics["endpoint"] == "vad"
    assert metrics["completion_tokens"] > 0
    await client.close()


async def test_barge_in_stops_generation_on_the_runtime(runtime_url, make_router, route) -> None:
    harness = await make_router({"gemma": route([runtime_url])})
    client = RealtimeClient(harness.session, harness.url)
    # Greedy, the small model repeats this request until max_tokens: about 20 s of generation at
    # 40 tokens a second, so the answer is still streaming when the user speaks, and a runtime that
    # kept generating after barge_in would still be at it when the deadline below passes.
    await client.open(model="gemma", max_tokens=800, temperature=0)
    await client.send({"type": "control", "payload": {"action": "text", "text": "Count to one thousand."}})
    await client.until("partial", 180)
    assert running_sequences(runtime_url) == 1
    for seq, chunk in enumerate(speech.frames(speech.speak_pcm16("wait"))[:10]):
        await client.send(speech.audio_frame(chunk, seq))
    barge = await client.until("barge_in")
    assert barge["reason"] == "speech"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while running_sequences(runtime_url) != 0:
        assert loop.time() < deadline, "the runtime kept generating after barge_in"
        await asyncio.sleep(0.05)
    await client.close()
