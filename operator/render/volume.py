"""Where the runtime finds the weights: one volume per model source scheme.

- ``pvc://<claim>/<path>``: the claim, mounted read-only at /models.
- ``file://<path>``: a file already inside the image; no volume.
- ``http(s)://...`` and ``hf://<org>/<repo>/<file>``: an init container (the runtime image's
  ``python -m inferflux.runtime.fetch``) downloads into an emptyDir and verifies the sha256.
- ``oci://<registry>/<repo>:<tag>[#<file>]``: a Kubernetes image volume of that artifact; the file
  inside defaults to ``model.gguf``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from inferflux.crds.inferencemodel import ModelSource
from inferflux.operator.render.security import SCRATCH_DIR, container_security_context

MOUNT_PATH = "/models"
VOLUME_NAME = "model"
DEFAULT_OCI_FILE = "model.gguf"
FETCH_MODULE = "inferflux.runtime.fetch"


class SourceError(ValueError):
    """A model source URI that cannot be turned into a volume; the message says why."""


@dataclass(frozen=True)
class ModelVolume:
    """The pieces a pod needs to see the weights at ``model_path``."""

    model_path: str
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    init_containers: list[dict[str, Any]] = field(default_factory=list)


def _split(uri: str) -> tuple[str, str]:
    scheme, _, rest = uri.partition("://")
    return scheme, rest


def _safe_relative(path: str, uri: str) -> str:
    """A normalised path inside the volume; ``..`` escapes are refused."""
    normal = posixpath.normpath(path.lstrip("/"))
    if not path or normal.startswith("..") or normal == ".":
        raise SourceError(f"source {uri!r} does not name a file inside its volume")
    return normal


def _read_only_mount() -> list[dict[str, Any]]:
    return [{"name": VOLUME_NAME, "mountPath": MOUNT_PATH, "readOnly": True}]


def _pvc_volume(rest: str, uri: str) -> ModelVolume:
    claim, _, path = rest.partition("/")
    relative = _safe_relative(path, uri)
    return ModelVolume(
        model_path=f"{MOUNT_PATH}/{relative}",
        volumes=[{"name": VOLUME_NAME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
        mounts=_read_only_mount(),
    )


def _oci_volume(rest: str, uri: str) -> ModelVolume:
    reference, _, inner = rest.partition("#")
    relative = _safe_relative(inner or DEFAULT_OCI_FILE, uri)
    return ModelVolume(
        model_path=f"{MOUNT_PATH}/{relative}",
        volumes=[{"name": VOLUME_NAME, "image": {"reference": reference, "pullPolicy": "IfNotPresent"}}],
        mounts=_read_only_mount(),
    )


def _download_volume(source: ModelSource, image: str) -> ModelVolume:
    """An emptyDir filled by a fetch init container that checks the digest before the runtime starts."""
    _, rest = _split(source.uri)
    name = posixpath.basename(rest.split("?", 1)[0].rstrip("/")) or "model.gguf"
    model_path = f"{MOUNT_PATH}/{name}"
    empty_dir: dict[str, Any] = {}
    if source.size_bytes:
        empty_dir["sizeLimit"] = str(source.size_bytes + source.size_bytes // 10)
    fetch = {
        "name": "fetch-model",
        "image": image,
        "command": ["python", "-m", FETCH_MODULE],
        "env": [
            {"name": "INFERFLUX_MODEL_URI", "value": source.uri},
            {"name": "INFERFLUX_MODEL_SHA256", "value": source.sha256},
            {"name": "INFERFLUX_MODEL_PATH", "value": model_path},
            {"name": "HOME", "value": SCRATCH_DIR},
        ],
        "volumeMounts": [
            {"name": VOLUME_NAME, "mountPath": MOUNT_PATH},
            {"name": "tmp", "mountPath": SCRATCH_DIR},
        ],
        "securityContext": container_security_context(),
    }
    return ModelVolume(
        model_path=model_path,
        volumes=[{"name": VOLUME_NAME, "emptyDir": empty_dir}],
        mounts=_read_only_mount(),
        init_containers=[fetch],
    )


def model_volume(source: ModelSource, runtime_image: str) -> ModelVolume:
    """The volume, mounts and init containers that make ``source`` readable by the runtime."""
    scheme, rest = _split(source.uri)
    if scheme == "pvc":
        return _pvc_volume(rest, source.uri)
    if scheme == "file":
        return ModelVolume(model_path="/" + _safe_relative(rest, source.uri))
    if scheme == "oci":
        return _oci_volume(rest, source.uri)
    if scheme in {"http", "https", "hf"}:
        return _download_volume(source, runtime_image)
    raise SourceError(f"source scheme {scheme!r} is not supported")
