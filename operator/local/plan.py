"""Desired local state, computed by the operator's own render functions (pure: no processes here).

A runtime replica in local mode is a process instead of a pod: it gets the environment the
operator renders into the runtime container, with the address and model path of this machine. The
routing table is the operator's route of each model, with the Ready local replicas as endpoints.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from inferflux.crds.inferencemodel import Engine, InferenceModel
from inferflux.crds.routing import Endpoint, ModelRoute, RoutingTable
from inferflux.operator.render.engine import check_extra_args, llamacpp_container
from inferflux.operator.render.labels import revision_hash
from inferflux.operator.render.routing import model_route

# Container settings that only make sense in a pod: the admin token Secret mount and the scratch HOME.
POD_ONLY_ENV = frozenset({"INFERFLUX_ADMIN_TOKEN_FILE", "HOME"})


class PlanError(ValueError):
    """A model that local mode cannot serve; the message says why."""


@dataclass(frozen=True)
class Replica:
    """One Ready runtime process of one revision of a model."""

    model: str
    revision: str
    url: str
    name: str


def check_servable(model: InferenceModel) -> None:
    """Raise `PlanError` unless local mode can run (or route to) ``model``."""
    if model.spec.engine == Engine.VLLM:
        raise PlanError(
            f"InferenceModel {model.metadata.name}: engine vllm needs a GPU node; not in local mode"
        )
    try:
        check_extra_args(model)
    except ValueError as error:
        raise PlanError(f"InferenceModel {model.metadata.name}: {error}") from None


def needs_runtime(model: InferenceModel) -> bool:
    """Models served by our runtime processes (providers are only routed to)."""
    return model.spec.engine == Engine.LLAMACPP


def revision(model: InferenceModel) -> str:
    """What a replica serves, as the operator names it: equal specs give equal revisions."""
    return revision_hash(model)


def runtime_env(model: InferenceModel, model_path: Path, host: str, port: int) -> dict[str, str]:
    """The runtime's environment: the operator's container env, re-pointed at this machine."""
    container = llamacpp_container(model, image="local", model_path=str(model_path))
    env = {item["name"]: item["value"] for item in container["env"] if item["name"] not in POD_ONLY_ENV}
    return env | {"INFERFLUX_HOST": host, "INFERFLUX_PORT": str(port)}


def runtime_args(model: InferenceModel) -> list[str]:
    """Extra runtime flags, exactly as the operator passes them."""
    return list(model.spec.engine_args.extra_args)


def routing_table(
    models: Iterable[InferenceModel], active: dict[str, str], replicas: Iterable[Replica]
) -> RoutingTable:
    """The table the router reads: each model's route with the Ready replicas of its active revision.

    ``active`` maps a model name to the revision that takes traffic; a swap is one change of it.
    """
    ready = list(replicas)
    routes: dict[str, ModelRoute] = {}
    for model in sorted(models, key=lambda m: m.metadata.name):
        name = model.metadata.name
        current = active.get(name, "")
        endpoints = [
            Endpoint(url=r.url, revision=r.revision, pod=r.name)
            for r in ready
            if r.model == name and r.revision == current
        ]
        route = model_route(model, [])
        if needs_runtime(model):
            route = route.model_copy(update={"revision": current, "endpoints": endpoints})
        routes.setdefault(model.served_name, route)
    return RoutingTable(models=routes)
