"""The Argo CD health check (manifests/argocd/health.lua), run in a real Lua 5.1 as Argo CD's gopher-lua.

Status samples are built with the API types' own helpers (``set_condition``, ``to_wire``), so the
check reads exactly the field names and values the operator writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from inferflux.crds.inferencemodel import InferenceModelStatus
from inferflux.crds.meta import Condition, set_condition
from inferflux.crds.prompt import PromptStatus
from inferflux.crds.tenant import TenantStatus

KINDS = ("InferenceModel", "Prompt", "Tenant")


def status(
    conditions: list[tuple[str, str, str, str]], observed: int | None, kind: str = "InferenceModel"
) -> Any:
    """A status as the operator writes it: (type, status, reason, message) conditions in order."""
    conds: list[Condition] = []
    for type_, value, reason, message in conditions:
        conds = set_condition(conds, type_, value, reason, message, generation=observed)  # type: ignore[arg-type]
    model = {"InferenceModel": InferenceModelStatus, "Prompt": PromptStatus, "Tenant": TenantStatus}[kind]
    return model(observed_generation=observed, conditions=conds).to_wire()


def run(script: str, obj: dict[str, Any]) -> tuple[str, str]:
    """Run a health script the way Argo CD does: `obj` global, a table {status, message} returned."""
    lua = lua51.LuaRuntime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    return str(result["status"]), str(result["message"])


def resource(kind: str, generation: int, status_: Any = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "inferflux.io/v1alpha1", "kind": kind}
    obj["metadata"] = {"name": "sample", "namespace": "default", "generation": generation}
    if status_ is not None:
        obj["status"] = status_
    return obj


@pytest.fixture(scope="module")
def health_lua(repo: Path) -> str:
    return (repo / "manifests" / "argocd" / "health.lua").read_text()


READY = ("Ready", "True", "Available", "2/2 replicas ready")
NOT_READY = ("Ready", "False", "Progressing", "rolling out revision 5f1c2a9b")
PROGRESSING = ("Progressing", "True", "RollingOut", "")
STALLED = ("Stalled", "True", "SecretNotFound", "Secret openai-credentials not found")
NOT_STALLED = ("Stalled", "False", "AsExpected", "")

CASES = [
    pytest.param(None, 1, "Progressing", "Waiting for the operator", id="no-status"),
    pytest.param([("Ready", "Unknown", "Pending", "")], 1, "Progressing", "Pending", id="ready-unknown"),
    pytest.param([NOT_READY, PROGRESSING, NOT_STALLED], 1, "Progressing", "rolling out", id="rolling-out"),
    pytest.param([READY, NOT_STALLED], 1, "Healthy", "Available: 2/2 replicas ready", id="ready"),
    pytest.param([READY, NOT_STALLED], 0, "Progressing", "observe generation 1", id="ready-but-stale"),
    pytest.param([NOT_READY, STALLED], 1, "Degraded", "SecretNotFound: Secret openai", id="stalled"),
    pytest.param([READY, STALLED], 1, "Degraded", "SecretNotFound", id="stalled-wins-over-ready"),
    pytest.param([NOT_READY, STALLED], 0, "Progressing", "observe generation 1", id="stalled-but-stale"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("conditions", "observed", "health", "message"), CASES)
def test_health(
    health_lua: str,
    kind: str,
    conditions: list[tuple[str, str, str, str]] | None,
    observed: int,
    health: str,
    message: str,
) -> None:
    obj = resource(kind, 1, None if conditions is None else status(conditions, observed, kind))
    got_health, got_message = run(health_lua, obj)
    assert got_health == health
    assert message in got_message


def test_a_status_with_no_observed_generation_is_progressing(health_lua: str) -> None:
    obj = resource("InferenceModel", 3, {"conditions": [{"type": "Ready", "status": "True", "reason": "Ok"}]})
    assert run(health_lua, obj)[0] == "Progressing"


def test_argocd_cm_patch_carries_the_check_for_every_kind(repo: Path, health_lua: str) -> None:
    patch = yaml.safe_load((repo / "manifests" / "argocd" / "argocd-cm.yaml").read_text())
    assert patch["metadata"] == {
        "name": "argocd-cm",
        "namespace": "argocd",
        "labels": {"app.kubernetes.io/part-of": "argocd"},
    }
    for kind in KINDS:
        script = patch["data"][f"resource.customizations.health.inferflux.io_{kind}"]
        assert run(script, resource(kind, 1, status([READY], 1, kind)))[0] == "Healthy"
        assert script == health_lua


def test_docs_carry_the_shipped_snippet(repo: Path) -> None:
    patch = (repo / "manifests" / "argocd" / "argocd-cm.yaml").read_text()
    snippet = patch[patch.index("apiVersion:") :].rstrip()
    assert snippet in (repo / "docs" / "gitops.md").read_text(), "paste manifests/argocd/argocd-cm.yaml"
