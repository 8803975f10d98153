"""Faults around a real router process: SIGKILL mid-stream, and Redis crashing under it.

The router runs as ``python -m inferflux.router`` (its entry point, its admin API), Redis is a real
``redis-server`` with AOF, the runtime is the fake one streaming slowly. A tenant with a budget and
a key are created through the admin API, as an operator would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml

from inferflux.prompts.checksum import jcs_checksum
from inferflux.router.budgets.ledger import Ledger

COST = 3 * 1 + 3 * 1_000  # as in test_stage.py: 3 prompt and 3 completion tokens
ADMIN_TOKEN = "admin-token-" + "x" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RouterProcess:
    """``python -m inferflux.router`` with budgets on, and clients for its two ports."""

    def __init__(self, folder: Path, redis_url: str, backend_url: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        pricing: dict[str, Any] = {
            "version": "1",
            "currency": "EUR",
            "models": {"m": {"inputPerMillion": 1, "outputPerMillion": 1000, "maxOutputTokens": 8}},
        }
        pricing["checksum"] = jcs_checksum(pricing)
        (folder / "pricing.yaml").write_text(yaml.safe_dump(pricing))
        (folder / "secret").write_bytes(b"s" * 48)
        (folder / "admin-token").write_text(ADMIN_TOKEN)
        table = {
            "version": 1,
            "models": {"m": {"name": "m", "engine": "llamacpp", "endpoints": [{"url": backend_url}]}},
        }
        (folder / "routes.json").write_bytes(orjson.dumps(table))
        self.port, self.admin_port = free_port(), free_port()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "INFERFLUX_ROUTER_PORT": str(self.port),
            "INFERFLUX_ADMIN_PORT": str(self.admin_port),
            "INFERFLUX_AUTH_SECRET_FILE": str(folder / "secret"),
            "INFERFLUX_ADMIN_TOKEN_FILE": str(folder / "admin-token"),
            "INFERFLUX_REDIS_URL": redis_url,
            "INFERFLUX_PRICING_FILE": str(folder / "pricing.yaml"),
            "INFERFLUX_ROUTES_FILE": str(folder / "routes.json"),
            "INFERFLUX_TOTAL_TIMEOUT_SECONDS": "3",
            "INFERFLUX_BUDGET_RESERVATION_MARGIN_SECONDS": "1",
            "INFERFLUX_LOG_LEVEL": "info",
        }
        self.log = folder / "router.log"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> RouterProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
                [sys.executable, "-m", "inferflux.router"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                        if response.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"router did not become ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        url = f"http://127.0.0.1:{self.admin_port}/admin/v1{path}"
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, json=body, headers=headers) as response,
        ):
            assert response.status < 300, await response.text()
            return await response.json()


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, **extra}


@pytest.fixture
async def started(
    aof_redis: Any, mocks: Callable[..., Any], tmp_path: Path
) -> AsyncIterator[tuple[Any, ...]]:
    backend = await mocks()
    router = await RouterProcess(tmp_path / "router", aof_redis.url, backend.url).start()
    await router.admin("PUT", "/tenants/acme", {"budget": {"total": "10"}})
    key = (await router.admin("POST", "/tenants/acme/keys", {}))["key"]
    ledger = Ledger.from_url(aof_redis.url)
    try:
        yield router, key, backend, ledger, aof_redis
    finally:
        router.stop()
        await ledger.close()


async def ask(
    session: aiohttp.ClientSession, router: RouterProcess, key: str, document: dict[str, Any]
) -> int:
    url = f"http://127.0.0.1:{router.port}/v1/chat/completions"
    async with session.post(url, json=document, headers={"authorization": f"Bearer {key}"}) as response:
        await response.read()
        return response.status


async def total(ledger: Ledger) -> tuple[int, int]:
    window = (await ledger.spend("acme")).tenant["total"]
    return window.spent, window.reserved


async def settled_total(ledger: Ledger, expected: tuple[int, int]) -> tuple[int, int]:
    """The total once the router's background settles landed (bounded wait)."""
    found = await total(ledger)
    for _ in range(100):
        if found == expected:
            break
        await asyncio.sleep(0.05)
        found = await total(ledger)
    return found


async def test_a_router_killed_mid_stream_leaks_no_reservation(started: tuple[Any, ...]) -> None:
    router, key, backend, ledger, _ = started
    async with aiohttp.ClientSession() as session:
        assert await ask(session, router, key, chat()) == 200
        assert (await settled_total(ledger, (COST, 0)))[0] == COST
        streams = [
            asyncio.ensure_future(
                ask(session, router, key, chat(stream=True, max_tokens=40, mock_delay_ms=200))
            )
            for _ in range(3)
        ]
        for _ in range(500):
            if backend.state.active_streams == 3:
                break
            await asyncio.sleep(0.01)
        assert backend.state.active_streams == 3
        spent, reserved = await total(ledger)
        assert (spent, reserved > 0) == (COST, True), "three streams hold reservations"
        router.kill()
        await asyncio.gather(*streams, return_exceptions=True)
    deadline = time.monotonic() + 15  # reservation ttl: total timeout 3 s + margin 1 s
    while (await total(ledger))[1] and time.monotonic() < deadline:  # noqa: ASYNC110 - polling Redis
        await asyncio.sleep(0.2)
    assert await total(ledger) == (COST, 0), "released by expiry; only the settled request is spent"


async def test_redis_crashing_loses_no_settled_spend_and_refuses_meanwhile(started: tuple[Any, ...]) -> None:
    router, key, _, ledger, redis = started
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            assert await ask(session, router, key, chat()) == 200
        redis.kill()
        during = [await ask(session, router, key, chat()) for _ in range(3)]
        assert during == [503, 503, 503], "a budgeted tenant fails closed while Redis is away"
        redis.start()
        for _ in range(100):  # the router reconnects on its own
            if await ask(session, router, key, chat()) == 200:
                break
            await asyncio.sleep(0.1)
    assert await settled_total(ledger, (4 * COST, 0)) == (4 * COST, 0), "three before the crash, one after"
