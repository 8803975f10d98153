"""Guardrail cost on the request path (`make bench-guardrails`), guardrails on and off side by side.

Measures, in one run on this machine:
- the input verdict (`Guard.check_input`) on a 4 KB chat prompt, English and German (non-ASCII text
  takes the slower Unicode path of the injection rules), with every entity type redacted, the
  injection rules and a topic list on, against the default policy and an inert one (guardrails off);
- the streamed output filter on a 1,000-chunk answer, per chunk;
- the labelled corpus table (recall and false-positive rate per entity type).

    python tests/bench/bench_guardrails.py
    python tests/bench/bench_guardrails.py --rounds 5000
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from inferflux.crds.guardrails import GuardrailPolicy
from inferflux.router.guardrails.guard import Guard
from inferflux.router.guardrails.verdicts import Tally

ROOT = Path(__file__).resolve().parents[2]

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


def raise_priority() -> str:
    """Run at a real-time priority when allowed, as the other benches do: less preemption noise."""
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))
        return "SCHED_RR 10"
    return "normal priority"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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
    for language, paragraph in (("English", ENGLISH), ("German", GERMAN)):
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
    print("\n## Labelled corpus\n")
    print(corpus_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
