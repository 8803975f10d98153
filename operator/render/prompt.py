"""The ConfigMap that carries one verified Prompt to the router.

The router lists ConfigMaps labelled ``inferflux.io/prompt=true`` and reads ``prompt.json``; only a
Prompt whose checksum verifies is written, so the router never serves a hand-edited prompt.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from typing import Any, Final

import orjson
import rfc8785

from inferflux.crds.prompt import Prompt, PromptSpec
from inferflux.operator.render.labels import FIELD_MANAGER, MANAGED_BY, owner_reference

PROMPT_LABEL: Final = "inferflux.io/prompt"
PROMPT_KEY: Final = "prompt.json"


def documented_checksum(spec: PromptSpec) -> str:
    """``sha256:`` + hex SHA-256 of the RFC 8785 (JCS) form of the spec without ``checksum``."""
    wire = spec.to_wire()
    wire.pop("checksum", None)
    return "sha256:" + hashlib.sha256(rfc8785.dumps(wire)).hexdigest()


def _checksum_function() -> Callable[[PromptSpec], str]:
    """``inferflux.prompts.checksum.compute_checksum`` when installed (one definition), else ours."""
    try:
        shared = getattr(importlib.import_module("inferflux.prompts.checksum"), "compute_checksum", None)
    except ImportError:
        shared = None
    return shared if callable(shared) else documented_checksum


def prompt_checksum(spec: PromptSpec) -> str:
    """The checksum ``spec`` should carry."""
    return _checksum_function()(spec)


def prompt_configmap_name(prompt: Prompt) -> str:
    """Where the router finds ``prompt``."""
    return f"inferflux-prompt-{prompt.metadata.name}"


def render_prompt_configmap(prompt: Prompt, checksum: str) -> dict[str, Any]:
    """A ConfigMap owned by ``prompt`` with its spec (checksum included) as ``prompt.json``."""
    spec = prompt.spec.to_wire() | {"checksum": checksum}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": prompt_configmap_name(prompt),
            "namespace": prompt.metadata.namespace,
            "labels": {
                PROMPT_LABEL: "true",
                "app.kubernetes.io/part-of": "inferflux",
                MANAGED_BY: FIELD_MANAGER,
            },
            "annotations": {"inferflux.io/prompt-id": f"{prompt.spec.id}@{prompt.spec.version}"},
            "ownerReferences": [owner_reference(prompt)],
        },
        "data": {PROMPT_KEY: orjson.dumps(spec, option=orjson.OPT_SORT_KEYS).decode()},
    }
