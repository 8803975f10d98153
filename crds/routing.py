"""The routing table: where each served model can be reached, as the operator publishes it.

The operator writes it as JSON under the key ``routes.json`` of the ConfigMap
``inferflux-routing`` in its own namespace, and rewrites it whenever an InferenceModel, a runtime
pod's readiness or a swap changes where traffic should go. The router watches that ConfigMap; in
local mode ``inferctl up`` writes the same document to a file. See docs/architecture.md.

Only Ready endpoints are listed, so the router never has to second-guess readiness. Secrets are
referenced, never copied: a provider entry names the Secret key holding its API key. Every model is
listed, Ready or not, with its Ready, Progressing and Stalled conditions as the operator last wrote
them: the admin console shows them; routing never reads them.
"""

from __future__ import annotations

from pydantic import Field

from inferflux.crds.inferencemodel import Balancer, Engine, ProviderName, SecretKeyRef
from inferflux.crds.meta import ConditionStatus, KubeModel

CONFIGMAP_NAME = "inferflux-routing"
CONFIGMAP_KEY = "routes.json"
FORMAT_VERSION = 1


class Endpoint(KubeModel):
    """One Ready runtime replica."""

    url: str = Field(description="Base URL of the OpenAI-compatible server, e.g. http://10.0.0.5:8080.")
    revision: str = Field(default="", description="Serving revision of the pod behind it.")
    pod: str = Field(default="", description="Pod name, for metrics and debugging.")


class ProviderRoute(KubeModel):
    """An external provider behind a served name."""

    name: ProviderName
    model: str = Field(
        default="", description="Provider's model id; empty: the router's environment names it."
    )
    base_url: str | None = Field(default=None, alias="baseURL")
    api_key_secret_ref: SecretKeyRef | None = None
    namespace: str = Field(default="", description="Namespace of the Secret.")
    timeout_seconds: float = 60


class RouteCondition(KubeModel):
    """One of the InferenceModel's status conditions, without its times (they would rewrite the table)."""

    type: str
    status: ConditionStatus
    reason: str = ""
    message: str = ""


class ModelRoute(KubeModel):
    """Everything the router needs to serve one ``model`` id."""

    namespace: str = ""
    name: str = Field(description="metadata.name of the InferenceModel.")
    engine: Engine
    revision: str = Field(default="", description="Active revision; traffic goes only to its endpoints.")
    endpoints: list[Endpoint] = Field(default_factory=list)
    provider: ProviderRoute | None = None
    fallback: list[str] = Field(default_factory=list)
    balancer: Balancer = Balancer.LEAST_OUTSTANDING
    max_concurrency: int = 64
    max_queue: int = 256
    scale_to_zero: bool = Field(default=False, description="Zero endpoints means activate, not fail.")
    autoscaling: bool = Field(default=False, description="The routers report this model's in-flight count.")
    conditions: list[RouteCondition] = Field(
        default_factory=list,
        description="The model's Ready, Progressing and Stalled conditions, for display only; empty "
        "when the table does not come from the operator (local mode).",
    )


class RoutingTable(KubeModel):
    """The whole table, keyed by served name (the ``model`` field clients send)."""

    version: int = FORMAT_VERSION
    models: dict[str, ModelRoute] = Field(default_factory=dict)
