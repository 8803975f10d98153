"""Verdicts: counted per request, recorded for audit, exported as a counter without values."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from inferflux.crds.guardrails import GuardrailPolicy
from inferflux.router.guardrails.guard import Guard
from inferflux.router.guardrails.verdicts import Check, Direction, GuardrailMetrics, Tally, Verdict


def test_a_tally_adds_up_and_records() -> None:
    tally = Tally()
    assert not tally
    tally.add(Direction.INPUT, Check.PII, "email", "redact")
    tally.add(Direction.INPUT, Check.PII, "email", "redact", 2)
    tally.add(Direction.OUTPUT, Check.PII, "card", "block")
    assert tally.verdicts() == [
        Verdict(Direction.INPUT, Check.PII, "email", "redact", 3),
        Verdict(Direction.OUTPUT, Check.PII, "card", "block", 1),
    ]
    assert tally.verdicts()[0].record() == {
        "direction": "input",
        "check": "pii",
        "subject": "email",
        "action": "redact",
        "count": 3,
    }


def test_the_counter_carries_types_and_actions_never_values() -> None:
    registry = CollectorRegistry()
    metrics = GuardrailMetrics(registry)
    tally = Tally()
    canaries = ["canary.person@example.org", "4111 1111 1111 1111", "ghp_CanaryCanaryCanary0123456789abcdef"]
    Guard(GuardrailPolicy.model_validate({"pii": {"email": "redact"}})).check_input(
        {"messages": [{"role": "user", "content": " ".join(canaries)}]}, tally
    )
    metrics.observe(tally.verdicts())
    page = generate_latest(registry).decode()
    labels = 'action="redact",check="pii",direction="input",subject="email"'
    assert f"inferflux_router_guardrail_verdicts_total{{{labels}}} 1.0" in page
    assert 'subject="card"' in page
    assert 'subject="secret"' in page
    for canary in canaries:
        assert canary not in page
        assert canary.split("@")[0] not in page
