"""Fixtures for the operator's unit tests: the documented samples as parsed, cluster-stamped objects."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferflux.crds import InferenceModel, Prompt
from inferflux.operator.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
ModelFactory = Callable[..., InferenceModel]


def sample(name: str) -> dict[str, Any]:
    """A sample from docs/examples as the API server would hand it over (namespace, uid, generation)."""
    body: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    body["metadata"] |= {"namespace": "team-a", "uid": f"uid-{name}", "generation": 1}
    return body


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def model() -> ModelFactory:
    """Build an InferenceModel from a sample, with parts of the body replaced (None removes a key)."""

    def build(name: str = "llamacpp-model", **change: Any) -> InferenceModel:
        return InferenceModel.from_body(_merge(sample(name), change))

    return build


@pytest.fixture
def prompt() -> Prompt:
    """The sample Prompt."""
    return Prompt.from_body(sample("prompt"))


@pytest.fixture
def settings() -> Settings:
    """Settings with fixed images, so rendered objects are predictable."""
    return Settings(runtime_image="example.org/runtime:1", vllm_image="example.org/vllm:2")
