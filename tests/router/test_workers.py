"""N router workers on one port: the settings they need, and a real supervisor with real workers."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from inferflux.router.settings import Settings, SettingsError
from inferflux.router.workers import check, worker_env

router_process = importlib.import_module("inferflux_tests_router_process")  # loaded by conftest

STREAM = "/api/v1/inference:stream"
STARTUP = 120.0  # seconds a router process may take to be ready: on a loaded 2-core machine, 20 s and more


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        (Settings(workers=0), "at least 1"),
        (Settings(workers=2, resume_keys_file="/k"), "INFERFLUX_REDIS_URL"),
        (Settings(workers=2, redis_url="redis://h"), "INFERFLUX_RESUME_KEYS_FILE"),
    ],
)
def test_more_than_one_worker_needs_redis_and_shared_keys(settings: Settings, complaint: str) -> None:
    with pytest.raises(SettingsError, match=complaint):
        check(settings)


def test_one_worker_needs_nothing_and_two_with_redis_and_keys_pass() -> None:
    check(Settings())
    check(Settings(workers=2, redis_url="redis://h", resume_keys_file="/k"))


def test_each_worker_gets_its_own_audit_chain_and_reuse_port() -> None:
    settings = Settings(workers=2, audit_dir="/a", audit_chain="pod-1")
    envs = [worker_env(settings, i, {"INFERFLUX_ROUTER_WORKERS": "2"}) for i in range(2)]
    assert [e["INFERFLUX_AUDIT_CHAIN"] for e in envs] == ["pod-1-w0", "pod-1-w1"]
    assert all(e["INFERFLUX_ROUTER_WORKERS"] == "1" for e in envs)
    assert all(e["INFERFLUX_ROUTER_REUSE_PORT"] == "true" for e in envs)
    assert "INFERFLUX_AUDIT_CHAIN" not in worker_env(Settings(workers=2), 0, {})


def environment(folder: Path, redis_url: str, backend_url: str, port: int | None = None) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    table = {
        "version": 1,
        "models": {"m": {"name": "m", "engine": "llamacpp", "endpoints": [{"url": backend_url}]}},
    }
    (folder / "routes.json").write_bytes(orjson.dumps(table))
    (folder / "keys").write_text("k1=" + "k" * 40 + "\n")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "INFERFLUX_ROUTER_PORT": str(port or free_port()),
        "INFERFLUX_ADMIN_PORT": str(free_port()),
        "INFERFLUX_AUTH": "false",
        "INFERFLUX_GUARDRAILS": "false",  # its holdback may merge chunks; offsets are the subject here
        "INFERFLUX_REDIS_URL": redis_url,
        "INFERFLUX_RESUME_KEYS_FILE": str(folder / "keys"),
        "INFERFLUX_ROUTES_FILE": str(folder / "routes.json"),
        "INFERFLUX_ROUTER_WORKERS": "2",
        "INFERFLUX_LOG_LEVEL": "warning",
    }


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def listeners(port: int) -> int:
    """How many sockets listen on 127.0.0.1:``port`` (one per worker with SO_REUSEPORT)."""
    with open("/proc/net/tcp") as handle:
        rows = [line.split() for line in handle.readlines()[1:]]
    return sum(1 for row in rows if row[1] == f"0100007F:{port:04X}" and row[3] == "0A")


async def all_listening(port: int, count: int, within: float = STARTUP) -> None:
    """Wait (bounded) until ``count`` workers listen: /readyz answers as soon as the first does."""
    for _ in range(int(within / 0.1)):
        if listeners(port) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{listeners(port)} of {count} workers listening")


async def cut_token(session: aiohttp.ClientSession, port: int) -> str:
    """A new connection starts a 10-chunk stream and leaves after the first data event."""
    body = {"model": "m", "prompt": "count", "max_tokens": 10}
    async with session.post(f"http://127.0.0.1:{port}{STREAM}", json=body) as response:
        assert response.status == 200
        async for line in response.content:
            if line.startswith(b"data: ") and b'"text"' in line:
                return str(orjson.loads(line[6:])["resume_token"])
    raise AssertionError("no data event")


async def test_two_workers_share_the_port_and_resume_each_others_streams(
    redis: Any, mocks: Callable[..., Any], tmp_path: Path
) -> None:
    backend = await mocks(delay_ms=5)
    router = router_process.RouterProcess(
        environment(tmp_path / "w", redis.url, backend.url), tmp_path / "w.log", "unused"
    )
    await router.start(STARTUP)
    try:
        workers = children(router.process.pid)
        assert len(workers) == 2
        await all_listening(router.port, 2)
        # A new connection per request: the kernel spreads them over both workers, so resumes
        # cross from one worker to the other.
        tokens = []
        for _ in range(12):
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
                tokens.append(await cut_token(session, router.port))
        for token in tokens:
            async with (
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
                session.post(
                    f"http://127.0.0.1:{router.port}{STREAM}", json={"resume_token": token}
                ) as response,
            ):
                assert response.status == 200
                raw = await response.read()
            texts = [orjson.loads(line[6:])["text"] for line in raw.split(b"\n") if b'"text"' in line]
            assert texts == [f"t{i} " for i in range(1, 10)]
            assert b"event: done" in raw
    finally:
        assert await router.stop() == 0  # SIGTERM is forwarded and every worker stops cleanly
    assert not [pid for pid in workers if running(pid)]


def running(pid: int) -> bool:
    """True while ``pid`` is a live process (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return " Z " not in handle.read()
    except OSError:
        return False


def run_supervisor(env: dict[str, str], within: float = 180.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferflux.router"], env=env, capture_output=True, text=True, timeout=within
    )


def test_a_worker_that_cannot_start_stops_the_supervisor_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:  # a listener without SO_REUSEPORT: the workers cannot share it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = environment(tmp_path, "redis://127.0.0.1:1/0", "http://127.0.0.1:1", port)
        done = run_supervisor(env)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if "stopping the others" in line]
    assert len(lines) == 1
    assert "Traceback" not in done.stderr


def test_more_workers_without_redis_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = environment(tmp_path, "", "http://127.0.0.1:1")
    done = run_supervisor(env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "inferflux-router: INFERFLUX_ROUTER_WORKERS > 1 needs INFERFLUX_REDIS_URL: "
        "workers share state only in Redis"
    ]


async def test_a_worker_killed_later_stops_the_supervisor(
    redis: Any, mocks: Callable[..., Any], tmp_path: Path
) -> None:
    backend = await mocks()
    router = router_process.RouterProcess(
        environment(tmp_path / "w", redis.url, backend.url), tmp_path / "w.log", "unused"
    )
    await router.start(STARTUP)
    try:
        os.kill(children(router.process.pid)[0], signal.SIGKILL)
        code = await asyncio.to_thread(router.process.wait, 60)  # bounded: TimeoutExpired fails it
    finally:
        await router.stop()
    assert code == 1
    assert "stopping the others" in router.log.read_text()
