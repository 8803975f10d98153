"""Fixtures: a real redis-server per test (tests/redis_server.py), and a router with the Batch API on it."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from inferflux.router.batch.factory import BatchSystem, batch_for

# Registered by tests/router/conftest.py, which pytest loads first.
redis_server = importlib.import_module("inferflux_tests_redis_server")

# Fast knobs for tests: quick housekeeping and backoff, a short visibility timeout.
FAST = {
    "batch_backoff_seconds": 0.05,
    "batch_visibility_seconds": 3.0,
}


# The plain ``redis`` fixture (no persistence) is in tests/router/conftest.py.


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[Any]:
    """A redis-server with AOF (fsync always) that a test may kill and start again."""
    server = redis_server.RedisServer(tmp_path / "redis-aof", appendonly=True, appendfsync="always").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def batch_router(
    make_router: Callable[..., Any], redis: Any, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """``await batch_router(models, **settings)``: a router serving the Batch API, its worker running.

    Returns the harness, with ``harness.batch`` the `BatchSystem`.
    """
    systems: list[BatchSystem] = []

    async def make(models: dict[str, Any], workers: bool = True, **overrides: Any) -> Any:
        settings = {"batch_dir": str(tmp_path / "files"), "redis_url": redis.url, **FAST, **overrides}
        harness = await make_router(models, **settings)
        system = batch_for(harness.router.settings, harness.router, workers=workers)
        assert system is not None
        if system.worker is not None:
            system.worker.settings = dataclasses.replace(
                system.worker.settings, housekeeping_seconds=0.05, block_ms=100
            )
        system.start()
        systems.append(system)
        harness.batch = system
        return harness

    yield make
    for system in systems:
        await system.close(grace_seconds=5)
    await asyncio.sleep(0)


async def wait_for(condition: Callable[[], Any], within: float = 30.0, step: float = 0.05) -> Any:
    """Poll ``condition`` (sync or async) until it is truthy; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(step)


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    return wait_for
