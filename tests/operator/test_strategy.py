"""The swap strategy: in place only for a weights-only change the pods can reach and afford."""

from __future__ import annotations

from typing import Any

from inferflux.crds.inferencemodel import InferenceModel, RolloutStrategy
from inferflux.operator.render.labels import serving_spec
from inferflux.operator.strategy import (
    FORCED,
    NEW_VOLUME,
    NOT_LLAMACPP,
    NOT_SOURCE_ONLY,
    OVER_LIMIT,
    REFUSED,
    SIZE_UNKNOWN,
    SOURCE_ONLY,
    TEMPLATE_NAMES_WEIGHTS,
    after_refusal,
    choose_strategy,
    only_source_changed,
)
from tests.operator.conftest import ModelFactory

IMAGE = "ghcr.io/inferflux/runtime:test"
OTHER_SHA = "b" * 64


def _swap(model: ModelFactory, **change: Any) -> tuple[InferenceModel, dict[str, Any]]:
    """The sample as active, and a model with ``change`` applied as wanted."""
    active = serving_spec(model())
    return model(spec=change), active


def _new_weights(**source: Any) -> dict[str, Any]:
    return {"source": {"uri": "pvc://models/gemma-3-270m-q8_0.gguf", "sha256": OTHER_SHA, **source}}


def test_auto_swaps_new_weights_on_the_same_claim_in_place(model: ModelFactory) -> None:
    wanted, active = _swap(model, **_new_weights())
    choice = choose_strategy(wanted, active, serving_spec(wanted), IMAGE)
    assert (choice.strategy, choice.reason) == (RolloutStrategy.IN_PLACE, SOURCE_ONLY)
    assert choice.in_place


def test_unknown_size_goes_blue_green(model: ModelFactory) -> None:
    wanted, active = _swap(model, **_new_weights(sizeBytes=None))
    choice = choose_strategy(wanted, active, serving_spec(wanted), IMAGE)
    assert (choice.strategy, choice.reason) == (RolloutStrategy.BLUE_GREEN, SIZE_UNKNOWN)


def test_a_model_at_or_over_the_limit_goes_blue_green(model: ModelFactory) -> None:
    change = _new_weights(sizeBytes=2**30) | {"rollout": {"inPlaceSizeLimit": "1Gi"}}
    wanted, active = _swap(model, **change)
    choice = choose_strategy(wanted, active, serving_spec(wanted), IMAGE)
    assert (choice.strategy, choice.reason) == (RolloutStrategy.BLUE_GREEN, OVER_LIMIT)
    under = model(spec=_new_weights(sizeBytes=2**30 - 1) | {"rollout": {"inPlaceSizeLimit": "1Gi"}})
    assert choose_strategy(under, active, serving_spec(under), IMAGE).in_place


def test_engine_args_change_is_blue_green_even_when_forced_in_place(model: ModelFactory) -> None:
    change = _new_weights() | {"engineArgs": {"contextSize": 2048}, "rollout": {"strategy": "InPlace"}}
    wanted, active = _swap(model, **change)
    choice = choose_strategy(wanted, active, serving_spec(wanted), IMAGE)
    assert (choice.strategy, choice.reason) == (RolloutStrategy.BLUE_GREEN, NOT_SOURCE_ONLY)


def test_forced_in_place_ignores_the_size(model: ModelFactory) -> None:
    wanted, active = _swap(model, **_new_weights(sizeBytes=None), rollout={"strategy": "InPlace"})
    choice = choose_strategy(wanted, active, serving_spec(wanted), IMAGE)
    assert (choice.strategy, choice.reason) == (RolloutStrategy.IN_PLACE, FORCED)


def test_forced_blue_green_wins(model: ModelFactory) -> None:
    wanted, active = _swap(model, **_new_weights(), rollout={"strategy": "BlueGreen"})
    choice = choose_strategy(wanted, active, serving_spec(wanted), IMAGE)
    assert (choice.strategy, choice.reason) == (RolloutStrategy.BLUE_GREEN, FORCED)


def test_a_source_on_another_volume_or_downloaded_needs_new_pods(model: ModelFactory) -> None:
    for uri in ("pvc://other-claim/m.gguf", "https://example.com/m.gguf"):
        wanted, active = _swap(model, source={"uri": uri, "sha256": OTHER_SHA, "sizeBytes": 10})
        choice = choose_strategy(wanted, active, serving_spec(wanted), IMAGE)
        assert (choice.strategy, choice.reason) == (RolloutStrategy.BLUE_GREEN, NEW_VOLUME), uri


def test_nothing_serving_yet_is_blue_green(model: ModelFactory) -> None:
    wanted = model()
    assert not choose_strategy(wanted, None, serving_spec(wanted), IMAGE).in_place


def test_vllm_never_swaps_in_place(model: ModelFactory) -> None:
    wanted = model("vllm-model", spec={"rollout": {"strategy": "Auto"}})
    active = serving_spec(wanted) | {"source": {"uri": "pvc://x/y", "sha256": OTHER_SHA}}
    choice = choose_strategy(wanted, active, serving_spec(wanted), IMAGE)
    assert (choice.strategy, choice.reason) == (RolloutStrategy.BLUE_GREEN, NOT_LLAMACPP)


def test_only_source_changed_compares_uri_and_sha_alone(model: ModelFactory) -> None:
    spec = serving_spec(model())
    assert not only_source_changed(spec, spec)
    resized = spec | {"source": spec["source"] | {"sizeBytes": 1}}
    assert not only_source_changed(spec, resized)
    assert only_source_changed(spec, spec | {"source": spec["source"] | {"sha256": OTHER_SHA}})
    assert not only_source_changed(spec, spec | {"servedName": "other"})


def test_a_refusal_turns_in_place_into_blue_green_with_the_reason(model: ModelFactory) -> None:
    wanted, active = _swap(model, **_new_weights())
    choice = after_refusal(choose_strategy(wanted, active, serving_spec(wanted), IMAGE), "needs 3 GiB")
    assert (choice.strategy, choice.reason) == (RolloutStrategy.BLUE_GREEN, REFUSED)
    assert "needs 3 GiB" in choice.message
    forced = choose_strategy(wanted, active, serving_spec(wanted), IMAGE)
    blue_green = after_refusal(after_refusal(forced, "x"), "y")
    assert blue_green.message.endswith(": x")


SIGNED_BY = {"value": "A" * 88, "publicKeySecretRef": {"name": "signing", "key": "pub"}}


def test_a_change_of_signing_key_or_of_signed_ness_needs_new_pods(model: ModelFactory) -> None:
    """A restarted pod checks the signature with the key mounted in its template: it must not change."""
    signed = serving_spec(model(spec={"source": {"signature": SIGNED_BY}}))
    same_key = model(spec=_new_weights(signature=SIGNED_BY | {"value": "B" * 88}))
    assert choose_strategy(same_key, signed, serving_spec(same_key), IMAGE).in_place
    other_key = SIGNED_BY | {"publicKeySecretRef": {"name": "other", "key": "pub"}}
    for wanted in (model(spec=_new_weights(signature=other_key)), model(spec=_new_weights())):
        choice = choose_strategy(wanted, signed, serving_spec(wanted), IMAGE)
        assert (choice.strategy, choice.reason) == (RolloutStrategy.BLUE_GREEN, NEW_VOLUME)


def test_pods_whose_template_names_the_weights_are_not_swapped_in_place(model: ModelFactory) -> None:
    """Deployments rendered before the weights ConfigMap: a restarted pod would load the old weights."""
    wanted, active = _swap(model, **_new_weights(), rollout={"strategy": "InPlace"})
    choice = choose_strategy(wanted, active, serving_spec(wanted), IMAGE, weights_from_configmap=False)
    assert (choice.strategy, choice.reason) == (RolloutStrategy.BLUE_GREEN, TEMPLATE_NAMES_WEIGHTS)
