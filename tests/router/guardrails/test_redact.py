"""Applying actions to found spans."""

from __future__ import annotations

from inferflux.crds.guardrails import EntityType, PiiAction
from inferflux.router.guardrails.redact import apply_actions
from inferflux.router.guardrails.spans import Span

TEXT = "mail a@b.io, card 4111111111111111, ip 10.0.0.1"
SPANS = [Span(EntityType.EMAIL, 5, 11), Span(EntityType.CARD, 18, 34), Span(EntityType.IP_ADDRESS, 39, 47)]


def test_redact_detect_and_block() -> None:
    actions = {
        EntityType.EMAIL: PiiAction.REDACT,
        EntityType.CARD: PiiAction.BLOCK,
        EntityType.IP_ADDRESS: PiiAction.DETECT,
    }
    applied = apply_actions(TEXT, SPANS, actions)
    assert applied.text == "mail [EMAIL], card 4111111111111111, ip 10.0.0.1"
    assert applied.blocked == [EntityType.CARD]
    assert applied.hits == [
        (EntityType.EMAIL, PiiAction.REDACT),
        (EntityType.CARD, PiiAction.BLOCK),
        (EntityType.IP_ADDRESS, PiiAction.DETECT),
    ]


def test_every_span_redacted() -> None:
    actions = dict.fromkeys(EntityType, PiiAction.REDACT)
    assert apply_actions(TEXT, SPANS, actions).text == "mail [EMAIL], card [CARD], ip [IP_ADDRESS]"


def test_nothing_found_keeps_the_text() -> None:
    applied = apply_actions("hello", [], {})
    assert (applied.text, applied.hits, applied.blocked) == ("hello", [], [])


def test_redact_all_leaves_no_entity_of_any_type_for_the_audit_log() -> None:
    from inferflux.router.guardrails.redact import redact_all

    text = "mail anna.meier@example.org, card 4111 1111 1111 1111, from 10.2.3.4, order 12345"
    assert redact_all(text) == "mail [EMAIL], card [CARD], from [IP_ADDRESS], order 12345"
