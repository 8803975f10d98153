"""How many replicas a model's Deployment should run: its spec, its idleness, and the optional scaler.

A pure function of the InferenceModel (spec and the activity annotations the routers write on it,
see docs/scaling.md), the clock, and what the scaler decided last. Three cases, in this order:

- scale to zero: no router reported a request, an activation or an in-flight request for
  ``spec.scaleToZero.idleSeconds`` (counted from the model's creation when none ever did), so 0;
- the operator's scaler (``spec.autoscaling``): ``ceil(in-flight / targetInFlightPerReplica)``
  within ``[minReplicas, maxReplicas]``, rising at once and falling only after the lower count
  was enough for ``scaleDownDelaySeconds``;
- otherwise ``spec.replicas``.

``spec.replicas`` (and the scale subresource that writes it) is never changed: scaling to zero and
back is the operator's decision about the Deployment, so a GitOps tool sees no drift in the spec.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass

from inferflux.crds.inferencemodel import (
    ACTIVATE_ANNOTATION,
    IN_FLIGHT_ANNOTATION_PREFIX,
    LAST_REQUEST_ANNOTATION,
    Engine,
    InferenceModel,
)

#: A router's in-flight report older than this no longer counts (the router died or moved on);
#: routers re-report every ``INFERFLUX_ACTIVITY_REPORT_SECONDS`` (at most 30) while it is not 0.
IN_FLIGHT_STALE_SECONDS = 60.0

SPEC, SCALED_TO_ZERO, AUTOSCALED = "Spec", "ScaledToZero", "Autoscaled"


def parse_epoch(text: str | None) -> float | None:
    """Epoch seconds written by a router; None when absent or unreadable (never trusted blindly)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_in_flight(text: str) -> tuple[int, float] | None:
    """A router's ``"<count> <epoch seconds>"`` report; None when malformed."""
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit():
        return None
    at = parse_epoch(parts[1])
    return None if at is None else (int(parts[0]), at)


@dataclass(frozen=True)
class Activity:
    """What the routers reported about one model."""

    last_request: float | None = None
    activate: float | None = None
    in_flight: int = 0  # the sum of the fresh reports
    oldest_report: float | None = None  # the oldest fresh in-flight report that is not 0

    @classmethod
    def of(cls, annotations: Mapping[str, str], now: float) -> Activity:
        """The activity in ``annotations``; in-flight reports older than a minute are ignored."""
        in_flight, oldest = 0, None
        for key, value in annotations.items():
            if not key.startswith(IN_FLIGHT_ANNOTATION_PREFIX):
                continue
            report = parse_in_flight(value)
            if report is None or now - report[1] > IN_FLIGHT_STALE_SECONDS or report[0] == 0:
                continue
            in_flight += report[0]
            oldest = report[1] if oldest is None else min(oldest, report[1])
        return cls(
            parse_epoch(annotations.get(LAST_REQUEST_ANNOTATION)),
            parse_epoch(annotations.get(ACTIVATE_ANNOTATION)),
            in_flight,
            oldest,
        )


@dataclass(frozen=True)
class Decision:
    """The replicas to run, why, and when the decision may change with no new event."""

    replicas: int
    reason: str
    recheck: float | None = None  # seconds from now; None: only an event can change it
    low_since: float | None = None  # the scaler's memory: since when fewer replicas were enough


def idle_since(model: InferenceModel, activity: Activity) -> float:
    """The latest sign of use: a request, an activation, or the model's creation."""
    created = (model.metadata.model_extra or {}).get("creationTimestamp")
    signs = [activity.last_request, activity.activate, _epoch(created) if created else None]
    return max((sign for sign in signs if sign is not None), default=0.0)


def _epoch(timestamp: object) -> float | None:
    if isinstance(timestamp, dt.datetime):
        return timestamp.timestamp()
    if not isinstance(timestamp, str):
        return None
    try:
        return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _earliest(*delays: float | None) -> float | None:
    return min((delay for delay in delays if delay is not None), default=None)


def autoscaled(
    model: InferenceModel, in_flight: int, current: int, low_since: float | None, now: float
) -> Decision:
    """The scaler's replicas for ``in_flight`` requests when ``current`` replicas run now."""
    policy = model.spec.autoscaling
    wanted = math.ceil(in_flight / policy.target_in_flight_per_replica)
    wanted = max(policy.min_replicas, min(policy.max_replicas, wanted))
    if wanted >= current:
        return Decision(wanted, AUTOSCALED)
    since = now if low_since is None else low_since
    waited = now - since
    if waited >= policy.scale_down_delay_seconds:
        return Decision(wanted, AUTOSCALED)
    return Decision(current, AUTOSCALED, policy.scale_down_delay_seconds - waited, since)


def desired_replicas(
    model: InferenceModel,
    activity: Activity,
    now: float,
    current: int | None = None,
    low_since: float | None = None,
    idle_cap: float | None = None,
) -> Decision:
    """The replicas ``model``'s Deployment should run at ``now``.

    ``current`` is what its Deployment runs (None before there is one), ``low_since`` what the
    last decision remembered, ``idle_cap`` an install-wide upper bound on ``idleSeconds`` (tests).
    """
    spec = model.spec
    if spec.engine == Engine.PROVIDER:
        return Decision(0, SPEC)
    recheck = None
    if activity.in_flight:  # a report turning stale counts as idle from then on
        recheck = activity.oldest_report + IN_FLIGHT_STALE_SECONDS - now if activity.oldest_report else None
    if spec.scale_to_zero.enabled and not activity.in_flight:
        idle_seconds = float(spec.scale_to_zero.idle_seconds)
        if idle_cap is not None:
            idle_seconds = min(idle_seconds, idle_cap)
        left = idle_since(model, activity) + idle_seconds - now
        if left <= 0:
            return Decision(0, SCALED_TO_ZERO)
        recheck = left
    if spec.autoscaling.enabled:
        decision = autoscaled(model, activity.in_flight, current or 0, low_since, now)
        return Decision(
            decision.replicas, AUTOSCALED, _earliest(recheck, decision.recheck), decision.low_since
        )
    return Decision(spec.replicas, SPEC, recheck)
