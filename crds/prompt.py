"""The ``Prompt`` API: a versioned, checksummed prompt manifest in its in-cluster form.

A prompt manifest (``prompts/manifests/*.yaml``) is exactly a ``PromptSpec``; a Prompt resource wraps
it with Kubernetes metadata. The checksum covers the canonical form of the spec without the checksum
field itself, so a manifest edited by hand without re-sealing is detected wherever it is read.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

from pydantic import Field, model_validator

from inferflux.crds.meta import API_VERSION, Condition, KubeModel, ObjectMeta, Rule, broken_rules

KIND: Final = "Prompt"
PLURAL = "prompts"

SEMVER = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
PROMPT_ID = r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$"
SLICE_NAME = r"^[a-z][a-z0-9_]*$"
CHECKSUM = r"^sha256:[a-f0-9]{64}$"


class PromptVariant(KubeModel):
    """An A/B variant: some slices replaced, chosen for a share of requests by weight."""

    name: str = Field(min_length=1, max_length=63, pattern=SLICE_NAME)
    weight: int = Field(ge=0, le=10000, description="Relative share of requests.")
    slices: dict[str, str] = Field(default_factory=dict, max_length=64, description="Slices it replaces.")


SPEC_RULES: tuple[Rule, ...] = (
    Rule(
        cel=f"self.slices.all(k, k.matches('{SLICE_NAME}'))",
        message=f"slice names must match {SLICE_NAME}",
        holds=lambda s: all(re.fullmatch(SLICE_NAME, name) for name in s.slices),
    ),
    Rule(
        cel="!has(self.variants) || self.variants.all(v, !has(v.slices) || "
        "v.slices.all(k, k in self.slices))",
        message="a variant may only replace slices that the prompt defines",
        holds=lambda s: all(set(v.slices) <= set(s.slices) for v in s.variants),
    ),
    Rule(
        cel="!has(self.variants) || self.variants.all(v, self.variants.exists_one(w, w.name == v.name))",
        message="variant names must be unique",
        holds=lambda s: len({v.name for v in s.variants}) == len(s.variants),
    ),
)


class PromptSpec(KubeModel):
    """A prompt manifest: id, semantic version, named slices, and the variables they take."""

    id: str = Field(min_length=1, max_length=128, pattern=PROMPT_ID)
    version: str = Field(max_length=64, pattern=SEMVER, description="Semantic version of the content.")
    description: str = Field(default="", max_length=4096)
    slices: dict[str, str] = Field(
        min_length=1, max_length=64, description="Named prompt texts, joined in order when rendered."
    )
    variables: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema of the variables that slices reference as {{name}}.",
        json_schema_extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    )
    models: list[str] = Field(default_factory=list, max_length=64, description="servedNames it is meant for.")
    variants: list[PromptVariant] = Field(default_factory=list, max_length=16)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=64, description="Free-form labels.")
    checksum: str | None = Field(
        default=None,
        pattern=CHECKSUM,
        description="sha256 over the RFC 8785 canonical JSON of this spec without the checksum field.",
    )

    @model_validator(mode="after")
    def _cross_field_rules(self) -> PromptSpec:
        problems = broken_rules(SPEC_RULES, self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class PromptStatus(KubeModel):
    """Observed state of a Prompt."""

    observed_generation: int | None = Field(default=None, ge=0)
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    checksum: str | None = Field(default=None, max_length=80, description="Checksum the operator verified.")
    config_map: str | None = Field(default=None, max_length=253, description="Where the router reads it.")


class Prompt(KubeModel):
    """A prompt, resolvable by the router as ``id`` or ``id@version``."""

    model_config = KubeModel.model_config | {"extra": "ignore"}

    api_version: Literal["inferflux.io/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Prompt"] = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PromptSpec
    status: PromptStatus = Field(default_factory=PromptStatus)

    @classmethod
    def from_body(cls, body: Any) -> Prompt:
        """Parse an object as the API server (or a YAML file) hands it over."""
        return cls.model_validate(dict(body))
