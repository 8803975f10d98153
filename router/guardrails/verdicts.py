"""Verdicts: what the guardrails decided about one request, counted, without any of the text.

A verdict names the direction (input or output), the check (pii, injection, topic, size, model),
its subject (an entity type, an injection rule, a topic name, the size limit, the model check's
outcome), the action taken, and how many times. The audit record stores the list; the Prometheus
counter counts the same tuples.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import CollectorRegistry

from inferflux.router.labelled import Counter as PromCounter
from inferflux.router.metrics import PREFIX


class Direction(StrEnum):
    """Which way the text was going."""

    INPUT = "input"
    OUTPUT = "output"


class Check(StrEnum):
    """Which guardrail decided."""

    PII = "pii"
    INJECTION = "injection"
    TOPIC = "topic"
    SIZE = "size"
    MODEL = "model"


@dataclass(frozen=True, order=True)
class Verdict:
    """One decision, counted: e.g. (input, pii, email, redact, 2)."""

    direction: Direction
    check: Check
    subject: str
    action: str
    count: int = 1

    def record(self) -> dict[str, object]:
        """The verdict as the audit log stores it."""
        return {
            "direction": self.direction.value,
            "check": self.check.value,
            "subject": self.subject,
            "action": self.action,
            "count": self.count,
        }


class Tally:
    """Verdicts of one request as they accumulate."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[Direction, Check, str, str]] = Counter()

    def add(self, direction: Direction, check: Check, subject: str, action: str, count: int = 1) -> None:
        """Count ``count`` more decisions of one kind."""
        self._counts[direction, check, subject, action] += count

    def verdicts(self) -> list[Verdict]:
        """Everything counted so far, in a stable order."""
        return sorted(Verdict(*key, count) for key, count in self._counts.items())

    def __bool__(self) -> bool:
        return bool(self._counts)


class GuardrailMetrics:
    """``inferflux_router_guardrail_verdicts_total{direction, check, subject, action}``: labels only
    name types, rules and topics, never text."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.verdicts = PromCounter(
            PREFIX + "guardrail_verdicts",
            "Guardrail decisions by direction, check, subject (entity type, rule or topic) and action.",
            ["direction", "check", "subject", "action"],
            registry=registry,
        )

    def observe(self, verdicts: list[Verdict]) -> None:
        """Count one request's verdicts."""
        for verdict in verdicts:
            self.verdicts.labels(verdict.direction, verdict.check, verdict.subject, verdict.action).inc(
                verdict.count
            )
