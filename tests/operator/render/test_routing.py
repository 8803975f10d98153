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


def deployment(pods_label: str, serves: str | None = None, swapped_from: str = "") -> dict[str, Any]:
    """A Deployment of the sample model whose pods carry ``pods_label`` and serve ``serves``."""
    annotations = {"inferflux.io/serves-revision": serves or pods_label}
    if swapped_from:
        annotations["inferflux.io/swapped-from"] = swapped_from
    labels = {"inferflux.io/model": "gemma3-270m", "inferflux.io/revision": pods_label}
    return {
        "metadata": {"name": f"gemma3-270m-{pods_label}", "namespace": "team-a", "labels": labels}
        | {"annotations": annotations},
        "spec": {"template": {"metadata": {"labels": labels}}},
    }


def test_pods_swapped_in_place_are_listed_under_the_revision_they_serve(model: ModelFactory) -> None:
    pods = [pod("a", "r1", "10.0.0.1"), pod("b", "r1", "10.0.0.2")]
    swapped = [deployment("r1", serves="r2", swapped_from="r1")]
    table = build_routing_table([active(model(), "r2")], pods, swapped)
    route = table.models["gemma3-270m"]
    assert [(e.pod, e.revision) for e in route.endpoints] == [("a", "r2"), ("b", "r2")]
    assert route.revision == "r2"
    # Recorded on the Deployment, not yet in the status: the same pods stay listed.
    between = build_routing_table([active(model(), "r1")], pods, swapped).models["gemma3-270m"]
    assert [e.pod for e in between.endpoints] == ["a", "b"]


def test_pods_that_no_longer_serve_the_active_revision_are_not_listed(model: ModelFactory) -> None:
    # r1's pods were swapped to r2; then the spec went back to r1 by blue/green, in r1-1's pods.
    pods = [pod("a", "r1", "10.0.0.1"), pod("c", "r1-1", "10.0.0.3")]
    deployments = [deployment("r1", serves="r2", swapped_from="r1"), deployment("r1-1", serves="r1")]
    route = build_routing_table([active(model(), "r1")], pods, deployments).models["gemma3-270m"]
    assert [(e.pod, e.revision) for e in route.endpoints] == [("c", "r1")]
    still = build_routing_table([active(model(), "r2")], pods, deployments).models["gemma3-270m"]
    assert [(e.pod, e.revision) for e in still.endpoints] == [("a", "r2")]


def test_every_model_carries_its_ready_progressing_and_stalled_conditions_without_times(
    model: ModelFactory,
) -> None:
    def condition(kind: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }

    conditions = [
        condition("Degraded", "False", "AsExpected"),  # not shown by the console: not carried
        condition("Stalled", "False", "AsExpected"),
        condition("Ready", "Unknown", "Initializing", "waiting for the first runtime pod " + "x" * 400),
        condition("Progressing", "True", "RollingOut", "0/1 runtime pods updated"),
    ]
    starting = model(status={"conditions": conditions})
    table = build_routing_table([starting], [])
    route = table.models["gemma3-270m"]
    assert route.endpoints == [], "listed while not Ready, with no endpoint"
    assert [(c.type, c.status, c.reason) for c in route.conditions] == [
        ("Ready", "Unknown", "Initializing"),
        ("Progressing", "True", "RollingOut"),
        ("Stalled", "False", "AsExpected"),
    ]
    assert len(route.conditions[0].message) == 256
    wire = orjson.loads(render_routing_configmap(table, "r", "ns")["data"]["routes.json"])
    assert "lastTransitionTime" not in orjson.dumps(wire).decode()
    assert wire["models"]["gemma3-270m"]["conditions"][1] == {
        "type": "Progressing",
        "status": "True",
        "reason": "RollingOut",
        "message": "0/1 runtime pods updated",
    }
    assert RoutingTable.model_validate(wire) == table

    unobserved = build_routing_table([model()], []).models["gemma3-270m"]
    assert unobserved.conditions == [], "a model the operator has not reported on yet"
