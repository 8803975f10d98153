"""The Prompt ConfigMap and checksum."""

from __future__ import annotations

import orjson

from inferflux.crds import Prompt
from inferflux.operator.render.prompt import (
    documented_checksum,
    prompt_checksum,
    prompt_configmap_name,
    render_prompt_configmap,
)


def test_checksum_follows_the_documented_definition(prompt: Prompt) -> None:
    checksum = prompt_checksum(prompt.spec)
    assert checksum == documented_checksum(prompt.spec)
    assert checksum.startswith("sha256:")
    assert len(checksum) == 71
    sealed = prompt.spec.model_copy(update={"checksum": checksum})
    assert prompt_checksum(sealed) == checksum  # the checksum field itself is not covered
    edited = prompt.spec.model_copy(update={"description": "changed"})
    assert prompt_checksum(edited) != checksum


def test_configmap_is_labelled_owned_and_carries_the_sealed_spec(prompt: Prompt) -> None:
    checksum = prompt_checksum(prompt.spec)
    cm = render_prompt_configmap(prompt, checksum)
    assert cm["metadata"]["name"] == prompt_configmap_name(prompt) == "inferflux-prompt-assistant"
    assert cm["metadata"]["labels"]["inferflux.io/prompt"] == "true"
    assert cm["metadata"]["ownerReferences"][0]["kind"] == "Prompt"
    spec = orjson.loads(cm["data"]["prompt.json"])
    assert spec["checksum"] == checksum
    assert spec["slices"] == prompt.spec.slices
