"""The replicas a model should run: spec, idle scale to zero, and the operator's own scaler."""

from __future__ import annotations

from typing import Any

import pytest

from inferflux.operator.scaling import (
    AUTOSCALED,
    IN_FLIGHT_STALE_SECONDS,
    SCALED_TO_ZERO,
    SPEC,
    Activity,
    desired_replicas,
    parse_in_flight,
)
from tests.operator.conftest import ModelFactory

CREATED = "2026-01-01T00:00:00Z"
T0 = 1767225600.0  # CREATED as epoch seconds
LAST = "inferflux.io/last-request"
ACTIVATE = "inferflux.io/activate"


def idle_model(model: ModelFactory, annotations: dict[str, str] | None = None, **spec: Any) -> Any:
    meta = {"creationTimestamp": CREATED, "annotations": annotations or {}}
    return model(
        metadata=meta, spec={"replicas": 2, "scaleToZero": {"enabled": True, "idleSeconds": 600}, **spec}
    )


def decide(m: Any, now: float, **kwargs: Any) -> Any:
    return desired_replicas(m, Activity.of(m.metadata.annotations, now), now, **kwargs)


def test_without_scaling_the_spec_decides_and_nothing_is_rechecked(model: ModelFactory) -> None:
    m = model(spec={"replicas": 3})
    decision = decide(m, T0 + 10**6)
    assert (decision.replicas, decision.reason, decision.recheck) == (3, SPEC, None)


def test_a_model_never_used_idles_from_its_creation(model: ModelFactory) -> None:
    m = idle_model(model)
    before = decide(m, T0 + 599)
    assert (before.replicas, before.reason) == (2, SPEC)
    assert before.recheck == pytest.approx(1)  # looked at again exactly when it turns idle
    after = decide(m, T0 + 600)
    assert (after.replicas, after.reason, after.recheck) == (0, SCALED_TO_ZERO, None)


def test_the_last_request_and_an_activation_restart_the_idle_clock(model: ModelFactory) -> None:
    used = idle_model(model, {LAST: str(T0 + 1000)})
    assert decide(used, T0 + 1500).replicas == 2
    assert decide(used, T0 + 1600).replicas == 0
    woken = idle_model(model, {LAST: str(T0 + 1000), ACTIVATE: str(T0 + 5000)})
    assert decide(woken, T0 + 5001).replicas == 2, "an activation brings the spec's replicas back"
    assert decide(woken, T0 + 5000 + 601).replicas == 0


def test_a_fresh_in_flight_report_keeps_a_model_up_and_a_stale_one_does_not(model: ModelFactory) -> None:
    now = T0 + 10_000
    busy = idle_model(model, {"inferflux.io/in-flight.router-a": f"3 {now - 5:.0f}"})
    decision = decide(busy, now)
    assert decision.replicas == 2, "a long request counts as use though it started long ago"
    assert decision.recheck == pytest.approx(IN_FLIGHT_STALE_SECONDS - 5)
    stale = idle_model(
        model, {"inferflux.io/in-flight.router-a": f"3 {now - IN_FLIGHT_STALE_SECONDS - 1:.0f}"}
    )
    assert decide(stale, now).replicas == 0, "a dead router's last report does not keep it up"


def test_the_idle_cap_shortens_idle_seconds_but_never_lengthens_them(model: ModelFactory) -> None:
    m = idle_model(model)
    assert decide(m, T0 + 3, idle_cap=2.0).replicas == 0
    assert decide(m, T0 + 599, idle_cap=10_000.0).replicas == 2


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({LAST: "soon"}, 0),  # unreadable times are ignored, not trusted
        ({LAST: "nan"}, 0),
        ({LAST: "-5"}, 0),
        ({"inferflux.io/in-flight.r": "many 1"}, 0),
    ],
)
def test_malformed_reports_are_ignored(
    model: ModelFactory, annotations: dict[str, str], expected: int
) -> None:
    assert decide(idle_model(model, annotations), T0 + 601).replicas == expected


def test_in_flight_reports_of_several_routers_add_up() -> None:
    now = T0
    activity = Activity.of(
        {
            "inferflux.io/in-flight.a": f"4 {now:.0f}",
            "inferflux.io/in-flight.b": f"5 {now - 10:.0f}",
            "inferflux.io/in-flight.c": f"0 {now:.0f}",
            "team.example/in-flight": "100 0",
        },
        now,
    )
    assert activity.in_flight == 9
    assert activity.oldest_report == now - 10
    assert parse_in_flight("4") is None


def scaler(model: ModelFactory, in_flight: int, at: float = T0, **policy: Any) -> Any:
    """A model with the scaler on, one router reporting ``in_flight`` at ``at``."""
    meta = {
        "creationTimestamp": CREATED,
        "annotations": {"inferflux.io/in-flight.a": f"{in_flight} {at:.0f}"},
    }
    settings = {"enabled": True, "minReplicas": 1, "maxReplicas": 5, "targetInFlightPerReplica": 4}
    return model(metadata=meta, spec={"autoscaling": settings | policy})


@pytest.mark.parametrize(("in_flight", "replicas"), [(0, 1), (1, 1), (4, 1), (5, 2), (12, 3), (100, 5)])
def test_the_scaler_divides_in_flight_by_the_target_within_the_bounds(
    model: ModelFactory, in_flight: int, replicas: int
) -> None:
    decision = decide(scaler(model, in_flight), T0, current=1)
    assert (decision.replicas, decision.reason) == (replicas, AUTOSCALED)


def test_the_scaler_scales_down_only_after_the_delay(model: ModelFactory) -> None:
    first = decide(scaler(model, 4, scaleDownDelaySeconds=300), T0, current=3)
    assert first.replicas == 3, "one replica would do, but not for long enough yet"
    assert first.recheck == pytest.approx(60), "the report turns stale before the delay ends"
    m = scaler(model, 4, T0 + 250, scaleDownDelaySeconds=300)
    later = decide(m, T0 + 260, current=3, low_since=first.low_since)
    assert later.replicas == 3
    assert later.recheck == pytest.approx(40)
    done = decide(m, T0 + 300, current=3, low_since=first.low_since)
    assert done.replicas == 1
    assert done.low_since is None


def test_a_rise_resets_the_scale_down_clock(model: ModelFactory) -> None:
    low = decide(scaler(model, 4), T0, current=3)
    high = decide(scaler(model, 12, T0 + 100), T0 + 100, current=3, low_since=low.low_since)
    assert (high.replicas, high.low_since) == (3, None)
    again = decide(scaler(model, 4, T0 + 350), T0 + 350, current=3, low_since=high.low_since)
    assert again.replicas == 3, "the delay counts from the last time more replicas were needed"


def test_scale_to_zero_wins_over_the_scalers_minimum_when_idle(model: ModelFactory) -> None:
    meta = {"creationTimestamp": CREATED}
    autoscaling = {"enabled": True, "minReplicas": 2, "maxReplicas": 4}
    m = model(
        metadata=meta, spec={"scaleToZero": {"enabled": True, "idleSeconds": 60}, "autoscaling": autoscaling}
    )
    assert decide(m, T0 + 61, current=2).replicas == 0
    woken = decide(m, T0 + 30, current=0)
    assert (woken.replicas, woken.reason) == (2, AUTOSCALED), "from zero straight to the minimum"


def test_a_provider_model_runs_no_replicas(model: ModelFactory) -> None:
    m = model("provider-model")
    assert decide(m, T0).replicas == 0
