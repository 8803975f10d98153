"""Pricing files: checksum sealing, one-line refusals, exact decimal costs in micro-units."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferflux.prompts.checksum import jcs_checksum
from inferflux.router.budgets.pricing import Pricing, PricingError, load_pricing, parse_pricing

DOC: dict[str, Any] = {
    "version": "2026-12-01",
    "currency": "USD",
    "models": {
        "smollm2": {"inputPerMillion": 0.1, "outputPerMillion": "0.3", "maxOutputTokens": 256},
        "gpt-4o-mini": {"inputPerMillion": 0.15, "outputPerMillion": 0.6, "maxOutputTokens": 16384},
    },
    "default": {"inputPerMillion": 1, "outputPerMillion": 4, "maxOutputTokens": 1000},
}


def sealed(doc: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(doc), "checksum": jcs_checksum(doc)}


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_sealed_file_loads_and_carries_its_checksum(tmp_path: Path) -> None:
    doc = sealed(DOC)
    pricing = load_pricing(write(tmp_path / "pricing.yaml", doc))
    assert pricing.checksum == doc["checksum"]
    assert pricing.checksum.startswith("sha256:")
    # The same document written as JSON with its keys in another order hashes the same (JCS).
    shuffled = dict(reversed(list(doc.items())))
    (tmp_path / "pricing.json").write_text(json.dumps(shuffled))
    assert load_pricing(tmp_path / "pricing.json").checksum == doc["checksum"]


def test_a_changed_price_without_a_new_checksum_is_refused_in_one_line(tmp_path: Path) -> None:
    doc = sealed(DOC)
    doc["models"]["smollm2"]["outputPerMillion"] = "0.31"
    with pytest.raises(PricingError) as refused:
        load_pricing(write(tmp_path / "pricing.yaml", doc))
    message = str(refused.value)
    assert "\n" not in message
    assert f"declared {doc['checksum']}" in message
    assert f"expected {jcs_checksum(doc)}" in message
    assert "inferctl pricing checksum --write" in message


def test_a_file_without_a_checksum_is_refused_and_told_what_to_declare(tmp_path: Path) -> None:
    with pytest.raises(PricingError, match=r"no checksum; expected sha256:[0-9a-f]{64}"):
        load_pricing(write(tmp_path / "pricing.yaml", DOC))


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"currency": "usd"}, "currency"),
        (
            {"models": {"m": {"inputPerMillion": -1, "outputPerMillion": 1, "maxOutputTokens": 1}}},
            "inputPerMillion",
        ),
        ({"models": {"m": {"inputPerMillion": 1, "outputPerMillion": 1}}}, "maxOutputTokens"),
        ({"models": {"m": {"inputPerMillion": 1, "outputPerMillion": 1, "maxOutputTokens": 1, "x": 1}}}, "x"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_invalid_documents_are_refused_in_one_line(
    tmp_path: Path, change: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(PricingError) as refused:
        load_pricing(write(tmp_path / "pricing.yaml", sealed({**DOC, **change})))
    assert complaint in str(refused.value)
    assert "\n" not in str(refused.value)


def test_not_a_mapping_and_not_yaml_are_refused(tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(PricingError, match="a YAML mapping"):
        load_pricing(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("models: {a: [\n")
    with pytest.raises(PricingError, match="not valid YAML"):
        load_pricing(tmp_path / "broken.yaml")
    with pytest.raises(PricingError, match="cannot read"):
        load_pricing(tmp_path / "absent.yaml")


def test_costs_are_exact_decimal_micro_units_rounded_up() -> None:
    pricing, _ = parse_pricing(DOC)
    # In floats, 24 * 0.1 + 2 * 0.3 is 3.0000000000000004, which would round up to 4.
    assert 24 * 0.1 + 2 * 0.3 > 3
    assert pricing.cost("smollm2", 24, 2) == 3
    assert pricing.cost("smollm2", 1, 0) == 1  # 0.1 micro-units, rounded up
    assert pricing.cost("gpt-4o-mini", 1_000_000, 1_000_000) == 750_000  # $0.75
    assert pricing.cost("gpt-4o-mini", 0, 0) == 0


def test_max_cost_reserves_max_tokens_or_the_models_limit() -> None:
    pricing, _ = parse_pricing(DOC)
    assert pricing.max_cost("gpt-4o-mini", 1000, 100) == 150 + 60
    assert pricing.max_cost("gpt-4o-mini", 1000, None) == 150 + 9831  # 16384 * 0.6 = 9830.4
    assert pricing.max_cost("smollm2", 0, None) == 77  # 256 * 0.3 = 76.8


def test_unlisted_models_use_the_default_or_cost_nothing() -> None:
    pricing, _ = parse_pricing(DOC)
    assert pricing.cost("unlisted", 1000, 1000) == 5000
    assert pricing.max_cost("unlisted", 0, None) == 4000
    free = Pricing.model_validate({k: v for k, v in DOC.items() if k != "default"})
    assert free.cost("unlisted", 1000, 1000) == 0
    assert free.max_cost("unlisted", 1000, None) == 0
