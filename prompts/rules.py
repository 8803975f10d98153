"""Loading the anti-injection rules from data (``injection_rules.yaml``).

The rules are data so that a new attack pattern is a one-line change that needs no code; this
module only turns that YAML into compiled, typed rules and fails loudly (with the rule's name) when
the file is malformed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

RULES_PATH = Path(__file__).resolve().parent / "injection_rules.yaml"


class RulesError(ValueError):
    """The rules file is malformed."""


@dataclass(frozen=True)
class Rule:
    """One pattern of injection, matched on the folded skeleton of user text."""

    name: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class RuleSet:
    """Everything the sanitiser needs, compiled."""

    removed: dict[int, str]  # code point -> reason
    ignored: frozenset[int]
    confusables: dict[str, str]  # look-alike character -> Latin letter
    rules: tuple[Rule, ...]
    block_after: int


def code_points(ranges: list[str]) -> set[int]:
    """``["200B", "2060-2064"]`` as a set of code points."""
    points: set[int] = set()
    for item in ranges:
        low, _, high = str(item).partition("-")
        points.update(range(int(low, 16), int(high or low, 16) + 1))
    return points


def build_rules(document: dict[str, Any]) -> RuleSet:
    """Compile a decoded rules document."""
    try:
        removed = {cp: reason for reason, spans in document["removed"].items() for cp in code_points(spans)}
        confusables = {
            char: latin for latin, chars in document.get("confusables", {}).items() for char in chars
        }
        rules = tuple(Rule(item["name"], re.compile(item["pattern"])) for item in document["rules"])
        return RuleSet(
            removed=removed,
            ignored=frozenset(code_points(document.get("ignored", []))),
            confusables=confusables,
            rules=rules,
            block_after=int(document.get("block_after", 3)),
        )
    except (KeyError, TypeError, ValueError, re.error) as error:
        raise RulesError(f"malformed injection rules: {error!r}") from None


def parse_rules(text: str) -> RuleSet:
    """Rules from YAML text."""
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise RulesError("malformed injection rules: expected a mapping")
    return build_rules(document)


@lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The rules shipped with InferFlux."""
    return parse_rules(RULES_PATH.read_text(encoding="utf-8"))
