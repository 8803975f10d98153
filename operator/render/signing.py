"""Signed model sources in the pod: the trusted public key as a file, and who checks with it.

A signed source (``spec.source.signature``) names a Secret key holding the trusted Ed25519 public
key. The key is mounted read-only into every container that touches the weights, with the
signature in its environment, and each checks before it reads: the fetch init container before it
downloads, our llama.cpp runtime before it loads, and, for vLLM (which cannot), a ``verify-model``
init container on the same volume. The operator checks the signature too, before it renders any of
this (``operator/validation.py``), so a bad one never reaches a pod; the pods' checks make sure a
Deployment edited by hand cannot serve unsigned weights either.
"""

from __future__ import annotations

from typing import Any

from inferflux.crds.inferencemodel import ModelSource
from inferflux.operator.render.security import container_security_context

KEY_DIR = "/etc/inferflux/model-key"
KEY_FILE = "ed25519.pub"
VOLUME = "model-signing-key"
VERIFY_MODULE = "inferflux.runtime.verify"


def signing_env(source: ModelSource) -> list[dict[str, str]]:
    """The signature and the key file's path, for a container that checks them (none unsigned)."""
    if source.signature is None:
        return []
    return [
        {"name": "INFERFLUX_MODEL_SIGNATURE", "value": source.signature.value},
        {"name": "INFERFLUX_MODEL_PUBLIC_KEY_FILE", "value": f"{KEY_DIR}/{KEY_FILE}"},
    ]


def signing_volume(source: ModelSource) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The public key Secret as a read-only file (volume, mount), or None for an unsigned source."""
    if source.signature is None:
        return None
    ref = source.signature.public_key_secret_ref
    volume = {
        "name": VOLUME,
        "secret": {
            "secretName": ref.name,
            "items": [{"key": ref.key, "path": KEY_FILE}],
            "defaultMode": 0o440,
        },
    }
    return volume, {"name": VOLUME, "mountPath": KEY_DIR, "readOnly": True}


def with_signing(container: dict[str, Any], source: ModelSource) -> dict[str, Any]:
    """``container`` with the signature in its env and the key mounted (unchanged when unsigned)."""
    mounted = signing_volume(source)
    if mounted is None:
        return container
    return container | {
        "env": [*container.get("env", []), *signing_env(source)],
        "volumeMounts": [*container.get("volumeMounts", []), mounted[1]],
    }


def verify_container(
    source: ModelSource, image: str, model_path: str, mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    """An init container that checks signature and digest on the mounted weights (for vLLM)."""
    container = {
        "name": "verify-model",
        "image": image,
        "command": ["python", "-m", VERIFY_MODULE],
        "env": [
            {"name": "INFERFLUX_MODEL_PATH", "value": model_path},
            {"name": "INFERFLUX_MODEL_SHA256", "value": source.sha256},
        ],
        "volumeMounts": mounts,
        "securityContext": container_security_context(),
    }
    return with_signing(container, source)
