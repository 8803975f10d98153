"""Router processes sharing one Redis, and the propagation measurement (test and benchmark).

Each replica is a real ``python -m inferflux.router`` process with the public and admin listeners.
`measure` makes policy updates through replica A's admin API and times, for each, how long until
replica B enforces it on its public port: a new key is accepted (200 on ``/v1/models``), a revoked
key is refused (401).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TOKEN = "propagation-admin-token-0123456789"


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all held open while choosing, so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Admin:
    """One keep-alive HTTP connection to a replica's admin API."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
        payload = json.dumps(body).encode() if body is not None else None
        try:
            self.connection.request(method, "/admin/v1" + path, body=payload, headers=headers)
            response = self.connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        except (OSError, http.client.HTTPException):
            self.connection.close()
            raise

    def close(self) -> None:
        self.connection.close()


class Public:
    """One keep-alive HTTP connection to a replica's public listener."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def status_with(self, key: str) -> int:
        """The status of ``GET /v1/models`` with ``key`` as the bearer credential."""
        try:
            self.connection.request("GET", "/v1/models", headers={"authorization": f"Bearer {key}"})
            response = self.connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self.connection.close()
            raise

    def close(self) -> None:
        self.connection.close()


class Replica:
    """One router process; ``admin`` talks to its admin listener."""

    def __init__(self, folder: Path, redis_url: str, name: str, ports: tuple[int, int]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "secret").write_bytes(b"shared-hashing-secret-of-at-least-32-bytes")
        (folder / "admin-token").write_text(TOKEN)
        self.port, self.admin_port = ports
        env = {key: value for key, value in os.environ.items() if not key.startswith("INFERFLUX_")}
        env.update(
            INFERFLUX_ROUTER_PORT=str(self.port),
            INFERFLUX_ADMIN_PORT=str(self.admin_port),
            INFERFLUX_REDIS_URL=redis_url,
            INFERFLUX_AUTH_SECRET_FILE=str(folder / "secret"),
            INFERFLUX_ADMIN_TOKEN_FILE=str(folder / "admin-token"),
            INFERFLUX_LOG_LEVEL="warning",
        )
        self.log = folder / f"{name}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inferflux.router"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.admin = Admin(self.admin_port)
        self.public = Public(self.port)

    def wait_ready(self, within: float = 60.0) -> None:
        """Until the admin API answers and the store is loaded (bounded)."""
        deadline = time.monotonic() + within
        while True:
            assert self.process.poll() is None, f"router exited: {self.log.read_text()[-2000:]}"
            try:
                status, summary = self.admin.call("GET", "/policy")
                if status == 200 and summary["storeLoaded"]:
                    return
            except (OSError, http.client.HTTPException):
                pass
            assert time.monotonic() < deadline, "router not ready in time"
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, and the exit status (bounded wait, then kill)."""
        self.admin.close()
        self.public.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _until(condition: Any, start: float, bound: float) -> float:
    """Seconds from ``start`` until ``condition()`` holds; ``bound`` + 1 when it never did."""
    while True:
        if condition():
            return time.perf_counter() - start
        if time.perf_counter() - start > bound:
            return bound + 1.0
        time.sleep(0.0005)


def measure(a: Replica, b: Replica, updates: int, bound: float = 2.0) -> list[tuple[str, float]]:
    """``updates`` changes on A (creations and revocations alternating), each timed until B shows it.

    The clock starts before A's admin request is sent, so each figure includes A's write (Redis
    transaction and publish) as well as B's pub/sub delivery and its re-read of the entry.
    """
    status, _ = a.admin.call("PUT", "/tenants/propagation", {"scopes": ["inference", "models:read"]})
    assert status == 200
    active: list[tuple[str, str]] = []
    timings: list[tuple[str, float]] = []
    for number in range(updates):
        if number % 2 == 0 or not active:
            start = time.perf_counter()
            status, created = a.admin.call("POST", "/tenants/propagation/keys", {"name": f"k{number}"})
            assert status == 201, created
            key = created["key"]
            elapsed = _until(lambda key=key: b.public.status_with(key) == 200, start, bound)
            timings.append(("create", elapsed))
            active.append((created["record"]["id"], key))
        else:
            key_id, key = active.pop(0)  # a key B has been accepting since its creation was observed
            start = time.perf_counter()
            status, _ = a.admin.call("POST", f"/keys/{key_id}/revoke")
            assert status == 200
            elapsed = _until(lambda key=key: b.public.status_with(key) == 401, start, bound)
            timings.append(("revoke", elapsed))
    return timings


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
