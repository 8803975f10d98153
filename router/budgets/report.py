"""Spend, reported: gauges for alerting, ``status.budget`` on Tenant resources, threshold webhooks.

Every ``interval`` seconds one router replica (whichever takes the round's lock in Redis) reads
each budgeted tenant's windows from the ledger, and:

- sets ``inferflux_router_budget_used_ratio{tenant,window}`` (the chart's PrometheusRule alerts on
  it at 80 % and 100 %);
- writes ``status.budget`` of the tenant's ``Tenant`` resource, so ``kubectl get tenants`` shows
  spend, limit and percent used, at most once per interval (tenants declared through the admin API
  have no resource: every tenant's spend is read on demand at ``GET /admin/v1/tenants/{name}/usage``,
  router/admin/usage.py, which uses `budget_status` and `ratio` from here);
- posts a webhook, signed with HMAC-SHA-256, the first time a window crosses each threshold in a
  period (the crossings already announced are remembered in Redis, so a restart or another
  replica does not announce them again).

Failures are logged and retried the next round; none of this is on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from redis.asyncio import Redis

from inferflux.crds.budget import BudgetStatus, Window, WindowSpend, from_micros
from inferflux.crds.policy import PolicySource, TenantPolicy
from inferflux.router.budgets.ledger import Ledger, LedgerUnavailable, Limits, Spend
from inferflux.router.budgets.ledger import WindowSpend as Amounts
from inferflux.router.budgets.metrics import BudgetMetrics
from inferflux.router.budgets.stage import PricingHolder, scope_limits
from inferflux.router.policy.effective import PolicyHolder

if TYPE_CHECKING:  # aiohttp is imported on the first webhook post: most routers never send one
    import aiohttp

log = logging.getLogger("inferflux.router.budgets.report")

DEFAULT_THRESHOLDS = (0.5, 0.8, 1.0)
SIGNATURE_HEADER = "x-inferflux-signature"
StatusWriter = Callable[[str, BudgetStatus], Awaitable[None]]


def budget_status(spend: Spend, currency: str, now: dt.datetime) -> BudgetStatus | None:
    """``status.budget`` from the tenant's windows: the one closest to its limit leads."""
    limited = [(window, amounts) for window, amounts in spend.tenant.items() if amounts.limit]
    if not limited:
        return None
    windows = [
        WindowSpend(
            window=Window(window),
            spent=from_micros(amounts.spent),
            reserved=from_micros(amounts.reserved),
            limit=from_micros(amounts.limit or 0),
        )
        for window, amounts in limited
    ]
    window, lead = max(limited, key=lambda item: ratio(item[1]))
    return BudgetStatus(
        currency=currency,
        window=Window(window),
        spent=from_micros(lead.spent),
        limit=from_micros(lead.limit or 0),
        used_percent=int(ratio(lead) * 100),
        windows=windows,
        updated_at=now.replace(microsecond=0),
    )


def ratio(amounts: Amounts) -> float:
    """Settled spend over limit (0 when unlimited)."""
    return amounts.spent / amounts.limit if amounts.limit else 0.0


def crossed(used: float, thresholds: Iterable[float], announced: float) -> float | None:
    """The highest threshold ``used`` reached that is above the one already ``announced``."""
    reached = [threshold for threshold in thresholds if used >= threshold > announced]
    return max(reached) if reached else None


def signature(secret: bytes, body: bytes) -> str:
    """The webhook signature header's value: ``sha256=<hex HMAC of the body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def period_of(window: str, spend: Spend) -> str:
    """The name of the window's current period (a day, a month, or ``all``)."""
    return {"daily": spend.day, "monthly": spend.month}.get(window, "all")


@dataclass(frozen=True)
class Webhook:
    """Where threshold alerts go, and the secret their signature is made with."""

    url: str
    secret: bytes
    timeout: float = 5.0


class SpendReporter:
    """The periodic task described in the module docstring."""

    def __init__(
        self,
        ledger: Ledger,
        policy: PolicyHolder,
        pricing: PricingHolder,
        metrics: BudgetMetrics,
        *,
        writer: StatusWriter | None = None,
        webhook: Webhook | None = None,
        interval: float = 30.0,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        replica: str | None = None,
    ) -> None:
        self.ledger = ledger
        self.policy = policy
        self.pricing = pricing
        self.metrics = metrics
        self.writer = writer
        self.webhook = webhook
        self.interval = interval
        self.thresholds = tuple(sorted(thresholds))
        self.replica = replica or socket.gethostname()
        self._session: aiohttp.ClientSession | None = None

    @property
    def redis(self) -> Redis:
        """The ledger's Redis, where the round lock and the announced thresholds live."""
        return self.ledger.client

    async def run(self) -> None:
        """Report every ``interval`` seconds until cancelled."""
        try:
            while True:
                with contextlib.suppress(LedgerUnavailable):
                    await self.once()
                await asyncio.sleep(self.interval)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the webhook's connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def once(self, now: dt.datetime | None = None) -> int:
        """One round, if this replica wins its lock; the number of tenants reported."""
        lock = f"{self.ledger.prefix}report-lock"
        won = await self.redis.set(lock, self.replica, nx=True, px=max(1, int(self.interval * 1000 * 0.9)))
        if not won:
            return 0
        now = now or dt.datetime.now(dt.UTC)
        reported = 0
        for tenant in list(self.policy.current.tenants.values()):
            if tenant.budget is not None and tenant.budget.limits():
                await self._report(tenant, now)
                reported += 1
        return reported

    async def _report(self, tenant: TenantPolicy, now: dt.datetime) -> None:
        limits = Limits(scope_limits(tenant.budget, None) or Limits().tenant)
        spend = await self.ledger.spend(tenant.name, None, limits)
        currency = self.pricing.current.currency
        for window, amounts in spend.tenant.items():
            if amounts.limit:
                self.metrics.used_ratio.labels(tenant.name, window).set(ratio(amounts))
                await self._announce(tenant.name, window, amounts, spend, currency)
        status = budget_status(spend, currency, now)
        if status is not None and self.writer is not None and tenant.source == PolicySource.RESOURCE:
            try:
                await self.writer(tenant.name, status)
            except Exception as error:  # the API server may be away; the next round writes again
                log.warning("could not write the spend of tenant %s: %s", tenant.name, error)

    async def _announce(
        self, tenant: str, window: str, amounts: Amounts, spend: Spend, currency: str
    ) -> None:
        if self.webhook is None:
            return
        key = f"{self.ledger.prefix}announced:{tenant}:{window}:{period_of(window, spend)}"
        previous = await self.redis.get(key)
        threshold = crossed(ratio(amounts), self.thresholds, float(previous or 0))
        if threshold is None:
            return
        body = orjson.dumps(
            {
                "tenant": tenant,
                "window": window,
                "period": period_of(window, spend),
                "threshold": threshold,
                "spent": from_micros(amounts.spent),
                "limit": from_micros(amounts.limit or 0),
                "currency": currency,
            }
        )
        if await self._post(body):
            await self.redis.set(key, str(threshold), ex=40 * 24 * 3600)

    async def _post(self, body: bytes) -> bool:
        assert self.webhook is not None
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.webhook.timeout))
        headers = {"content-type": "application/json", SIGNATURE_HEADER: signature(self.webhook.secret, body)}
        try:
            async with self._session.post(self.webhook.url, data=body, headers=headers) as response:
                if response.status < 300:
                    return True
                log.warning("budget webhook answered %d; retrying next round", response.status)
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("budget webhook unreachable (%s); retrying next round", type(error).__name__)
        return False
