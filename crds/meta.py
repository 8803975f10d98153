"""Kubernetes API conventions shared by every InferFlux resource.

The models here mirror the small parts of ``meta/v1`` that our custom resources embed: the
``Condition`` type and the ``conditions`` list-map. Field names are camelCase on the wire, as in
every Kubernetes API, and snake_case in Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "inferflux.io"
VERSION = "v1alpha1"
API_VERSION: Final = "inferflux.io/v1alpha1"
CATEGORY = "inferflux"


class KubeModel(BaseModel):
    """Base for API types: camelCase aliases, unknown fields rejected, populated by either name."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase keys, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ConditionType(StrEnum):
    """The condition types every InferFlux resource reports (kstatus reads Ready and Stalled)."""

    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    STALLED = "Stalled"


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(KubeModel):
    """A ``metav1.Condition``: one observation of one aspect of the resource's state."""

    type: str = Field(min_length=1, max_length=316, description="Type of condition in CamelCase.")
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation the condition was set for."
    )
    last_transition_time: dt.datetime = Field(
        description="Last time the condition's status changed (not its reason or message)."
    )
    reason: str = Field(
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Machine-readable CamelCase reason for the condition's last transition.",
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details.")


def now() -> dt.datetime:
    """The current time, truncated to seconds as metav1.Time serialises it."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str = "",
    *,
    generation: int | None = None,
    at: dt.datetime | None = None,
) -> list[Condition]:
    """Return ``conditions`` with ``type_`` set, keeping ``lastTransitionTime`` unless the status changed.

    This is the rule of ``meta.SetStatusCondition`` in apimachinery: a new reason or message alone is
    not a transition, so tools that sort by transition time are not misled.
    """
    existing = next((c for c in conditions if c.type == type_), None)
    transition = existing.last_transition_time if existing and existing.status == status else (at or now())
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=transition,
    )
    return [updated if c.type == type_ else c for c in conditions] if existing else [*conditions, updated]


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of ``type_``, or None when it has not been reported yet."""
    return next((c for c in conditions if c.type == type_), None)


@dataclass(frozen=True)
class Rule:
    """A validation rule across fields, enforced twice from one declaration.

    The API server runs ``cel`` (a CRD ``x-kubernetes-validations`` entry) so that ``kubectl apply``
    rejects bad objects; the operator and the local mode run ``holds`` on the parsed model, so the
    same object is rejected with the same ``message`` without a cluster.
    """

    cel: str
    message: str
    holds: Callable[[Any], bool]
    field_path: str | None = None

    def as_validation(self) -> dict[str, str]:
        """The rule as an ``x-kubernetes-validations`` entry."""
        entry = {"rule": self.cel, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        return entry


def broken_rules(rules: Sequence[Rule], value: Any) -> list[str]:
    """Messages of the rules that ``value`` breaks, in declaration order."""
    return [rule.message for rule in rules if not rule.holds(value)]


class ObjectMeta(KubeModel):
    """The subset of ``metav1.ObjectMeta`` that InferFlux reads; everything else passes through."""

    model_config = ConfigDict(extra="allow")

    name: str = ""
    namespace: str | None = None
    uid: str | None = None
    generation: int = 0
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
