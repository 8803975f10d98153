"""InferFlux API types (group ``inferflux.io``, version ``v1alpha1``).

These pydantic models are the single source of truth for the custom resources: ``crds/*.yaml`` is
generated from them (``make crds``), and the operator, router and local mode parse objects with them.
"""

from inferflux.crds.inferencemodel import (
    Engine,
    InferenceModel,
    InferenceModelSpec,
    InferenceModelStatus,
    RolloutStrategy,
)
from inferflux.crds.meta import API_VERSION, GROUP, VERSION, Condition, ConditionType
from inferflux.crds.prompt import Prompt, PromptSpec, PromptStatus
from inferflux.crds.tenant import Scope, Tenant, TenantSpec, TenantStatus

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "Condition",
    "ConditionType",
    "Engine",
    "InferenceModel",
    "InferenceModelSpec",
    "InferenceModelStatus",
    "Prompt",
    "PromptSpec",
    "PromptStatus",
    "RolloutStrategy",
    "Scope",
    "Tenant",
    "TenantSpec",
    "TenantStatus",
]
