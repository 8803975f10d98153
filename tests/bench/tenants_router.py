"""The router with tenants and their keys put straight into its policy holder, for
`bench_scheduling.py`: ``python tenants_router.py <setup.json>`` with the usual ``INFERFLUX_*``
environment (``INFERFLUX_FAIRNESS`` on or off). ``setup.json`` holds ``snapshot`` (a
`PolicySnapshot`: the tenants, as Tenant resources declare them) and ``keys`` (`ApiKeyRecord`s
hashed under ``INFERFLUX_AUTH_SECRET_FILE``). The policy store is not what the benchmark measures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import uvicorn

from inferflux.crds.policy import ApiKeyRecord, PolicySnapshot
from inferflux.router.app import Router
from inferflux.router.discovery import FileSource
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.settings import from_env


def main() -> int:
    setup = json.loads(Path(sys.argv[1]).read_text())
    settings = from_env()
    holder = PolicyHolder()
    holder.set_snapshot(PolicySnapshot.model_validate(setup["snapshot"]))
    for raw in setup["keys"]:
        record = ApiKeyRecord.model_validate(raw)
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
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
