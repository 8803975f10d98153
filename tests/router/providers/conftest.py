"""Fixtures for the provider tests: fake provider servers, a routing table builder, metric readers."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import uvicorn

from inferflux.router.providers.handler import ChainHandler

HERE = Path(__file__).parent


def _load(name: str) -> ModuleType:
    """A sibling helper module (importlib mode puts no test folder on sys.path)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fake_common = _load("fake_common")
fake_openai = _load("fake_openai")
fake_anthropic = _load("fake_anthropic")
chain_tables = _load("chain_tables")


APPS = {"openai": fake_openai.app, "anthropic": fake_anthropic.app}


@pytest.fixture
async def start_fake() -> AsyncIterator[Callable[[str], Awaitable[Any]]]:
    """Start fake provider servers (``openai`` or ``anthropic`` wire format); all stop at teardown."""
    runners: list[Any] = []

    async def start(kind: str) -> Any:
        fake, runner = await fake_common.serve(APPS[kind])
        runners.append(runner)
        return fake

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def openai_server(start_fake: Callable[[str], Awaitable[Any]]) -> Any:
    """A fake OpenAI-wire server; ``.url`` has no ``/v1``."""
    return await start_fake("openai")


@pytest.fixture
async def anthropic_server(start_fake: Callable[[str], Awaitable[Any]]) -> Any:
    """A fake Anthropic Messages API server."""
    return await start_fake("anthropic")


@pytest.fixture
def metric() -> Callable[..., float]:
    """Read a sample of the test chains' metrics registry (0 when absent)."""

    def read(name: str, **labels: str) -> float:
        return chain_tables.METRICS.registry.get_sample_value(name, labels) or 0.0

    return read


@pytest.fixture
async def served(start_fake: Callable[[str], Awaitable[Any]]) -> AsyncIterator[tuple[Any, Any, Any, str]]:
    """Providers A and B, a runtime, and the chain's HTTP endpoint in front of them."""
    a, b, runtime = await start_fake("openai"), await start_fake("openai"), await start_fake("openai")
    runtime.key = None
    handler = ChainHandler(chain_tables.three_links(a, b, runtime.url))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(handler, lifespan="off", access_log=False, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no startup event
        await asyncio.sleep(0.01)
    yield a, b, runtime, f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await asyncio.wait_for(task, 10)
