"""The ``InferenceModel`` API: one served model, its engine, source, rollout and routing.

An InferenceModel names a model that clients reach through the router by ``spec.servedName``. It is
served either by runtime pods the operator creates (engines ``llamacpp`` and ``vllm``) or by an
external provider (engine ``provider``), with an optional fallback chain to other models.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import Field, model_validator

from inferflux.crds.meta import API_VERSION, Condition, KubeModel, ObjectMeta, Rule, broken_rules
from inferflux.crds.quantity import Quantity

KIND: Final = "InferenceModel"
PLURAL = "inferencemodels"

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
MODEL_ID = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$"
SOURCE_URI = r"^(pvc|file|https?|oci|hf)://\S+$"
SHA256_HEX = r"^[a-f0-9]{64}$"


class Engine(StrEnum):
    """What serves the model: our llama.cpp runtime on CPU, vLLM on GPU, or an external provider."""

    LLAMACPP = "llamacpp"
    VLLM = "vllm"
    PROVIDER = "provider"


class RolloutStrategy(StrEnum):
    """How a change of model source or engine reaches traffic (see docs/architecture.md)."""

    AUTO = "Auto"
    IN_PLACE = "InPlace"
    BLUE_GREEN = "BlueGreen"


class ProviderName(StrEnum):
    """External providers the router has adapters for."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GROQ = "groq"
    OPENAI_COMPATIBLE = "openai-compatible"


class Balancer(StrEnum):
    """How the router spreads one model's requests over its replicas."""

    LEAST_OUTSTANDING = "LeastOutstanding"
    PREFIX_HASH = "PrefixHash"


class SecretKeyRef(KubeModel):
    """A key of a Secret in the model's namespace. Secret values never appear in a spec."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class Signature(KubeModel):
    """An Ed25519 signature over the model manifest, checked before the model is served."""

    value: str = Field(
        min_length=16,
        max_length=512,
        pattern=r"^[A-Za-z0-9+/]+={0,2}$",
        description="Base64 Ed25519 signature over the manifest bytes `sha256:<digest>`.",
    )
    public_key_secret_ref: SecretKeyRef = Field(
        description="Secret key holding the trusted Ed25519 public key (raw 32 bytes, base64, or PEM)."
    )


class ModelSource(KubeModel):
    """Where the weights come from, pinned by digest."""

    uri: str = Field(
        max_length=2048,
        pattern=SOURCE_URI,
        description=(
            "pvc://<claim>/<path>, file://<path> (inside the runtime image), http(s)://..., "
            "oci://<registry>/<repo>:<tag>, or hf://<org>/<repo>/<file> (not when air-gapped)."
        ),
    )
    sha256: str = Field(pattern=SHA256_HEX, description="Lower-case hex SHA-256 of the weights file.")
    size_bytes: int | None = Field(
        default=None,
        ge=1,
        description="Size of the weights; the rollout strategy and memory guard use it when known.",
    )
    signature: Signature | None = None


class ProviderSettings(KubeModel):
    """An external model, reached through its provider's official SDK."""

    name: ProviderName
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=MODEL_ID,
        description="Provider's model id. When omitted, the router's environment names it: "
        "INFERFLUX_<PROVIDER>_MODEL (e.g. INFERFLUX_GROQ_MODEL), set through the chart's router.env.",
    )
    base_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://\S+$",
        alias="baseURL",
        description="Override of the provider's API base URL (required for openai-compatible).",
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the API key. Keys are never read from the spec."
    )
    timeout_seconds: float = Field(default=60, gt=0, le=3600)


class ResourceRequirements(KubeModel):
    """Compute resources of each runtime pod, as in a container spec."""

    requests: dict[str, Quantity] = Field(default_factory=dict, max_length=16)
    limits: dict[str, Quantity] = Field(default_factory=dict, max_length=16)


class RolloutPolicy(KubeModel):
    """How model swaps happen and when they are rolled back."""

    strategy: RolloutStrategy = RolloutStrategy.AUTO
    memory_headroom_factor: float = Field(
        default=1.3,
        ge=1.0,
        le=10.0,
        description="An in-place swap needs free memory of at least this factor times the new model.",
    )
    in_place_size_limit: Quantity = Field(
        default="8Gi", description="Models larger than this always swap blue/green."
    )
    progress_deadline_seconds: int = Field(default=600, ge=10, le=86400)
    auto_rollback: bool = Field(default=True, description="Remove a failed candidate automatically.")


class EngineArgs(KubeModel):
    """Engine settings passed through to llama.cpp or vLLM."""

    context_size: int | None = Field(default=None, ge=128, le=1048576)
    parallel: int | None = Field(default=None, ge=1, le=256, description="Sequences decoded together.")
    threads: int | None = Field(default=None, ge=1, le=256)
    batch_size: int | None = Field(default=None, ge=1, le=65536)
    gpu_layers: int | None = Field(default=None, ge=-1, le=10000, description="-1 offloads all layers.")
    tensor_parallel_size: int | None = Field(default=None, ge=1, le=64)
    pipeline_parallel_size: int | None = Field(default=None, ge=1, le=64)
    expert_parallel: bool | None = None
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    default_system_prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="llama.cpp only: a system message the runtime puts first when a chat request "
        "brings none (small models often need one to answer in the user's language).",
    )
    extra_args: list[str] = Field(default_factory=list, max_length=64)


class RoutingSettings(KubeModel):
    """Per-model router behaviour."""

    balancer: Balancer = Balancer.LEAST_OUTSTANDING
    max_concurrency: int = Field(default=64, ge=1, le=100000, description="In flight per replica.")
    max_queue: int = Field(default=256, ge=0, le=100000, description="Waiting beyond that gets 429.")


class ScaleToZero(KubeModel):
    """Scale an idle model to zero replicas and activate it on the first request."""

    enabled: bool = False
    idle_seconds: int = Field(
        default=900,
        ge=60,
        le=604800,
        description="Scaled to zero once no router has reported a request for this long.",
    )


class Autoscaling(KubeModel):
    """The operator's own scaler: replicas from the in-flight requests the routers report."""

    enabled: bool = False
    min_replicas: int = Field(default=1, ge=1, le=1000, description="Never fewer while not idle.")
    max_replicas: int = Field(default=4, ge=1, le=1000)
    target_in_flight_per_replica: int = Field(
        default=8, ge=1, le=100000, description="Replicas = ceil(in-flight / this), within the bounds."
    )
    scale_down_delay_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="A lower replica count is applied only after it was enough for this long.",
    )


#: Annotations the routers write on an InferenceModel (a JSON merge patch of these keys only;
#: docs/scaling.md): when one last saw a request (epoch seconds), when one last asked for
#: activation, and each router's in-flight count as "<count> <epoch seconds>".
LAST_REQUEST_ANNOTATION: Final = "inferflux.io/last-request"
ACTIVATE_ANNOTATION: Final = "inferflux.io/activate"
IN_FLIGHT_ANNOTATION_PREFIX: Final = "inferflux.io/in-flight."


VLLM_ONLY = ("tensorParallelSize", "pipelineParallelSize", "expertParallel", "gpuMemoryUtilization")


def _has_vllm_only_args(spec: InferenceModelSpec) -> bool:
    return bool(spec.engine_args.model_dump(by_alias=True, exclude_none=True).keys() & set(VLLM_ONLY))


SPEC_RULES: tuple[Rule, ...] = (
    Rule(
        cel="self.engine != 'provider' || (has(self.provider) && !has(self.source))",
        message="engine provider needs spec.provider and no spec.source",
        holds=lambda s: s.engine != Engine.PROVIDER or (s.provider is not None and s.source is None),
    ),
    Rule(
        cel="self.engine == 'provider' || (has(self.source) && !has(self.provider))",
        message="engines llamacpp and vllm need spec.source and no spec.provider",
        holds=lambda s: s.engine == Engine.PROVIDER or (s.source is not None and s.provider is None),
    ),
    Rule(
        cel="self.engine == 'vllm' || !has(self.engineArgs) || ("
        + " && ".join(f"!has(self.engineArgs.{f})" for f in VLLM_ONLY)
        + ")",
        message=f"{', '.join(VLLM_ONLY)} are vLLM-only",
        holds=lambda s: s.engine == Engine.VLLM or not _has_vllm_only_args(s),
    ),
    Rule(
        cel="self.engine == 'llamacpp' || !has(self.engineArgs) || !has(self.engineArgs.defaultSystemPrompt)",
        message="defaultSystemPrompt is applied by the llama.cpp runtime only",
        holds=lambda s: s.engine == Engine.LLAMACPP or s.engine_args.default_system_prompt is None,
    ),
    Rule(
        cel="!has(self.airGapped) || !self.airGapped || !has(self.source) || !self.source.uri.startsWith('hf://')",
        message="hf:// sources need the internet and are not allowed when airGapped is true",
        holds=lambda s: not (s.air_gapped and s.source is not None and s.source.uri.startswith("hf://")),
    ),
    Rule(
        cel="!has(self.rollout) || !has(self.rollout.strategy) || self.rollout.strategy != 'InPlace' "
        "|| self.engine == 'llamacpp'",
        message="rollout strategy InPlace is only supported by engine llamacpp",
        holds=lambda s: s.rollout.strategy != RolloutStrategy.IN_PLACE or s.engine == Engine.LLAMACPP,
    ),
    Rule(
        cel="!has(self.provider) || self.provider.name != 'openai-compatible' || has(self.provider.baseURL)",
        message="provider openai-compatible needs provider.baseURL",
        holds=lambda s: (
            s.provider is None
            or s.provider.name != ProviderName.OPENAI_COMPATIBLE
            or s.provider.base_url is not None
        ),
    ),
    Rule(
        cel="!has(self.autoscaling) || !has(self.autoscaling.minReplicas) "
        "|| !has(self.autoscaling.maxReplicas) "
        "|| self.autoscaling.minReplicas <= self.autoscaling.maxReplicas",
        message="autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
        holds=lambda s: s.autoscaling.min_replicas <= s.autoscaling.max_replicas,
    ),
)


class InferenceModelSpec(KubeModel):
    """Desired state of an InferenceModel."""

    engine: Engine = Field(description="llamacpp (CPU runtime), vllm (GPU) or provider (external API).")
    served_name: str | None = Field(
        default=None,
        max_length=256,
        pattern=MODEL_ID,
        description="The `model` id clients send; defaults to metadata.name.",
    )
    source: ModelSource | None = None
    provider: ProviderSettings | None = None
    replicas: int = Field(default=1, ge=0, le=1000)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    rollout: RolloutPolicy = Field(default_factory=RolloutPolicy)
    engine_args: EngineArgs = Field(default_factory=EngineArgs)
    fallback: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="servedNames to try, in order, when this model fails with a retryable error.",
    )
    air_gapped: bool = Field(default=False, description="Serve with no egress but cluster DNS.")
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    scale_to_zero: ScaleToZero = Field(default_factory=ScaleToZero)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)

    @model_validator(mode="after")
    def _cross_field_rules(self) -> InferenceModelSpec:
        problems = broken_rules(SPEC_RULES, self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class InferenceModelStatus(KubeModel):
    """Observed state, following the Kubernetes API conventions (no phase field)."""

    observed_generation: int | None = Field(default=None, ge=0)
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    active_revision: str | None = Field(default=None, max_length=64)
    candidate_revision: str | None = Field(default=None, max_length=64)
    endpoint: str | None = Field(default=None, max_length=2048)
    served_name: str | None = Field(default=None, max_length=256)
    replicas: int = Field(default=0, ge=0)
    ready_replicas: int = Field(default=0, ge=0)
    updated_replicas: int = Field(default=0, ge=0)
    selector: str = Field(default="", max_length=4096, description="Label selector for scale.")


class InferenceModel(KubeModel):
    """A served model."""

    model_config = KubeModel.model_config | {"extra": "ignore"}

    api_version: Literal["inferflux.io/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["InferenceModel"] = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: InferenceModelSpec
    status: InferenceModelStatus = Field(default_factory=InferenceModelStatus)

    @property
    def served_name(self) -> str:
        """The model id clients use."""
        return self.spec.served_name or self.metadata.name

    @classmethod
    def from_body(cls, body: Any) -> InferenceModel:
        """Parse an object as the API server (or a YAML file) hands it over."""
        return cls.model_validate(dict(body))
