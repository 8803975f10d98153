"""Streamed text: entities split across chunks are caught, and prose is held back by a word at most."""

from __future__ import annotations

import random
from typing import Any

import pytest

from inferflux.crds.guardrails import EntityType, PiiAction
from inferflux.router.guardrails import holdback as holdback_module
from inferflux.router.guardrails.detect import Detector
from inferflux.router.guardrails.holdback import HOLD_MAX, Holdback, Walk, safe_cut
from inferflux.router.guardrails.redact import apply_actions

REDACT_ALL = dict.fromkeys(EntityType, PiiAction.REDACT)
DETECTOR = Detector(list(EntityType))


def stream(
    chunks: list[str], actions: dict[EntityType, PiiAction] = REDACT_ALL
) -> tuple[list[str], Holdback]:
    holdback = Holdback(DETECTOR, actions)
    released = [holdback.feed(chunk).text for chunk in chunks]
    released.append(holdback.flush().text)
    return released, holdback


def test_an_email_spelt_over_three_chunks_is_caught() -> None:
    released, _ = stream(["Write to alice", ".smith@exam", "ple.com today."])
    assert "".join(released) == "Write to [EMAIL] today."
    assert not any("alice" in piece or "example" in piece for piece in released)


def test_a_card_in_groups_over_several_chunks_is_caught() -> None:
    released, _ = stream(["card 4111 ", "1111 ", "1111", " 1111 please"])
    assert "".join(released) == "card [CARD] please"
    assert all("1111" not in piece for piece in released)


def test_a_private_key_block_is_held_until_its_end_line() -> None:
    lines = [
        "here:\n-----BEGIN RSA PRIVATE KEY-----\n",
        "MIIEow",
        "IBAAKCAQEA\n",
        "-----END RSA PRIVATE KEY-----",
        "\nok",
    ]
    released, _ = stream(lines)
    assert released[1:3] == ["", ""]
    assert "".join(released) == "here:\n[SECRET]\nok"


def test_prose_is_held_back_by_its_last_word_only() -> None:
    released, _ = stream(["The ", "quick ", "brown ", "fox"])
    assert released == ["The ", "quick ", "brown ", "", "fox"]


def test_a_long_token_is_held_at_most_hold_max_characters() -> None:
    text = "x" * (HOLD_MAX * 3)
    assert safe_cut(text) == len(text) - HOLD_MAX


def test_short_digit_groups_are_held_together() -> None:
    text = "call +49 30 1234"
    assert text[: safe_cut(text)] == "call "
    assert safe_cut("the year was 2024 ") == len("the year was ")
    assert safe_cut("the year was 2024 and ") == len("the year was 2024 and ")
    assert safe_cut("NINO: KL 65 43") == len("NINO: ")
    assert safe_cut("done.\n") == len("done.\n")


def test_a_blocked_entity_is_never_released() -> None:
    actions = {**REDACT_ALL, EntityType.CARD: PiiAction.BLOCK}
    holdback = Holdback(DETECTOR, actions)
    first = holdback.feed("pay with 4111 1111")
    second = holdback.feed(" 1111 1111 now ")
    assert first.text == "pay with "
    assert second.text == ""
    assert second.blocked == [EntityType.CARD]


@pytest.mark.parametrize("seed", range(1, 6))
def test_any_chunking_of_the_corpus_gives_the_same_text_as_the_whole(seed: int, corpus: Any) -> None:
    """The stream filter must redact exactly as the whole-text filter does, however the text is cut."""
    chooser = random.Random(seed)
    for line in corpus.load():
        text = line.text
        cuts = sorted(chooser.sample(range(1, len(text)), k=min(len(text) - 1, chooser.randint(1, 12))))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        released, _ = stream(chunks)
        expected = apply_actions(text, DETECTOR.find(text), REDACT_ALL).text
        assert "".join(released) == expected, (line.source, chunks)


def test_token_sized_chunks_of_the_corpus_give_the_same_text_as_the_whole(corpus: Any) -> None:
    chooser = random.Random(99)
    for line in corpus.load():
        text, chunks, position = line.text, [], 0
        while position < len(text):
            size = chooser.randint(1, 5)
            chunks.append(text[position : position + size])
            position += size
        released, _ = stream(chunks)
        expected = apply_actions(text, DETECTOR.find(text), REDACT_ALL).text
        assert "".join(released) == expected, (line.source, chunks)


@pytest.mark.parametrize("seed", range(1, 4))
def test_the_incremental_walk_cuts_where_a_fresh_walk_does(seed: int, corpus: Any) -> None:
    """Growing text one random piece at a time, the walk that resumes from the last one finds the
    same cut as walking the whole text again."""
    chooser = random.Random(seed)
    lines = [line.text for line in corpus.load()]
    lines.append(" ".join(f"t{i}" for i in range(90)) + " +49 30 1234 / 5678 done -----BEGIN KEY x")
    for text in lines:
        walk, position = Walk(), 0
        while position < len(text):
            position = min(len(text), position + chooser.randint(1, 6))
            assert safe_cut(text[:position], walk) == safe_cut(text[:position]), (text, position)


def test_a_stream_of_number_groups_is_walked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every word of "t0 t1 t2 ..." may be part of a number, so the whole answer is held; each new
    chunk must not walk all the held groups again (that made filtering a stream quadratic)."""
    calls = 0
    real = holdback_module._number_group

    def counted(group: str) -> bool:
        nonlocal calls
        calls += 1
        return real(group)

    monkeypatch.setattr(holdback_module, "_number_group", counted)
    chunks = [f"t{i} " for i in range(400)]
    released, _ = stream(chunks)
    assert "".join(released) == "".join(chunks)
    assert calls <= 2 * len(chunks)
