"""A found entity: where it is in the text, and which type it is; and how overlapping finds are settled."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from inferflux.crds.guardrails import EntityType

# When two finds overlap, the longer one wins (a card number's digits inside a valid IBAN, an IPv4
# address inside an IPv6 one, a phone number inside a key block); of two equally long ones, the more
# specific type (a Luhn-valid card number is not also a phone number).
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
    """Spans without overlaps, in text order: of two overlapping spans the longer one stays, and of
    two equally long ones the one of higher priority."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start - s.end, -PRIORITY[s.entity], s.start)):
        if all(span.end <= other.start or span.start >= other.end for other in kept):
            kept.append(span)
    kept.sort(key=lambda s: s.start)
    return kept


def placeholder(entity: EntityType) -> str:
    """The typed placeholder that replaces a redacted entity, e.g. ``[EMAIL]``."""
    return f"[{entity.value.upper()}]"
