"""Settling overlapping finds, and the placeholders."""

from __future__ import annotations

from inferflux.crds.guardrails import EntityType
from inferflux.router.guardrails.spans import Span, placeholder, settle


def test_the_longer_span_wins_an_overlap() -> None:
    iban = Span(EntityType.IBAN, 0, 27)
    card = Span(EntityType.CARD, 5, 24)
    assert settle([card, iban]) == [iban]


def test_of_equally_long_spans_the_more_specific_type_wins() -> None:
    card = Span(EntityType.CARD, 3, 22)
    phone = Span(EntityType.PHONE, 3, 22)
    assert settle([phone, card]) == [card]


def test_disjoint_spans_are_kept_in_text_order() -> None:
    spans = [
        Span(EntityType.PHONE, 30, 40),
        Span(EntityType.EMAIL, 0, 10),
        Span(EntityType.IP_ADDRESS, 12, 20),
    ]
    assert settle(spans) == sorted(spans, key=lambda s: s.start)


def test_placeholders_are_typed() -> None:
    assert placeholder(EntityType.EMAIL) == "[EMAIL]"
    assert placeholder(EntityType.NATIONAL_ID) == "[NATIONAL_ID]"
