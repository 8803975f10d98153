"""Spend reporting on a real Redis: status documents, gauges, one replica per round, signed alerts."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from inferflux.crds.budget import Budget, BudgetStatus, Window
from inferflux.crds.policy import PolicySnapshot, PolicySource, TenantPolicy
from inferflux.router.budgets.ledger import Ledger, Limits, ScopeLimits, Spend
from inferflux.router.budgets.ledger import WindowSpend as Amounts
from inferflux.router.budgets.metrics import BudgetMetrics
from inferflux.router.budgets.pricing import Pricing
from inferflux.router.budgets.report import SpendReporter, Webhook, budget_status, crossed, signature
from inferflux.router.budgets.stage import PricingHolder
from inferflux.router.policy.effective import PolicyHolder

NOW = dt.datetime(2026, 12, 6, 12, 0, 0, 123, tzinfo=dt.UTC)


def spend(**windows: tuple[int, int, int | None]) -> Spend:
    amounts = {w: Amounts(*windows.get(w, (0, 0, None))) for w in ("daily", "monthly", "total")}
    return Spend(day="2026-12-06", month="2026-12", tenant=amounts, key=None)  # type: ignore[arg-type]


def test_the_window_closest_to_its_limit_leads_the_status() -> None:
    status = budget_status(
        spend(daily=(900_000, 5, 1_000_000), total=(2_000_000, 0, 100_000_000)), "EUR", NOW
    )
    assert status is not None
    assert (status.window, status.spent, status.limit, status.used_percent) == (
        Window.DAILY,
        "0.90",
        "1.00",
        90,
    )
    assert [w.window for w in status.windows] == [Window.DAILY, Window.TOTAL]
    assert status.windows[0].reserved == "0.000005"
    assert status.updated_at == NOW.replace(microsecond=0)
    assert budget_status(spend(), "EUR", NOW) is None, "no limited window: nothing to show"


def test_thresholds_are_announced_once_each_and_highest_first() -> None:
    assert crossed(0.85, (0.5, 0.8, 1.0), announced=0.0) == 0.8
    assert crossed(0.85, (0.5, 0.8, 1.0), announced=0.8) is None
    assert crossed(1.2, (0.5, 0.8, 1.0), announced=0.8) == 1.0
    assert crossed(0.1, (0.5, 0.8, 1.0), announced=0.0) is None


class Receiver:
    """A webhook endpoint that checks signatures the way a user's would."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.received: list[dict[str, Any]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("x-inferflux-signature", ""), expected):
            return web.Response(status=401)
        self.received.append(orjson.loads(body))
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver(b"k" * 32)
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    yield hook
    await runner.cleanup()


def policy(**tenants: TenantPolicy) -> PolicyHolder:
    holder = PolicyHolder()
    holder.set_snapshot(PolicySnapshot(tenants=tenants))
    return holder


async def spend_some(ledger: Ledger, tenant: str, amount: int, limit: int) -> None:
    limits = Limits(ScopeLimits(daily=limit))
    admission = await ledger.admit(f"r-{amount}", tenant, None, amount, limits, pricing_checksum="")
    assert admission.admitted
    await ledger.settle(admission, amount, 1)


async def test_one_replica_reports_gauges_status_and_signed_alerts(
    ledger: Ledger, receiver: Receiver
) -> None:
    acme = TenantPolicy(name="acme", budget=Budget(daily="1"), source=PolicySource.RESOURCE)
    made = TenantPolicy(name="made", budget=Budget(daily="1"))  # declared through the admin API
    free = TenantPolicy(name="free")
    registry = CollectorRegistry()
    written: list[tuple[str, BudgetStatus]] = []

    async def writer(name: str, status: BudgetStatus) -> None:
        written.append((name, status))

    holder = policy(acme=acme, free=free)
    holder.put_tenant("made", made)
    reporters: list[SpendReporter] = []

    def reporter(replica: str) -> SpendReporter:
        reporters.append(
            made_reporter := SpendReporter(
                ledger,
                holder,
                PricingHolder(Pricing(version="1", currency="EUR")),
                BudgetMetrics(registry) if replica == "a" else BudgetMetrics(CollectorRegistry()),
                writer=writer,
                webhook=Webhook(receiver.url, b"k" * 32),
                interval=60,
                replica=replica,
            )
        )
        return made_reporter

    await spend_some(ledger, "acme", 850_000, 1_000_000)
    first, second = reporter("a"), reporter("b")
    assert await first.once(NOW) == 2, "the two budgeted tenants"
    assert await second.once(NOW) == 0, "the other replica lost this round's lock"
    assert [name for name, _ in written] == ["acme"], "only resource tenants have a status to write"
    assert written[0][1].used_percent == 85
    gauge = registry.get_sample_value(
        "inferflux_router_budget_used_ratio", {"tenant": "acme", "window": "daily"}
    )
    assert gauge == pytest.approx(0.85)
    assert [(m["tenant"], m["threshold"]) for m in receiver.received] == [("acme", 0.8)]
    assert receiver.received[0]["spent"] == "0.85"

    await ledger.client.delete(f"{ledger.prefix}report-lock")
    await spend_some(ledger, "acme", 100_000, 1_000_000)
    await first.once(NOW)
    assert [m["threshold"] for m in receiver.received] == [0.8], "0.95: no new threshold, no repeat"
    await ledger.client.delete(f"{ledger.prefix}report-lock")
    await spend_some(ledger, "acme", 60_000, 10_000_000)
    await reporter("c").once(NOW)
    assert [m["threshold"] for m in receiver.received] == [0.8, 1.0], "a new replica remembers what was said"
    for each in reporters:
        await each.close()
    assert signature(b"k" * 32, b"{}") == "sha256=" + hmac.new(b"k" * 32, b"{}", hashlib.sha256).hexdigest()
