"""600 requests per minute through the real router, on the wall clock (`make bench-ratelimit`).

A router with auth on and one tenant limited to 600 requests/minute, Redis on localhost, the fake
runtime behind it. Two clients run side by side for ``--seconds`` (60 by default):

- **steady**: 10 requests/s, at the limit, paced on the wall clock: the share refused is the error
  (target <= 1 %);
- **flood**: 20 requests/s offered by another key of an identically limited tenant: what got through
  (target: 10/s for the whole run plus at most the burst, one second's worth), every refusal a 429
  with ``retry-after``.

    python tests/bench/bench_ratelimit.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
MOCK = ROOT / "tests" / "router" / "mock_openai.py"
PY = sys.executable
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def start(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


async def paced(url: str, key: str, rate: float, seconds: float) -> collections.Counter[str]:
    """``rate`` requests per second for ``seconds``, each sent on its wall-clock slot."""
    outcomes: collections.Counter[str] = collections.Counter()
    headers = {"authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            async with session.post(url, json=CHAT, headers=headers) as response:
                await response.read()
                if response.status == 429 and "retry-after" not in response.headers:
                    outcomes["429 without retry-after"] += 1
                outcomes[str(response.status)] += 1

        start = time.monotonic()
        tasks = []
        for index in range(int(rate * seconds)):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one()))
        await asyncio.gather(*tasks)
    return outcomes


async def run(seconds: float) -> dict[str, Any]:
    from inferflux.crds.budget import RateLimits
    from inferflux.crds.policy import PolicySnapshot, TenantPolicy
    from inferflux.router.identity import api_keys

    work = Path(tempfile.mkdtemp(prefix="bench-ratelimit-"))
    mock_port, router_port, redis_port = 18921, 18922, 18923
    routes = {"version": 1, "models": {"m": {"name": "m", "engine": "llamacpp", "maxQueue": 1000,
              "endpoints": [{"url": f"http://127.0.0.1:{mock_port}"}]}}}  # fmt: skip
    (work / "routes.json").write_text(json.dumps(routes))
    secret = work / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    hasher = api_keys.load_hasher(str(secret))
    limits = RateLimits(requests_per_minute=600)
    tenants = {name: TenantPolicy(name=name, rate_limits=limits) for name in ("steady", "flood")}
    (work / "policy.json").write_text(PolicySnapshot(tenants=tenants).model_dump_json(by_alias=True))
    keys, records = {}, []
    for name in tenants:
        key, record = api_keys.generate(hasher, name)
        keys[name] = key
        records.append(record)
    redis = start(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"])
    mock = start([PY, str(MOCK), str(mock_port)])
    env = {
        "INFERFLUX_ROUTER_PORT": str(router_port),
        "INFERFLUX_ADMIN_PORT": "0",
        "INFERFLUX_ROUTES_FILE": str(work / "routes.json"),
        "INFERFLUX_POLICY_FILE": str(work / "policy.json"),
        "INFERFLUX_AUTH_SECRET_FILE": str(secret),
        "INFERFLUX_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "INFERFLUX_LOG_LEVEL": "warning",
    }
    router = start([PY, "-m", "inferflux.router"], env)
    try:
        await wait_ready(f"http://127.0.0.1:{router_port}/readyz")
        from inferflux.router.policy.effective import PolicyHolder
        from inferflux.router.policy.store import RedisPolicyStore

        store = RedisPolicyStore.from_url(f"redis://127.0.0.1:{redis_port}/0", PolicyHolder())
        for record in records:  # as the admin API stores keys
            await store.put_key(record)
        await asyncio.sleep(1.0)  # the router follows the store's change channel
        url = f"http://127.0.0.1:{router_port}/v1/chat/completions"
        steady, flood = await asyncio.gather(
            paced(url, keys["steady"], 10, seconds), paced(url, keys["flood"], 20, seconds)
        )
        await store.close()
    finally:
        for process in (router, mock, redis):
            process.terminate()
            process.wait(10)
    return {"seconds": seconds, "steady": dict(steady), "flood": dict(flood)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.seconds))
    steady, flood, seconds = result["steady"], result["flood"], result["seconds"]
    sent = sum(v for k, v in steady.items() if k.isdigit())
    error = 1 - steady.get("200", 0) / sent
    accepted = flood.get("200", 0)
    passed = accepted / seconds
    within = 10 * seconds * 0.99 <= accepted <= 10 * (seconds + 1)
    print(f"{'client':<10}{'offered/s':>10}{'accepted/s':>12}{'refused':>9}  target")
    print(
        f"{'steady':<10}{10:>10}{steady.get('200', 0) / seconds:>12.2f}{error:>9.2%}  refused <= 1 % "
        f"{'PASS' if error <= 0.01 else 'FAIL'}"
    )
    print(
        f"{'flood':<10}{20:>10}{passed:>12.2f}{1 - flood.get('200', 0) / (20 * seconds):>9.2%}  "
        f"10/s plus a 1 s burst {'PASS' if within else 'FAIL'}"
    )
    odd = {k: v for k, v in {**steady, **flood}.items() if k not in ("200", "429")}
    if odd:
        print("unexpected answers:", odd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
