"""A real ``python -m inferflux.router`` process for tests: started, waited for, asked, stopped.

Tests build its environment (ports, secret files, routes) and hand it over; this module only runs
it, with its output in a log file, and talks to its two ports. Loaded by tests/router/conftest.py
(tests/ is not a package): ``importlib.import_module("inferflux_tests_router_process")``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

READY_WITHIN = 60.0  # seconds


class RouterProcess:
    """The router with ``env``, its stdout and stderr in ``log``; ``admin_token`` for the admin API."""

    def __init__(self, env: dict[str, str], log: Path, admin_token: str) -> None:
        self.env = env
        self.log = log
        self.admin_token = admin_token
        self.port = int(env["INFERFLUX_ROUTER_PORT"])
        self.admin_port = int(env["INFERFLUX_ADMIN_PORT"])
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, within: float = READY_WITHIN) -> RouterProcess:
        """Start it and wait (at most ``within`` seconds) until ``/readyz`` answers 200."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
                [sys.executable, "-m", "inferflux.router"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        # Bounded by time, not tries: an import on a loaded machine can take many seconds.
        deadline = asyncio.get_running_loop().time() + within
        async with aiohttp.ClientSession() as session:
            while asyncio.get_running_loop().time() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                        if response.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"router did not become ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    async def stop(self) -> int | None:
        """SIGTERM (a graceful stop), waited for without blocking the event loop (servers on it, such
        as a trace receiver, must keep answering); its exit code, None if it never started."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
        for _ in range(600):
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            self.process.kill()
        return self.process.wait(timeout=10)

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the admin API with the admin token; asserts success and returns the JSON answer."""
        headers = {"authorization": f"Bearer {self.admin_token}"}
        url = f"http://127.0.0.1:{self.admin_port}/admin/v1{path}"
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, json=body, headers=headers) as response,
        ):
            assert response.status < 300, await response.text()
            return await response.json()
