"""A tenant's usage on the admin API: the pure view, then the route over a ledger on a real Redis."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from inferflux.crds.policy import PolicySource, TenantPolicy
from inferflux.prompts.checksum import jcs_checksum
from inferflux.router.admin import usage
from inferflux.router.admin.app import create_app
from inferflux.router.admin.auth import AdminAuth
from inferflux.router.admin.service import AdminService
from inferflux.router.budgets.factory import UNPRICED
from inferflux.router.budgets.ledger import (
    Ledger,
    Limits,
    Rates,
    RateUse,
    ScopeLimits,
    ScopeRates,
    Spend,
    WindowSpend,
)
from inferflux.router.budgets.pricing import Pricing
from inferflux.router.budgets.stage import PricingHolder, scope_limits
from inferflux.router.identity.api_keys import KeyHasher
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.policy.store import MemoryPolicyStore

TOKEN = "usage-admin-token-0123456789"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
NOW = dt.datetime(2026, 12, 6, 12, 30, 15, 123456, tzinfo=dt.UTC)
_document: dict[str, Any] = {"version": "7", "currency": "EUR", "models": {}}
PRICED = Pricing(**_document, checksum=jcs_checksum(_document))
BUDGETED = {"budget": {"daily": "2.00", "monthly": "50"}, "rateLimits": {"requestsPerMinute": 600}}


def tenant(**fields: Any) -> TenantPolicy:
    return TenantPolicy(name="acme", source=PolicySource.ADMIN, **fields)


def test_the_view_gives_each_window_with_its_percentage_and_the_lead_window() -> None:
    spend = Spend(
        day="2026-12-06",
        month="2026-12",
        tenant={
            "daily": WindowSpend(spent=1_500_000, reserved=250_000, limit=2_000_000),
            "monthly": WindowSpend(spent=4_000_000, reserved=250_000, limit=50_000_000),
            "total": WindowSpend(spent=9_000_000, reserved=250_000, limit=None),
        },
        key=None,
    )
    rates = Rates(
        tenant=ScopeRates(requests=RateUse(600, 10, 7, 0.3), tokens=None),
        key=None,
    )
    view = usage.usage_view(tenant(**BUDGETED), spend, rates, PRICED, NOW)
    wire = view.model_dump(by_alias=True, mode="json")
    assert wire["budgets"] == "on"
    assert (wire["currency"], wire["pricingVersion"]) == ("EUR", "7")
    assert wire["windows"] == [
        {"window": "daily", "period": "2026-12-06", "spent": "1.50", "reserved": "0.25", "limit": "2.00",
         "usedPercent": 75},
        {"window": "monthly", "period": "2026-12", "spent": "4.00", "reserved": "0.25", "limit": "50.00",
         "usedPercent": 8},
        {"window": "total", "period": "all", "spent": "9.00", "reserved": "0.25", "limit": None,
         "usedPercent": None},
    ]  # fmt: skip
    assert (wire["status"]["window"], wire["status"]["usedPercent"]) == ("daily", 75)
    assert wire["rateLimits"] == {
        "requests": {"limitPerMinute": 600, "capacity": 10, "remaining": 7, "used": 3, "resetSeconds": 0.3},
        "tokens": None,
    }
    assert wire["notes"] == [usage.KEYS_LEFT_OUT]
    assert wire["readAt"] == "2026-12-06T12:30:15Z"


def test_the_view_says_what_its_figures_do_not_cover() -> None:
    empty = WindowSpend(0, 0, None)
    spend = Spend("2026-12-06", "2026-12", {"daily": empty, "monthly": empty, "total": empty}, None)
    view = usage.usage_view(tenant(), spend, Rates(ScopeRates(None, None), None), UNPRICED, NOW)
    assert view.notes == [usage.UNMETERED, usage.UNPRICED, usage.KEYS_LEFT_OUT]
    assert view.status is None  # no window has a limit: nothing leads
    assert view.rate_limits is not None
    assert (view.rate_limits.requests, view.rate_limits.tokens) == (None, None)


@dataclass
class Admin:
    client: httpx.AsyncClient
    holder: PolicyHolder
    ledger: Ledger | None


async def admin_over(ledger: Ledger | None) -> AsyncIterator[Admin]:
    holder = PolicyHolder()
    store = MemoryPolicyStore(holder)
    await store.load()
    hasher = KeyHasher(os.urandom(32))
    service = AdminService(
        holder, store, hasher, None, lambda: NOW, ledger=ledger, pricing=PricingHolder(PRICED)
    )
    app = create_app(service, AdminAuth(holder, hasher, TOKEN))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin") as client:
        yield Admin(client, holder, ledger)


@pytest.fixture
async def ledger(redis: Any) -> AsyncIterator[Ledger]:
    # The script runs at NOW (a test-only clock), so that the rate figures are exact.
    opened = Ledger.from_url(redis.url, clock=lambda: int(NOW.timestamp() * 1_000_000))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def admin(ledger: Ledger) -> AsyncIterator[Admin]:
    async for made in admin_over(ledger):
        yield made


async def test_requests_show_as_spend_and_fewer_requests_left_and_reading_takes_nothing(admin: Admin) -> None:
    assert (await admin.client.put("/admin/v1/tenants/acme", json=BUDGETED, headers=ADMIN)).status_code == 200
    fresh = (await admin.client.get("/admin/v1/tenants/acme/usage", headers=ADMIN)).json()
    assert fresh["rateLimits"]["requests"]["remaining"] == 10  # 600/min: a burst of 10
    assert [window["spent"] for window in fresh["windows"]] == ["0.00", "0.00", "0.00"]

    # Three requests the way the budget stage makes them: admitted (a slot each), then settled.
    assert admin.ledger is not None
    policy = admin.holder.current.tenants["acme"]
    limits = Limits(scope_limits(policy.budget, policy.rate_limits) or ScopeLimits())
    for i in range(3):
        admission = await admin.ledger.admit(f"r{i}", "acme", None, 400_000, limits, pricing_checksum="")
        assert admission.admitted
        if i < 2:
            await admin.ledger.settle(admission, 300_000, 40)  # the third is still in flight

    for _ in range(3):  # the same figures each time: reading takes no slot
        used = await admin.client.get("/admin/v1/tenants/acme/usage", headers=ADMIN)
        assert used.status_code == 200, used.text
        body = used.json()
        requests = body["rateLimits"]["requests"]
        assert requests["limitPerMinute"] == 600
        assert (requests["capacity"], requests["remaining"], requests["used"]) == (10, 7, 3)
        assert requests["resetSeconds"] == pytest.approx(0.3)
        daily = body["windows"][0]
        assert (daily["window"], daily["spent"], daily["reserved"], daily["limit"]) == (
            "daily", "0.60", "0.40", "2.00"
        )  # fmt: skip
        assert daily["usedPercent"] == 30
        assert body["windows"][2]["limit"] is None
        assert body["windows"][0]["period"] == "2026-12-06"
        assert body["status"]["window"] == "daily"
        assert body["currency"] == "EUR"
        assert body["rateLimits"]["tokens"] is None


async def test_an_unknown_tenant_is_404_in_the_openai_shape(admin: Admin) -> None:
    response = await admin.client.get("/admin/v1/tenants/nobody/usage", headers=ADMIN)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    refused = await admin.client.get("/admin/v1/tenants/nobody/usage")
    assert refused.status_code == 401


async def test_without_a_ledger_the_body_says_budgets_are_off() -> None:
    async for made in admin_over(None):
        await made.client.put("/admin/v1/tenants/acme", json=BUDGETED, headers=ADMIN)
        body = (await made.client.get("/admin/v1/tenants/acme/usage", headers=ADMIN)).json()
        assert body["budgets"] == "off"
        assert body["notes"] == [usage.OFF]
        assert (body["windows"], body["rateLimits"], body["status"]) == ([], None, None)


async def test_an_unreachable_ledger_is_a_clear_503() -> None:
    with socket.socket() as sock:  # a port nobody listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    away = Ledger.from_url(f"redis://127.0.0.1:{port}")
    try:
        async for made in admin_over(away):
            await made.client.put("/admin/v1/tenants/acme", json=BUDGETED, headers=ADMIN)
            response = await made.client.get("/admin/v1/tenants/acme/usage", headers=ADMIN)
            assert response.status_code == 503
            error = response.json()["error"]
            assert (error["code"], error["type"]) == ("ledger_unavailable", "service_unavailable_error")
            assert "Redis" in error["message"]
    finally:
        await away.close()
