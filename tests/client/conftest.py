"""Fixtures for the SDK tests: the router fixtures of tests/router (a real router served by uvicorn,
the real runtime on the small model), a proxy that cuts streams (cutting_proxy.py), the TypeScript
SDK built from source (``built``), and flite speech (tests/router/realtime/speech.py)."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest


def _load(path: Path, name: str) -> Any:
    """A helper module by path, registered as ``name`` (tests/ is not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_router = _load(Path(__file__).parents[1] / "router" / "conftest.py", "inferflux_tests_router_conftest")
make_router = _router.make_router
runtime_url = _router.runtime_url
route_fixture = _router.route_fixture
CuttingProxy = _load(
    Path(__file__).with_name("cutting_proxy.py"), "inferflux_tests_cutting_proxy"
).CuttingProxy
typescript_package = _load(
    Path(__file__).with_name("typescript_package.py"), "inferflux_tests_typescript_package"
)
_load(Path(__file__).parents[1] / "router" / "realtime" / "speech.py", "inferflux_tests_speech")


@pytest.fixture(scope="session")
def built() -> Path:
    """The TypeScript SDK built from its current source with tsc (strict): fails on any type error."""
    package = typescript_package.PACKAGE
    assert (package / "node_modules" / ".bin" / "tsc").exists(), "run `make sdk-ts` (npm ci) first"
    npm = shutil.which("npm")
    assert npm, "npm is not installed"
    code, output = asyncio.run(typescript_package.run(npm, "run", "--silent", "build"))
    assert code == 0, output
    return Path(package / "dist")


@pytest.fixture
async def cutting_proxy() -> AsyncIterator[Callable[..., Any]]:
    """``await cutting_proxy(target_url, after=3, cuts=1, mode="drop")``: a started proxy."""
    started: list[Any] = []

    async def make(target: str, **options: Any) -> Any:
        proxy = await CuttingProxy(target, **options).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        await proxy.stop()
