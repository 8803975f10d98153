"""The model volume of each source scheme."""

from __future__ import annotations

import pytest

from inferflux.crds.inferencemodel import ModelSource
from inferflux.operator.render.volume import SourceError, model_volume

SHA = "a" * 64
IMAGE = "example.org/runtime:1"


def source(uri: str, size: int | None = None) -> ModelSource:
    return ModelSource(uri=uri, sha256=SHA, size_bytes=size)


def test_pvc_is_mounted_read_only() -> None:
    volume = model_volume(source("pvc://models/gemma/q4.gguf"), IMAGE)
    assert volume.model_path == "/models/gemma/q4.gguf"
    assert volume.volumes == [
        {"name": "model", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}}
    ]
    assert volume.mounts == [{"name": "model", "mountPath": "/models", "readOnly": True}]
    assert volume.init_containers == []


def test_file_needs_no_volume() -> None:
    volume = model_volume(source("file://opt/models/m.gguf"), IMAGE)
    assert volume.model_path == "/opt/models/m.gguf"
    assert (volume.volumes, volume.mounts) == ([], [])


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("https://example.org/files/m.gguf?download=1", "/models/m.gguf"),
        ("hf://org/repo/m-q4.gguf", "/models/m-q4.gguf"),
    ],
)
def test_downloads_go_through_a_verifying_init_container(uri: str, path: str) -> None:
    volume = model_volume(source(uri, size=1000), IMAGE)
    assert volume.model_path == path
    assert volume.volumes == [{"name": "model", "emptyDir": {"sizeLimit": "1100"}}]
    (fetch,) = volume.init_containers
    assert fetch["image"] == IMAGE
    assert fetch["command"] == ["python", "-m", "inferflux.runtime.fetch"]
    env = {e["name"]: e["value"] for e in fetch["env"]}
    assert env["INFERFLUX_MODEL_URI"] == uri
    assert env["INFERFLUX_MODEL_SHA256"] == SHA
    assert env["INFERFLUX_MODEL_PATH"] == path
    assert fetch["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert volume.mounts[0]["readOnly"] is True  # the runtime only reads what fetch verified


def test_oci_is_an_image_volume_with_an_optional_file() -> None:
    volume = model_volume(source("oci://ghcr.io/org/models:gemma"), IMAGE)
    assert volume.volumes == [
        {"name": "model", "image": {"reference": "ghcr.io/org/models:gemma", "pullPolicy": "IfNotPresent"}}
    ]
    assert volume.model_path == "/models/model.gguf"
    named = model_volume(source("oci://ghcr.io/org/models:gemma#weights/q4.gguf"), IMAGE)
    assert named.model_path == "/models/weights/q4.gguf"
    assert named.volumes[0]["image"]["reference"] == "ghcr.io/org/models:gemma"


@pytest.mark.parametrize("uri", ["pvc://claim-only", "pvc://claim/../../etc/passwd", "oci://r/x:1#../up"])
def test_paths_outside_the_volume_are_refused(uri: str) -> None:
    with pytest.raises(SourceError, match="does not name a file"):
        model_volume(source(uri), IMAGE)
