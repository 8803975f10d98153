"""A router stand-in for the SIGKILL test: admits, settles some, prints, then waits to be killed.

python reserver.py REDIS_URL TENANT OPEN SETTLED TTL_SECONDS
"""

from __future__ import annotations

import asyncio
import sys

from inferflux.router.budgets.ledger import Ledger, Limits, ScopeLimits

MAX_COST, SETTLED_COST = 1_000, 800


async def main(url: str, tenant: str, open_count: int, settled_count: int, ttl: float) -> None:
    ledger = Ledger.from_url(url, reservation_ttl=ttl)
    limits = Limits(ScopeLimits(total=1_000_000))
    for i in range(open_count + settled_count):
        admission = await ledger.admit(f"doomed-{i}", tenant, None, MAX_COST, limits, pricing_checksum="")
        assert admission.admitted
        if i < settled_count:
            await ledger.settle(admission, SETTLED_COST, 10)
    total = (await ledger.spend(tenant)).tenant["total"]
    print(f"spent={total.spent} reserved={total.reserved}", flush=True)
    await asyncio.Event().wait()  # killed here, reservations open


if __name__ == "__main__":
    url, tenant, open_count, settled_count, ttl = sys.argv[1:6]
    asyncio.run(main(url, tenant, int(open_count), int(settled_count), float(ttl)))
