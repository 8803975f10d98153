"""The router with one API key in its policy, for `bench_router.py`'s auth cell (run twice: with
``INFERFLUX_AUTH=true`` and ``false``, so the two routers differ in nothing else) and its budget
cell (``BENCH_LIMITS=1``: the key's tenant has a budget and rate limits, kept in the Redis at
``INFERFLUX_REDIS_URL``, priced by ``INFERFLUX_PRICING_FILE``; ``0``: the same tenant without them).

The policy store and admin API are not what the benchmark measures, so this launcher puts a tenant
and one key record straight into the router's policy holder: ``python auth_router.py <record.json>``
with the usual ``INFERFLUX_*`` environment (``INFERFLUX_AUTH_SECRET_FILE`` the key was hashed under).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import uvicorn

from inferflux.crds.budget import Budget, RateLimits
from inferflux.crds.policy import ApiKeyRecord, PolicySnapshot, TenantPolicy
from inferflux.router.app import Router
from inferflux.router.budgets.factory import budgets_for
from inferflux.router.discovery import FileSource
from inferflux.router.heap import freeze_startup_heap
from inferflux.router.identity.mtls import uvicorn_options
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.settings import from_env


def main() -> int:
    record = ApiKeyRecord.model_validate_json(Path(sys.argv[1]).read_text())
    settings = from_env()
    holder = PolicyHolder()
    tenant = TenantPolicy(name=record.tenant)
    if os.environ.get("BENCH_LIMITS") == "1":  # never reached: what is measured is the accounting
        limits = RateLimits(requests_per_minute=1_000_000, tokens_per_minute=1_000_000_000)
        tenant = tenant.model_copy(update={"budget": Budget(daily="1000000"), "rate_limits": limits})
    holder.set_snapshot(PolicySnapshot(tenants={record.tenant: tenant}))
    holder.put_key(record.id, record)
    source = FileSource(settings.routes_file, settings.file_poll_seconds)
    router = Router(settings, source, policy=holder)
    if settings.redis_url:
        router.pipeline.extend([budgets_for(settings, holder, router.metrics.registry).stage])
    router.holder.swap(source.load())
    freeze_startup_heap()  # as `python -m inferflux.router` does before serving (router/heap.py)
    uvicorn.run(
        router,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        **uvicorn_options(settings),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
