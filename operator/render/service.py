"""The Service in front of one model's runtime pods, and the admin-token Secret they mount.

The router does not use the Service for load balancing (it reads Ready pod endpoints from the
routing table); the Service gives each model a stable DNS name, the ``status.endpoint``.
"""

from __future__ import annotations

import secrets
from typing import Any

from inferflux.crds.inferencemodel import InferenceModel
from inferflux.operator.render.engine import ADMIN_TOKEN_KEY
from inferflux.operator.render.labels import (
    RUNTIME_PORT,
    admin_secret_name,
    object_meta,
    selector_labels,
    service_host,
)


def render_service(model: InferenceModel) -> dict[str, Any]:
    """A ClusterIP Service on the runtime's ``http`` port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(model, model.metadata.name),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(model),
            "ports": [{"name": "http", "port": RUNTIME_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def endpoint_url(model: InferenceModel) -> str:
    """The model's in-cluster base URL, reported as ``status.endpoint``."""
    return f"http://{service_host(model)}:{RUNTIME_PORT}"


def new_admin_token() -> str:
    """A fresh bearer token for the runtime's admin API (256 bits)."""
    return secrets.token_urlsafe(32)


def render_admin_secret(model: InferenceModel, token: str) -> dict[str, Any]:
    """The per-model Secret with the admin API token; created once and never rewritten."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": object_meta(model, admin_secret_name(model)),
        "stringData": {ADMIN_TOKEN_KEY: token},
    }
