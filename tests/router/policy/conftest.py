"""Fixtures: a real Redis (tests/redis_server.py) and router processes sharing it (replicas.py)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def load(path: Path, name: str) -> Any:
    """A helper module by path (tests/ is not a package; importlib mode)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


redis_server = load(Path(__file__).resolve().parents[2] / "redis_server.py", "inferflux_tests_redis_server")
replicas = load(Path(__file__).with_name("replicas.py"), "inferflux_tests_policy_replicas")


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A fresh redis-server for one test; stopped afterwards."""
    server = redis_server.RedisServer(tmp_path / "redis").start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def replica_pair(tmp_path: Path, redis_url: str) -> Iterator[tuple[Any, Any]]:
    """Two router processes sharing the Redis; both must stop cleanly on SIGTERM."""
    ports = replicas.free_ports(4)
    started = [
        replicas.Replica(tmp_path / name, redis_url, name, (ports[2 * i], ports[2 * i + 1]))
        for i, name in enumerate(("a", "b"))
    ]
    try:
        for replica in started:
            replica.wait_ready()
        yield started[0], started[1]
    finally:
        statuses = [replica.stop() for replica in started]
    assert statuses == [0, 0], "routers did not exit cleanly on SIGTERM"
