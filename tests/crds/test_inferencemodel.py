"""InferenceModel parsing: defaults a user can rely on, and readable rejections."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from inferflux.crds import InferenceModel

DIGEST = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def _model(**spec: object) -> InferenceModel:
    body = {"apiVersion": "inferflux.io/v1alpha1", "kind": "InferenceModel", "metadata": {"name": "m"}}
    return InferenceModel.from_body({**body, "spec": spec})


def test_defaults() -> None:
    model = _model(engine="llamacpp", source={"uri": "pvc://models/m.gguf", "sha256": DIGEST})
    assert model.served_name == "m"
    assert model.spec.replicas == 1
    assert model.spec.rollout.strategy == "Auto"
    assert model.spec.rollout.memory_headroom_factor == 1.3
    assert model.spec.rollout.in_place_size_limit == "8Gi"
    assert model.spec.rollout.auto_rollback is True
    assert model.spec.air_gapped is False


def test_served_name_overrides_metadata_name() -> None:
    model = _model(engine="provider", servedName="gpt", provider={"name": "groq", "model": "llama-3.1-8b"})
    assert model.served_name == "gpt"


def test_camel_case_round_trip() -> None:
    model = _model(
        engine="llamacpp",
        source={"uri": "pvc://models/m.gguf", "sha256": DIGEST},
        engineArgs={"contextSize": 2048, "parallel": 4},
        rollout={"strategy": "InPlace", "inPlaceSizeLimit": "1Gi"},
    )
    wire = model.to_wire()
    assert wire["spec"]["engineArgs"] == {"contextSize": 2048, "parallel": 4, "extraArgs": []}
    assert InferenceModel.from_body(wire) == model


def test_openai_compatible_provider_needs_base_url() -> None:
    with pytest.raises(ValidationError, match=r"openai-compatible needs provider\.baseURL"):
        _model(engine="provider", provider={"name": "openai-compatible", "model": "x"})


def test_bad_quantity_is_reported() -> None:
    with pytest.raises(ValidationError, match="is not a Kubernetes quantity"):
        _model(
            engine="llamacpp",
            source={"uri": "pvc://models/m.gguf", "sha256": DIGEST},
            resources={"limits": {"memory": "2 gigs"}},
        )


def test_unknown_spec_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="contextSize"):
        _model(engine="llamacpp", contextSize=1, source={"uri": "pvc://m/m.gguf", "sha256": DIGEST})


def test_a_default_system_prompt_is_for_the_llamacpp_runtime_only() -> None:
    source = {"uri": "pvc://models/m.gguf", "sha256": DIGEST}
    args = {"defaultSystemPrompt": "Answer in English."}
    assert _model(engine="llamacpp", source=source, engineArgs=args).spec.engine_args.default_system_prompt
    with pytest.raises(ValidationError, match=r"applied by the llama\.cpp runtime only"):
        _model(engine="vllm", source=source, engineArgs=args)
