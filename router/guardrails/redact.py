"""Applying a tenant's PII actions to found spans: placeholders for ``redact``, a list for ``block``."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from inferflux.crds.guardrails import EntityType, PiiAction
from inferflux.router.guardrails.detect import Detector
from inferflux.router.guardrails.spans import Span, placeholder


@dataclass
class Applied:
    """The text after the actions, and what was found, by entity type and action."""

    text: str
    hits: list[tuple[EntityType, PiiAction]] = field(default_factory=list)

    @property
    def blocked(self) -> list[EntityType]:
        """Entity types whose action is ``block``, in the order found, without repeats."""
        if not self.hits:
            return []
        return list(dict.fromkeys(entity for entity, action in self.hits if action is PiiAction.BLOCK))


def apply_actions(text: str, spans: Sequence[Span], actions: Mapping[EntityType, PiiAction]) -> Applied:
    """``text`` with every ``redact`` span replaced by its placeholder; ``detect`` and ``block`` spans
    are left as they are (a blocked text is not used at all)."""
    pieces: list[str] = []
    hits: list[tuple[EntityType, PiiAction]] = []
    position = 0
    for span in spans:
        action = actions[span.entity]
        hits.append((span.entity, action))
        if action is PiiAction.REDACT:
            pieces.append(text[position : span.start])
            pieces.append(placeholder(span.entity))
            position = span.end
    if not pieces:
        return Applied(text, hits)
    pieces.append(text[position:])
    return Applied("".join(pieces), hits)


_EVERY_TYPE = {entity: PiiAction.REDACT for entity in EntityType}


def redact_all(text: str) -> str:
    """``text`` with every entity of every type replaced by its placeholder, whatever a tenant's
    policy says: what the audit log keeps when a tenant opts in to prompt text (docs/audit.md)."""
    return apply_actions(text, _everything().find(text), _EVERY_TYPE).text


@functools.cache
def _everything() -> Detector:
    return Detector(list(EntityType))
