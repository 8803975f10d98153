"""Budgets and rate limits wired from the settings: the ledger, the pricing in force, the stage,
the spend reporter, and the poller that applies a new pricing file to new requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from inferflux.router.budgets.ledger import Ledger
from inferflux.router.budgets.metrics import BudgetMetrics
from inferflux.router.budgets.pricing import Pricing, PricingError, load_pricing
from inferflux.router.budgets.report import SpendReporter, Webhook
from inferflux.router.budgets.stage import BudgetStage, PricingHolder
from inferflux.router.budgets.tenant_status import TenantStatusWriter
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.settings import Settings, thresholds

log = logging.getLogger("inferflux.router.budgets")

# Without a pricing file every model costs nothing: rate limits still hold, budgets never fill.
UNPRICED = Pricing(version="unpriced", currency="USD")
PRICING_POLL_SECONDS = 2.0


def pricing_for(settings: Settings) -> Pricing:
    """The pricing file's content, verified against its checksum; `PricingError` (one line) if not."""
    if not settings.pricing_file:
        return UNPRICED
    return load_pricing(settings.pricing_file)


def ledger_for(settings: Settings) -> Ledger | None:
    """The ledger on the settings' Redis; None without one (budgeted tenants then get 503)."""
    if not settings.redis_url:
        return None
    return Ledger.from_url(
        settings.redis_url,
        reservation_ttl=settings.total_timeout_seconds + settings.budget_reservation_margin_seconds,
        idempotency_window=settings.budget_idempotency_seconds,
        socket_timeout=settings.budget_redis_timeout_seconds,
    )


def webhook_for(settings: Settings) -> Webhook | None:
    """The threshold webhook, with its signing secret read from its file."""
    if not settings.budget_webhook_url:
        return None
    secret = Path(settings.budget_webhook_secret_file).read_bytes().strip()
    if len(secret) < 16:
        raise PricingError(
            f"INFERFLUX_BUDGET_WEBHOOK_SECRET_FILE: {settings.budget_webhook_secret_file} "
            "holds fewer than 16 bytes"
        )
    return Webhook(settings.budget_webhook_url, secret)


@dataclass
class Budgets:
    """Everything budgets need in one router process."""

    settings: Settings
    ledger: Ledger | None
    pricing: PricingHolder
    stage: BudgetStage
    reporter: SpendReporter | None
    writer: TenantStatusWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        """Follow the pricing file and report spend, in the background."""
        if self.settings.pricing_file:
            self.tasks.append(asyncio.ensure_future(self._follow_pricing(self.settings.pricing_file)))
        if self.reporter is not None:
            self.tasks.append(asyncio.ensure_future(self.reporter.run()))

    async def _follow_pricing(self, path: str) -> None:
        seen = _stamp(path)
        while True:
            await asyncio.sleep(PRICING_POLL_SECONDS)
            stamp = _stamp(path)
            if stamp == seen:
                continue
            seen = stamp
            try:
                self.pricing.replace(load_pricing(path))
            except PricingError as error:
                log.error("keeping pricing %s: %s", self.pricing.current.checksum, error)

    async def close(self) -> None:
        """Stop the background work, then the ledger (which reports settles it could not send)."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.writer is not None:
            await self.writer.close()
        if self.ledger is not None:
            await self.ledger.close()


def _stamp(path: str) -> tuple[int, int, int] | None:
    with contextlib.suppress(OSError):
        stat = os.stat(path)
        return stat.st_mtime_ns, stat.st_size, stat.st_ino
    return None


def budgets_for(settings: Settings, policy: PolicyHolder, registry: CollectorRegistry) -> Budgets:
    """Wire budgets from the settings; `PricingError` or `OSError` for a file that cannot be used."""
    pricing = PricingHolder(pricing_for(settings))
    ledger = ledger_for(settings)
    metrics = BudgetMetrics(registry)
    stage = BudgetStage(ledger, pricing, policy, metrics)
    writer = None
    if settings.policy_configmap:  # in a cluster: Tenants live beside the policy ConfigMap
        writer = TenantStatusWriter(settings.policy_configmap.split("/")[0], settings.kubeconfig or None)
    reporter = None
    if ledger is not None:
        reporter = SpendReporter(
            ledger,
            policy,
            pricing,
            metrics,
            writer=writer,
            webhook=webhook_for(settings),
            interval=settings.budget_report_seconds,
            thresholds=thresholds(settings),
        )
    return Budgets(settings, ledger, pricing, stage, reporter, writer)
