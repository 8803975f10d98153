"""Fixtures: a real redis-server per test (tests/redis_server.py) and a ledger on it."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from inferflux.router.budgets.ledger import Ledger

# Registered by tests/router/conftest.py, which pytest loads first.
redis_server = importlib.import_module("inferflux_tests_redis_server")


# The plain ``redis`` fixture (no persistence) is in tests/router/conftest.py.


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[Any]:
    """A redis-server with AOF that a test may kill and start again.

    ``appendfsync always``: with ``everysec``, Redis may answer before it has written the AOF (it
    postpones the write up to 2 s while an fsync is slow), and this test lost acknowledged settles
    to a SIGKILL on a busy machine. docs/budgets.md says which to run.
    """
    server = redis_server.RedisServer(tmp_path / "redis-aof", appendonly=True, appendfsync="always").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def ledger(redis: Any) -> AsyncIterator[Ledger]:
    """A ledger on the per-test Redis, its script loaded."""
    ledger = Ledger.from_url(redis.url)
    await ledger.load()
    try:
        yield ledger
    finally:
        await ledger.close()
