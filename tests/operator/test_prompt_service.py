"""Prompt verification and conditions (the I/O half runs in e2e)."""

from __future__ import annotations

from inferflux.crds import Prompt
from inferflux.operator.prompt_service import CHECKSUM_MISMATCH, prompt_conditions, prompt_stall
from inferflux.operator.render.prompt import prompt_checksum


def test_matching_or_missing_checksums_publish(prompt: Prompt) -> None:
    expected = prompt_checksum(prompt.spec)
    assert prompt_stall(prompt, expected) is None
    sealed = prompt.model_copy(update={"spec": prompt.spec.model_copy(update={"checksum": expected})})
    assert prompt_stall(sealed, expected) is None


def test_a_hand_edited_prompt_stalls_with_checksum_mismatch(prompt: Prompt) -> None:
    wrong = "sha256:" + "0" * 64
    edited = prompt.model_copy(update={"spec": prompt.spec.model_copy(update={"checksum": wrong})})
    stall = prompt_stall(edited, prompt_checksum(prompt.spec))
    assert stall is not None
    assert stall.reason == CHECKSUM_MISMATCH
    conditions = {c.type: (c.status, c.reason) for c in prompt_conditions([], 3, stall)}
    assert conditions["Stalled"] == ("True", CHECKSUM_MISMATCH)
    assert conditions["Ready"] == ("False", CHECKSUM_MISMATCH)


def test_published_prompt_conditions() -> None:
    conditions = prompt_conditions([], 2, None)
    by_type = {c.type: c for c in conditions}
    assert (by_type["Ready"].status, by_type["Ready"].reason) == ("True", "Published")
    assert by_type["Stalled"].status == "False"
    assert all(c.observed_generation == 2 for c in conditions)
