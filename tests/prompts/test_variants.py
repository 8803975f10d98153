"""A/B variants: deterministic per request id, shares that follow the weights."""

from __future__ import annotations

from collections import Counter

from inferflux.crds.prompt import PromptVariant
from inferflux.prompts.compiled import compile_prompt
from inferflux.prompts.variants import choose_variant

from .conftest import make_spec

AB = [PromptVariant(name="a", weight=3), PromptVariant(name="b", weight=1, slices={"system": "B"})]


def test_same_request_id_same_variant() -> None:
    picks = {choose_variant("p", AB, "req-42").name for _ in range(20)}  # type: ignore[union-attr]
    assert len(picks) == 1


def test_shares_follow_weights() -> None:
    counts = Counter(choose_variant("p", AB, f"req-{i}").name for i in range(8000))  # type: ignore[union-attr]
    assert abs(counts["a"] / 8000 - 0.75) < 0.03
    assert abs(counts["b"] / 8000 - 0.25) < 0.03


def test_prompts_are_bucketed_independently() -> None:
    ids = [f"req-{i}" for i in range(400)]
    one = [choose_variant("p", AB, i) for i in ids]
    two = [choose_variant("q", AB, i) for i in ids]
    assert one != two


def test_zero_weights_and_no_variants_give_the_base() -> None:
    assert choose_variant("p", [], "r") is None
    assert choose_variant("p", [PromptVariant(name="a", weight=0)], "r") is None


def test_variant_replaces_only_its_slices() -> None:
    spec = make_spec(variants=[{"name": "b", "weight": 1, "slices": {"guardrails": "Be brief."}}])
    compiled = compile_prompt(spec)
    assert compiled.variant_for("any") == "b"
    assert compiled.render({"name": "Ada"}, "b") == "You greet Ada.\n\nBe brief."
    assert compiled.render({"name": "Ada"}) == "You greet Ada.\n\nBe kind."
