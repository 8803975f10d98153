"""The router's activity reports and activations (the Kubernetes write itself: e2e/test_scale_to_zero.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from inferflux.crds.routing import ModelRoute
from inferflux.router.activation import ActivityReporter, in_flight_key

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
IN_FLIGHT = "inferflux.io/in-flight.router-a"


class Recorder:
    """Records the annotation writes; ``fail`` makes the next ones raise, as an API error would."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str, dict[str, str | None]]] = []
        self.fail = False
        self.on_write: Any = None

    async def __call__(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        if self.fail:
            raise ConnectionError("api server unreachable")
        self.writes.append((namespace, name, dict(annotations)))
        if self.on_write is not None:
            self.on_write()


def model_route(**extra: Any) -> ModelRoute:
    return ModelRoute.model_validate({"namespace": "team-a", "name": "m", "engine": "llamacpp", **extra})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_reports_are_bounded_to_one_write_per_model_and_period() -> None:
    writer, clock, load = Recorder(), Clock(), {"m": 0}
    reporter = ActivityReporter(writer, load.__getitem__, "router-a", 10.0, clock)
    route = model_route(scaleToZero=True)
    for _ in range(100):
        reporter.seen("m", route)
    await reporter.flush()
    assert writer.writes == [("team-a", "m", {"inferflux.io/last-request": "1000.000"})]
    await reporter.flush()
    assert len(writer.writes) == 1, "nothing new: nothing written"
    clock.now = 1010.0
    reporter.seen("m", route)
    await reporter.flush()
    assert writer.writes[-1][2] == {"inferflux.io/last-request": "1010.000"}


async def test_in_flight_is_refreshed_while_not_zero_and_removed_once_at_zero() -> None:
    writer, clock, load = Recorder(), Clock(), {"m": 3}
    reporter = ActivityReporter(writer, load.__getitem__, "router-a", 10.0, clock)
    reporter.seen("m", model_route(autoscaling=True))
    await reporter.flush()
    assert writer.writes[-1][2][IN_FLIGHT] == "3 1000"
    clock.now = 1010.0
    await reporter.flush()
    assert writer.writes[-1][2] == {IN_FLIGHT: "3 1010"}, "a heartbeat: the operator drops stale counts"
    load["m"] = 0
    clock.now = 1020.0
    await reporter.flush()
    assert writer.writes[-1][2] == {IN_FLIGHT: None, "inferflux.io/last-request": "1020.000"}, (
        "back to 0: the key is removed, and the model counts as used until now"
    )
    await reporter.flush()
    assert len(writer.writes) == 3


async def test_models_without_scaling_are_never_reported() -> None:
    writer = Recorder()
    reporter = ActivityReporter(writer, lambda _: 5, "router-a", 10.0)
    reporter.seen("m", model_route())
    reporter.activate("m", model_route())
    await reporter.flush()
    await reporter.close()
    assert writer.writes == []


async def test_a_failed_write_is_retried_at_the_next_flush_and_never_raises() -> None:
    writer = Recorder()
    reporter = ActivityReporter(writer, lambda _: 0, "router-a", 10.0, Clock())
    reporter.seen("m", model_route(scaleToZero=True))
    writer.fail = True
    await reporter.flush()
    writer.fail = False
    await reporter.flush()
    assert writer.writes == [("team-a", "m", {"inferflux.io/last-request": "1000.000"})]


def test_the_in_flight_key_is_a_valid_annotation_key_for_any_router_name() -> None:
    assert (
        in_flight_key("inferflux-router-7d9c8b6f5-abcde")
        == "inferflux.io/in-flight.inferflux-router-7d9c8b6f5-abcde"
    )
    long = in_flight_key("r" * 200)
    assert len(long.split("/")[1]) <= 63
    assert long != in_flight_key("r" * 199)
    assert in_flight_key("Router_A!") == "inferflux.io/in-flight.router-a"


async def test_a_request_for_a_model_scaled_to_zero_activates_it_and_is_served_once_ready(
    mocks: Any, make_router: Any, route: Any
) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([], namespace="team-a", scaleToZero=True)})
    writer = Recorder()
    dispatcher = harness.router.dispatcher
    dispatcher.activity = ActivityReporter(writer, dispatcher.load, "router-a", 10.0)
    dispatcher.activation_hold_seconds = 10.0
    # The operator's part, played here: the activation scales the model up, its replica turns Ready.
    writer.on_write = lambda: harness.write_routes(
        {"m": route([backend.url], namespace="team-a", scaleToZero=True)}
    )

    async with harness.post("/v1/chat/completions", CHAT) as response:
        assert response.status == 200, await response.text()
    assert len(writer.writes) == 1
    namespace, name, annotations = writer.writes[0]
    assert (namespace, name) == ("team-a", "m")
    assert set(annotations) == {"inferflux.io/activate", "inferflux.io/last-request"}
    assert harness.router.metrics.held.labels("m")._value.get() == 0


async def test_a_request_held_past_the_activation_hold_gets_503_with_retry_after(
    make_router: Any, route: Any
) -> None:
    harness = await make_router({"m": route([], namespace="team-a", scaleToZero=True)}, hold_seconds=30.0)
    writer = Recorder()
    dispatcher = harness.router.dispatcher
    dispatcher.activity = ActivityReporter(writer, dispatcher.load, "router-a", 10.0)
    dispatcher.activation_hold_seconds = 0.3
    async with harness.post("/v1/chat/completions", CHAT) as response:
        document = await response.json()
        assert response.status == 503
        assert response.headers["retry-after"] == "1"
    assert document["error"]["code"] == "unavailable"
    assert "no ready replica after 0.3 s" in document["error"]["message"]
    assert [w[2].keys() for w in writer.writes] == [{"inferflux.io/activate", "inferflux.io/last-request"}]


async def test_many_held_requests_ask_for_one_activation(make_router: Any, route: Any) -> None:
    harness = await make_router({"m": route([], namespace="team-a", scaleToZero=True)})
    writer = Recorder()
    dispatcher = harness.router.dispatcher
    dispatcher.activity = ActivityReporter(writer, dispatcher.load, "router-a", 10.0)
    dispatcher.activation_hold_seconds = 0.5

    async def ask() -> int:
        async with harness.post("/v1/chat/completions", CHAT) as response:
            return response.status

    statuses = await asyncio.gather(*(ask() for _ in range(5)))
    assert statuses == [503] * 5
    assert len(writer.writes) == 1
