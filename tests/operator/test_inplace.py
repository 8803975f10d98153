"""The in-place attempt's pure parts: the active revision's spec and which pods to ask."""

from __future__ import annotations

from typing import Any

from inferflux.operator.inplace import active_spec, ready_pod_ips
from inferflux.operator.render.deployment import render_deployment
from inferflux.operator.render.labels import serving_spec
from inferflux.operator.settings import Settings
from tests.operator.conftest import ModelFactory


def test_a_rendered_deployment_names_the_spec_it_serves(model: ModelFactory, settings: Settings) -> None:
    m = model()
    assert active_spec(render_deployment(m, settings)) == serving_spec(m)
    assert active_spec({"metadata": {"annotations": {"inferflux.io/serving-spec": "{not json"}}}) is None
    assert active_spec(None) is None


def _pod(name: str, revision: str, ip: str | None, ready: bool = True, **meta: Any) -> dict[str, Any]:
    labels = {"inferflux.io/model": "gemma3-270m", "inferflux.io/revision": revision}
    return {
        "metadata": {"name": name, "namespace": "team-a", "labels": labels, **meta},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_only_ready_running_pods_of_the_active_revision_are_asked_in_name_order(model: ModelFactory) -> None:
    pods = [
        _pod("b", "r1", "10.0.0.2"),
        _pod("a", "r1", "10.0.0.1"),
        _pod("c", "r2", "10.0.0.3"),
        _pod("d", "r1", "10.0.0.4", ready=False),
        _pod("e", "r1", None),
        _pod("f", "r1", "10.0.0.6", deletionTimestamp="2026-01-01T00:00:00Z"),
    ]
    assert ready_pod_ips(pods, model(), "r1") == ["10.0.0.1", "10.0.0.2"]
