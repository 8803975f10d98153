"""The console's live data: the models view, the snapshot, its SSE stream, and the routes' auth.

The page itself, in a real browser, is tested in test_console_browser.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import orjson
import pytest

from inferflux.crds.routing import ModelRoute, RoutingTable
from inferflux.router.admin.app import create_app
from inferflux.router.admin.auth import AdminAuth
from inferflux.router.admin.console import ConsoleSources, events, model_state, models_view, snapshot
from inferflux.router.admin.service import AdminService
from inferflux.router.guardrails.recent import RecentVerdicts
from inferflux.router.guardrails.verdicts import Check, Direction, Verdict
from inferflux.router.pipeline import Call
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.policy.store import MemoryPolicyStore
from inferflux.router.recent_requests import RecentRequests

TOKEN = "console-admin-token-0123456789"
TABLE = RoutingTable.model_validate(
    {
        "models": {
            "zeta": {"name": "zeta", "engine": "llamacpp", "scaleToZero": True},
            "alpha": {
                "name": "alpha",
                "engine": "llamacpp",
                "revision": "r2",
                "endpoints": [
                    {"url": "http://10.0.0.1:8080", "pod": "alpha-0", "revision": "r2"},
                    {"url": "http://10.0.0.2:8080", "pod": "alpha-1", "revision": "r2"},
                ],
            },
        }
    }
)


@dataclass
class Queue:
    queued: int
    active: int


def test_models_come_sorted_with_replicas_and_this_routers_queue() -> None:
    models = models_view(TABLE, {"alpha": Queue(queued=3, active=2)})
    assert [model["name"] for model in models] == ["alpha", "zeta"]
    alpha, zeta = models
    assert [replica["pod"] for replica in alpha["replicas"]] == ["alpha-0", "alpha-1"]
    assert (alpha["revision"], alpha["queued"], alpha["inFlight"]) == ("r2", 3, 2)
    assert (zeta["replicas"], zeta["scaleToZero"], zeta["queued"], zeta["inFlight"]) == ([], True, 0, 0)


def test_the_snapshot_says_when_guardrails_are_off() -> None:
    assert snapshot(ConsoleSources(lambda: TABLE, {}))["guardrails"] == {"enabled": False, "recent": []}


def conditions(ready: str, progressing: str = "False", stalled: str = "False") -> ModelRoute:
    reasons = {"True": "Yes", "False": "No", "Unknown": "Initializing"}
    return ModelRoute.model_validate(
        {
            "name": "m",
            "engine": "llamacpp",
            "conditions": [
                {
                    "type": kind,
                    "status": status,
                    "reason": f"{kind}{reasons[status]}",
                    "message": f"{kind} says",
                }
                for kind, status in (("Ready", ready), ("Progressing", progressing), ("Stalled", stalled))
            ],
        }
    )


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (conditions("True"), ("Ready", "ReadyYes", "Ready says")),
        (conditions("True", progressing="True"), ("Ready", "ReadyYes", "Ready says")),
        (conditions("Unknown", progressing="True"), ("Progressing", "ReadyInitializing", "Ready says")),
        (conditions("False"), ("Not ready", "ReadyNo", "Ready says")),
        (conditions("False", stalled="True"), ("Stalled", "StalledYes", "Stalled says")),
        (TABLE.models["alpha"], ("Not reported", None, None)),
    ],
)
def test_a_models_state_names_its_cause(
    route: ModelRoute, expected: tuple[str, str | None, str | None]
) -> None:
    state = model_state(route)
    assert (state["state"], state["reason"], state["message"]) == expected


def test_the_models_view_carries_the_published_conditions() -> None:
    table = RoutingTable(models={"m": conditions("Unknown", progressing="True")})
    (model,) = models_view(table, {})
    assert model["state"] == "Progressing"
    assert [condition["type"] for condition in model["conditions"]] == ["Ready", "Progressing", "Stalled"]
    assert model["conditions"][0] == {
        "type": "Ready",
        "status": "Unknown",
        "reason": "ReadyInitializing",
        "message": "Ready says",
    }


def test_the_snapshot_lists_recent_requests_and_says_when_they_are_off() -> None:
    assert snapshot(ConsoleSources(lambda: TABLE, {}))["requests"] == {
        "enabled": False,
        "traceLinks": False,
        "recent": [],
    }
    requests = RecentRequests()
    for number in range(60):
        requests.record(Call(f"r{number}", "chat", "alpha", {}, b"{}", status=200))
    shown = snapshot(ConsoleSources(lambda: TABLE, {}, None, requests, "http://j/{trace_id}"))["requests"]
    assert (shown["enabled"], shown["traceLinks"]) == (True, True)
    assert len(shown["recent"]) == 50, "the live snapshot carries the newest 50"
    assert shown["recent"][0]["requestId"] == "r59"


async def test_the_stream_sends_a_snapshot_at_once_then_only_changes_then_heartbeats() -> None:
    recent = RecentVerdicts()
    sources = ConsoleSources(lambda: TABLE, {}, recent)
    checks = 0

    async def disconnected() -> bool:
        nonlocal checks
        checks += 1
        if checks == 3:  # between two checks, a verdict arrives
            recent.add(
                "team-a", [Verdict(Direction.INPUT, Check.PII, "card", "redact")], dt.datetime.now(dt.UTC)
            )
        return checks > 6

    frames = [
        frame async for frame in events(sources, disconnected, check_seconds=0.0, heartbeat_seconds=0.0)
    ]
    assert [frame.split(b"\n")[0] for frame in frames] == [
        b"event: snapshot",
        b": heartbeat",
        b"event: snapshot",
        b": heartbeat",
        b": heartbeat",
        b": heartbeat",
    ]
    first, second = (orjson.loads(frame.split(b"data: ", 1)[1]) for frame in (frames[0], frames[2]))
    assert first["guardrails"]["recent"] == []
    assert second["guardrails"]["recent"][0]["verdicts"][0]["subject"] == "card"


@pytest.fixture
def client() -> Callable[[], httpx.AsyncClient]:
    holder = PolicyHolder()
    recent = RecentVerdicts()
    recent.add("team-a", [Verdict(Direction.INPUT, Check.PII, "email", "redact")], dt.datetime.now(dt.UTC))
    requests = RecentRequests()
    requests.record(Call("r1", "chat", "alpha", {}, b"{}", status=200))
    app = create_app(
        AdminService(holder, MemoryPolicyStore(holder), None, None),
        AdminAuth(holder, None, TOKEN),
        console=ConsoleSources(lambda: TABLE, {}, recent, requests),
    )
    return lambda: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin")


async def test_the_page_is_served_without_a_token_and_the_data_only_with_one(
    client: Callable[[], httpx.AsyncClient],
) -> None:
    async with client() as http:
        page = await http.get("/console/")
        assert page.status_code == 200
        assert 'src="console.js"' in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self';")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert (await http.get("/console/console.js")).headers["content-type"].startswith("text/javascript")
        for path in (
            "/admin/v1/console/snapshot",
            "/admin/v1/guardrails/verdicts",
            "/admin/v1/requests/recent",
        ):
            refused = await http.get(path)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "invalid_token"
        headers = {"authorization": f"Bearer {TOKEN}"}
        state = (await http.get("/admin/v1/console/snapshot", headers=headers)).json()
        assert [model["name"] for model in state["models"]] == ["alpha", "zeta"]
        verdicts = (await http.get("/admin/v1/guardrails/verdicts", headers=headers)).json()
        assert verdicts["enabled"] is True
        assert [entry["tenant"] for entry in verdicts["data"]] == ["team-a"]
        listed = (await http.get("/admin/v1/requests/recent", headers=headers)).json()
        assert (listed["object"], listed["enabled"]) == ("list", True)
        assert [(entry["requestId"], entry["model"]) for entry in listed["recent"]] == [("r1", "alpha")]
