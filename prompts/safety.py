"""Applying anti-injection sanitisation to everything a request puts into a prompt.

User text becomes the ``user`` message; string variables are placed inside the system text, so they
are sanitised the same way (a variable is data, never instructions). Verdicts other than ``allow``
are logged for audit as rule names and a hash of the input, never the text.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from inferflux.prompts.metrics import SANITISED
from inferflux.prompts.sanitise import Sanitised, Verdict, sanitise

audit_log = logging.getLogger("inferflux.audit.prompts")

SHORT = 256  # texts up to this length (variables, mostly) have their outcome remembered


@lru_cache(maxsize=4096)
def sanitise_short(text: str) -> Sanitised:
    """``sanitise`` for short texts, which repeat across requests (names, languages, labels)."""
    return sanitise(text)


class BlockedInputError(ValueError):
    """User text or a variable was refused as an injection attempt."""

    def __init__(self, where: str, outcome: Sanitised) -> None:
        super().__init__(f"{where} refused as a prompt injection attempt: {', '.join(outcome.reasons)}")
        self.outcome = outcome


def checked(text: str, where: str, audit: list[Sanitised]) -> str:
    """Sanitise one text, record the verdict, and refuse it when blocked."""
    outcome = sanitise_short(text) if len(text) <= SHORT else sanitise(text)
    SANITISED[outcome.verdict.value].inc()
    if outcome.verdict is not Verdict.ALLOW:
        audit_log.info("prompt input %s", outcome.verdict.value, extra={"where": where, **outcome.audit()})
        audit.append(outcome)
    if outcome.verdict is Verdict.BLOCKED:
        raise BlockedInputError(where, outcome)
    return outcome.text


def _clean(value: Any, where: str, audit: list[Sanitised]) -> Any:
    if isinstance(value, str):
        return checked(value, where, audit)
    if isinstance(value, list):
        return [_clean(item, f"{where}[{i}]", audit) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: _clean(item, f"{where}.{key}", audit) for key, item in value.items()}
    return value


def sanitise_inputs(
    variables: dict[str, Any], user: str | None
) -> tuple[dict[str, Any], str | None, tuple[Sanitised, ...]]:
    """Sanitised variables, sanitised user text, and the non-``allow`` outcomes for audit."""
    audit: list[Sanitised] = []
    clean_variables = {name: _clean(value, f"variables.{name}", audit) for name, value in variables.items()}
    clean_user = checked(user, "user", audit) if user is not None else None
    return clean_variables, clean_user, tuple(audit)
