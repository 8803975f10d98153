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


UNTRUSTED_ROLES = frozenset({"user", "tool", "function"})


def _clean_content(content: Any, where: str, audit: list[Sanitised]) -> Any:
    """A message's content: a string, or OpenAI content parts whose ``text`` parts are cleaned."""
    if isinstance(content, str):
        return checked(content, where, audit)
    if isinstance(content, list):
        return [
            {**part, "text": checked(part["text"], f"{where}[{i}]", audit)}
            if isinstance(part, dict) and isinstance(part.get("text"), str)
            else part
            for i, part in enumerate(content)
        ]
    return content


def sanitise_chat(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], tuple[Sanitised, ...]]:
    """OpenAI chat messages with the content of untrusted roles (user, tool) sanitised.

    Roles are kept as they are: the caller decides who may send ``system``; what this guarantees is
    that text inside a user or tool message cannot pose as another role or smuggle instructions.
    Raises BlockedInputError when a message is refused.
    """
    audit: list[Sanitised] = []
    cleaned = [
        {**m, "content": _clean_content(m.get("content"), f"messages[{i}]", audit)}
        if m.get("role") in UNTRUSTED_ROLES
        else m
        for i, m in enumerate(messages)
    ]
    return cleaned, tuple(audit)
