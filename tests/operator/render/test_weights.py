"""The weights ConfigMap a llama.cpp pod reads its weights from at start."""

from __future__ import annotations

from inferflux.operator.render.deployment import render_deployment
from inferflux.operator.render.engine import llamacpp_container
from inferflux.operator.render.labels import revision_hash
from inferflux.operator.render.signing import with_signing
from inferflux.operator.render.weights import from_configmap, render_weights_configmap, weights_configmap_of
from inferflux.operator.settings import Settings
from tests.operator.conftest import ModelFactory

SIGNED = {"signature": {"value": "A" * 88, "publicKeySecretRef": {"name": "signing", "key": "pub"}}}


def test_the_runtime_reads_path_digest_and_signature_from_the_configmap(
    model: ModelFactory, settings: Settings
) -> None:
    m = model(spec={"source": SIGNED})
    deployment = render_deployment(m, settings)
    (runtime,) = deployment["spec"]["template"]["spec"]["containers"]
    name = f"gemma3-270m-{revision_hash(m)}-weights"
    assert weights_configmap_of(deployment) == name
    refs = {v["name"]: v["valueFrom"]["configMapKeyRef"] for v in runtime["env"] if "valueFrom" in v}
    assert refs == {
        key: {"name": name, "key": key}
        for key in ("INFERFLUX_MODEL_PATH", "INFERFLUX_MODEL_SHA256", "INFERFLUX_MODEL_SIGNATURE")
    }
    configmap = render_weights_configmap(m, revision_hash(m), settings.runtime_image)
    assert configmap["metadata"]["name"] == name
    assert configmap["metadata"]["ownerReferences"][0]["uid"] == "uid-llamacpp-model"
    # The values are exactly what the template used to carry literally.
    literal = with_signing(
        llamacpp_container(m, settings.runtime_image, "/models/gemma-3-270m-q4_k_m.gguf"), m.spec.source
    )  # type: ignore[arg-type]
    expected = {v["name"]: v["value"] for v in literal["env"] if v["name"] in refs}
    assert configmap["data"] == expected


def test_an_unsigned_source_has_no_signature_key(model: ModelFactory, settings: Settings) -> None:
    data = render_weights_configmap(model(), "r1", settings.runtime_image)["data"]
    assert sorted(data) == ["INFERFLUX_MODEL_PATH", "INFERFLUX_MODEL_SHA256"]


def test_other_variables_stay_literal(model: ModelFactory, settings: Settings) -> None:
    container = {
        "env": [{"name": "INFERFLUX_PORT", "value": "8080"}, {"name": "INFERFLUX_MODEL_PATH", "value": "/m"}]
    }
    moved = from_configmap(container, "cm")
    assert moved["env"][0] == {"name": "INFERFLUX_PORT", "value": "8080"}
    assert moved["env"][1]["valueFrom"] == {"configMapKeyRef": {"name": "cm", "key": "INFERFLUX_MODEL_PATH"}}
    assert container["env"][1] == {"name": "INFERFLUX_MODEL_PATH", "value": "/m"}  # not modified


def test_templates_that_name_the_weights_themselves_are_recognised(
    model: ModelFactory, settings: Settings
) -> None:
    assert weights_configmap_of(render_deployment(model("vllm-model"), settings)) is None
    legacy = render_deployment(model(), settings)
    (runtime,) = legacy["spec"]["template"]["spec"]["containers"]
    runtime["env"] = [{"name": "INFERFLUX_MODEL_PATH", "value": "/models/m.gguf"}]
    assert weights_configmap_of(legacy) is None
