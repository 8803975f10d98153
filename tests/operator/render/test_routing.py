"""The routing table built from models and pods."""

from __future__ import annotations

from typing import Any

import orjson

from inferflux.crds import InferenceModel
from inferflux.crds.routing import RoutingTable
from inferflux.operator.render.routing import build_routing_table, pod_is_ready, render_routing_configmap
from tests.operator.conftest import ModelFactory


def pod(
    name: str, revision: str, ip: str | None = "10.0.0.1", ready: bool = True, **meta: Any
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "labels": {"inferflux.io/model": "gemma3-270m", "inferflux.io/revision": revision},
            **meta,
        },
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def active(m: InferenceModel, revision: str) -> InferenceModel:
    return m.model_copy(update={"status": m.status.model_copy(update={"active_revision": revision})})


def test_only_ready_pods_of_the_active_revision_are_listed(model: ModelFactory) -> None:
    pods = [
        pod("b", "r1", "10.0.0.2"),
        pod("a", "r1", "10.0.0.1"),
        pod("old", "r0", "10.0.0.3"),
        pod("starting", "r1", "10.0.0.4", ready=False),
        pod("no-ip", "r1", None),
        pod("leaving", "r1", "10.0.0.5", deletionTimestamp="2026-01-01T00:00:00Z"),
        {**pod("other-ns", "r1", "10.0.0.6"), "metadata": {"namespace": "x", "labels": {}}},
    ]
    table = build_routing_table([active(model(), "r1")], pods)
    route = table.models["gemma3-270m"]
    assert [(e.pod, e.url, e.revision) for e in route.endpoints] == [
        ("a", "http://10.0.0.1:8080", "r1"),
        ("b", "http://10.0.0.2:8080", "r1"),
    ]
    assert route.revision == "r1"
    assert route.balancer == "PrefixHash"


def test_provider_routes_reference_the_secret(model: ModelFactory) -> None:
    table = build_routing_table([model("provider-model")], [])
    route = table.models["gpt-4o-mini"]
    assert route.engine == "provider"
    assert route.endpoints == []
    assert route.provider is not None
    assert route.provider.api_key_secret_ref is not None
    assert route.provider.api_key_secret_ref.name == "openai-credentials"
    assert route.provider.namespace == "team-a"
    assert route.fallback == ["gemma3-270m"]


def test_the_first_model_by_namespace_wins_a_served_name(model: ModelFactory) -> None:
    a = model(metadata={"name": "gemma3-270m", "namespace": "a"})
    b = model(metadata={"name": "gemma3-270m", "namespace": "b"})
    assert build_routing_table([b, a], []).models["gemma3-270m"].namespace == "a"


def test_configmap_round_trips_the_documented_format(model: ModelFactory) -> None:
    table = build_routing_table([model(), model("provider-model")], [])
    cm = render_routing_configmap(table, "inferflux-routing", "inferflux-system")
    assert (cm["metadata"]["name"], cm["metadata"]["namespace"]) == ("inferflux-routing", "inferflux-system")
    assert RoutingTable.model_validate(orjson.loads(cm["data"]["routes.json"])) == table
    assert render_routing_configmap(table, "x", "y")["data"] == cm["data"]  # byte-stable: no spurious writes


def test_pod_readiness() -> None:
    assert pod_is_ready(pod("a", "r"))
    assert not pod_is_ready(pod("a", "r", ready=False))
    assert not pod_is_ready({"metadata": {}, "status": {}})
