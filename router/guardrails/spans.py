"""A found entity: where it is in the text, and which type it is; and how overlapping finds are settled."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from inferflux.crds.guardrails import EntityType

# When two finds overlap, the more specific type wins: a Luhn-valid card number is not also a
# phone number, an IP address in a connection string is part of the secret around it.
PRIORITY: dict[EntityType, int] = {
    EntityType.SECRET: 7,
    EntityType.CARD: 6,
    EntityType.IBAN: 5,
    EntityType.NATIONAL_ID: 4,
    EntityType.EMAIL: 3,
    EntityType.IP_ADDRESS: 2,
    EntityType.PHONE: 1,
}


class Span(NamedTuple):
    """``text[start:end]`` is an entity of type ``entity``."""

    entity: EntityType
    start: int
    end: int


def settle(spans: Iterable[Span]) -> list[Span]:
    """Spans without overlaps, in text order: of two overlapping spans the higher priority one stays,
    and of two of equal priority the longer one."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (-PRIORITY[s.entity], s.start - s.end, s.start)):
        if all(span.end <= other.start or span.start >= other.end for other in kept):
            kept.append(span)
    kept.sort(key=lambda s: s.start)
    return kept


def placeholder(entity: EntityType) -> str:
    """The typed placeholder that replaces a redacted entity, e.g. ``[EMAIL]``."""
    return f"[{entity.value.upper()}]"
