"""Labels, owner references and the revision hash."""

from __future__ import annotations

from inferflux.operator.render.labels import (
    MODEL_LABEL,
    REVISION_LABEL,
    common_labels,
    owned_by,
    owner_reference,
    pod_labels,
    revision_hash,
    selector_labels,
)
from tests.operator.conftest import ModelFactory


def test_pod_labels_follow_the_shared_convention(model: ModelFactory) -> None:
    m = model()
    assert pod_labels(m) == {
        "app.kubernetes.io/name": "inferflux-runtime",
        "app.kubernetes.io/instance": "gemma3-270m",
        "app.kubernetes.io/component": "runtime",
        "app.kubernetes.io/part-of": "inferflux",
        "app.kubernetes.io/managed-by": "inferflux-operator",
        MODEL_LABEL: "gemma3-270m",
        REVISION_LABEL: revision_hash(m),
    }


def test_selector_is_a_subset_without_the_revision(model: ModelFactory) -> None:
    m = model()
    selector = selector_labels(m)
    assert REVISION_LABEL not in selector
    assert selector.items() <= common_labels(m).items() <= pod_labels(m).items()


def test_revision_changes_with_what_is_served_only(model: ModelFactory) -> None:
    base = revision_hash(model())
    assert revision_hash(model()) == base
    assert len(base) == 10
    assert revision_hash(model(spec={"replicas": 5})) == base
    assert revision_hash(model(spec={"routing": {"maxQueue": 1}})) == base
    assert revision_hash(model(spec={"engineArgs": {"contextSize": 2048}})) != base
    assert revision_hash(model(spec={"source": {"sha256": "b" * 64}})) != base
    assert revision_hash(model(spec={"servedName": "other"})) != base


def test_owner_reference_never_blocks_deletion(model: ModelFactory) -> None:
    ref = owner_reference(model())
    assert ref == {
        "apiVersion": "inferflux.io/v1alpha1",
        "kind": "InferenceModel",
        "name": "gemma3-270m",
        "uid": "uid-llamacpp-model",
        "controller": True,
        "blockOwnerDeletion": False,
    }


def test_owned_by_adds_the_reference_without_touching_the_input(model: ModelFactory) -> None:
    policy = {"kind": "NetworkPolicy", "metadata": {"name": "p", "labels": {"a": "b"}}}
    owned = owned_by(policy, model())
    assert owned["metadata"]["ownerReferences"][0]["uid"] == "uid-llamacpp-model"
    assert owned["metadata"]["labels"] == {"a": "b"}
    assert "ownerReferences" not in policy["metadata"]
