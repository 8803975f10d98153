"""The router with one API key in its policy, for `bench_router.py`'s auth cell (run twice: with
``INFERFLUX_AUTH=true`` and ``false``, so the two routers differ in nothing else).

The policy store and admin API are not what the benchmark measures, so this launcher puts a tenant
and one key record straight into the router's policy holder: ``python auth_router.py <record.json>``
with the usual ``INFERFLUX_*`` environment (``INFERFLUX_AUTH_SECRET_FILE`` the key was hashed under).
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

from inferflux.crds.policy import ApiKeyRecord, PolicySnapshot, TenantPolicy
from inferflux.router.app import Router
from inferflux.router.discovery import FileSource
from inferflux.router.identity.mtls import uvicorn_options
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.settings import from_env


def main() -> int:
    record = ApiKeyRecord.model_validate_json(Path(sys.argv[1]).read_text())
    settings = from_env()
    holder = PolicyHolder()
    holder.set_snapshot(PolicySnapshot(tenants={record.tenant: TenantPolicy(name=record.tenant)}))
    holder.put_key(record.id, record)
    source = FileSource(settings.routes_file, settings.file_poll_seconds)
    router = Router(settings, source, policy=holder)
    router.holder.swap(source.load())
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
