"""Resume across router replicas: two real router processes, one real Redis, one mock backend.

A stream is started on replica A and cut after chunk 20 of 60; its last resume token is used on
replica B, which must send exactly chunks 21-60 from the Redis replay buffer. Also with A killed
by SIGKILL before the resume, with Redis stopped (410, and new streams still served), and across a
key rotation (tokens signed with the retired signing key still verify).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from redis.asyncio import Redis

router_process = importlib.import_module("inferflux_tests_router_process")  # loaded by conftest


STREAM = "/api/v1/inference:stream"
STARTUP = 120.0  # seconds a router process may take to be ready: on a loaded 2-core machine, 20 s and more
CHUNKS = 60
OLD_KEY = "old=" + "o" * 40
NEW_KEY = "new=" + "n" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def replica(folder: Path, redis_url: str, backend_url: str, keys_file: Path) -> Any:
    """``python -m inferflux.router`` on free ports, auth off (loopback), sharing Redis and keys."""
    folder.mkdir(parents=True, exist_ok=True)
    table = {
        "version": 1,
        "models": {"m": {"name": "m", "engine": "llamacpp", "endpoints": [{"url": backend_url}]}},
    }
    (folder / "routes.json").write_bytes(orjson.dumps(table))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "INFERFLUX_ROUTER_PORT": str(free_port()),
        "INFERFLUX_ADMIN_PORT": str(free_port()),
        "INFERFLUX_AUTH": "false",
        "INFERFLUX_GUARDRAILS": "false",  # its holdback may merge chunks; offsets are the subject here
        "INFERFLUX_REDIS_URL": redis_url,
        "INFERFLUX_RESUME_KEYS_FILE": str(keys_file),
        "INFERFLUX_ROUTES_FILE": str(folder / "routes.json"),
        "INFERFLUX_HEARTBEAT_SECONDS": "1",
        "INFERFLUX_LOG_LEVEL": "warning",
    }
    return router_process.RouterProcess(env, folder / "router.log", "unused")


def parse(block: bytes) -> tuple[str, dict[str, Any]] | None:
    name, data = "", b""
    for line in block.split(b"\n"):
        if line.startswith(b"event: "):
            name = line[7:].decode()
        elif line.startswith(b"data: "):
            data = line[6:]
    return (name, orjson.loads(data)) if name else None


async def events(response: aiohttp.ClientResponse, stop_after_offset: int | None = None) -> list[Any]:
    """SSE events until the end, or until the data event at ``stop_after_offset`` (then it hangs up)."""
    found: list[tuple[str, dict[str, Any]]] = []
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            event = parse(block)
            if event is None:
                continue
            found.append(event)
            if event[0] == "data" and event[1]["offset"] == stop_after_offset:
                return found
    return found


def texts(found: list[Any]) -> list[str]:
    return [payload["text"] for name, payload in found if name == "data"]


async def start_and_cut(session: aiohttp.ClientSession, router: Any) -> str:
    """Start a 60-chunk stream on ``router``, read chunks 1-20, hang up; the last token."""
    body = {"model": "m", "prompt": "count", "max_tokens": CHUNKS}
    async with session.post(f"http://127.0.0.1:{router.port}{STREAM}", json=body) as response:
        assert response.status == 200
        assert response.headers["x-inferflux-resume"] == "shared"
        found = await events(response, stop_after_offset=19)
    assert texts(found) == [f"t{i} " for i in range(20)]
    return str(found[-1][1]["resume_token"])


async def resume(session: aiohttp.ClientSession, router: Any, token: str) -> tuple[int, Any]:
    async with session.post(
        f"http://127.0.0.1:{router.port}{STREAM}", json={"resume_token": token}
    ) as response:
        if response.status != 200:
            return response.status, await response.json()
        return 200, await events(response)


async def finished_in_redis(redis_url: str, within: float = 10.0) -> None:
    """Wait (bounded) until every buffered stream's last entry is its ``done``."""
    client = Redis.from_url(redis_url)
    try:
        for _ in range(int(within / 0.05)):
            keys = [key for key in await client.keys("inferflux:replay:*") if not key.endswith(b":live")]
            last = [await client.xrevrange(key, count=1) for key in keys]
            if keys and all(entries and entries[0][1][b"k"] == b"done" for entries in last):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the producer did not finish the stream in Redis")
    finally:
        await client.aclose()


@dataclass
class Replicas:
    """Replicas A and B, their Redis, their keys file, and a maker of more replicas like them."""

    a: Any
    b: Any
    redis: Any
    keys: Path
    make: Callable[[str], Any]


@pytest.fixture
async def replicas(redis: Any, mocks: Callable[..., Any], tmp_path: Path) -> AsyncIterator[Replicas]:
    backend = await mocks(delay_ms=20)  # 60 chunks in about 1.2 s
    keys = tmp_path / "resume-keys"
    keys.write_text(OLD_KEY + "\n")

    def make(name: str) -> Any:
        return replica(tmp_path / name, redis.url, backend.url, keys)

    a, b = make("a"), make("b")
    await asyncio.gather(a.start(STARTUP), b.start(STARTUP))
    try:
        yield Replicas(a, b, redis, keys, make)
    finally:
        await asyncio.gather(a.stop(), b.stop())


async def test_a_stream_cut_on_one_replica_resumes_on_the_other_with_exactly_the_rest(
    replicas: Replicas,
) -> None:
    async with aiohttp.ClientSession() as session:
        token = await start_and_cut(session, replicas.a)
        status, found = await resume(session, replicas.b, token)
    assert status == 200
    assert found[0][0] == "resume"
    assert found[0][1]["offset"] == 20
    assert texts(found) == [f"t{i} " for i in range(20, CHUNKS)]
    assert found[-1][0] == "done"
    assert found[-1][1]["finish_reason"] == "length"


async def test_the_rest_survives_the_first_replica_killed(replicas: Replicas) -> None:
    async with aiohttp.ClientSession() as session:
        token = await start_and_cut(session, replicas.a)
        await finished_in_redis(replicas.redis.url)  # A produced the whole stream into Redis
        replicas.a.kill()
        status, found = await resume(session, replicas.b, token)
    assert status == 200
    assert texts(found) == [f"t{i} " for i in range(20, CHUNKS)]
    assert found[-1][0] == "done"


async def test_a_replica_killed_mid_generation_ends_the_resumed_stream_with_an_error(
    replicas: Replicas,
) -> None:
    async with aiohttp.ClientSession() as session:
        token = await start_and_cut(session, replicas.a)
        replicas.a.kill()  # long before chunk 60: its producer dies with it
        status, found = await asyncio.wait_for(resume(session, replicas.b, token), 60)
    assert status == 200
    made = texts(found)
    assert made == [f"t{i} " for i in range(20, 20 + len(made))]  # what A buffered, nothing repeated
    assert len(made) < CHUNKS - 20
    assert found[-1][0] == "error"
    assert "stopped before its end" in found[-1][1]["error"]["message"]


async def test_with_redis_down_resume_is_410_and_new_streams_still_work(replicas: Replicas) -> None:
    async with aiohttp.ClientSession() as session:
        token = await start_and_cut(session, replicas.a)
        await finished_in_redis(replicas.redis.url)
        replicas.redis.stop()
        status, body = await resume(session, replicas.b, token)
        assert status == 410
        assert body["error"]["type"]
        assert "replay store is unavailable" in body["error"]["message"]
        request = {"model": "m", "prompt": "count", "max_tokens": 5}
        async with session.post(f"http://127.0.0.1:{replicas.b.port}{STREAM}", json=request) as response:
            assert response.status == 200
            assert response.headers["x-inferflux-resume"] == "replica"  # kept in B's memory only
            found = await events(response)
    assert texts(found) == [f"t{i} " for i in range(5)]
    assert found[-1][0] == "done"


async def resume_on_new_replica(
    session: aiohttp.ClientSession, replicas: Replicas, name: str, token: str
) -> Any:
    """Start one more replica (reading the keys file as it is now), resume there, stop it."""
    started = await replicas.make(name).start(STARTUP)
    try:
        return await resume(session, started, token)
    finally:
        await started.stop()


async def test_a_token_signed_with_the_old_key_resumes_after_rotation(replicas: Replicas) -> None:
    async with aiohttp.ClientSession() as session:
        token = await start_and_cut(session, replicas.a)
        assert token.startswith("old.")
        replicas.keys.write_text(NEW_KEY + "\n" + OLD_KEY + "\n")  # the new key signs, the old verifies
        status, found = await resume_on_new_replica(session, replicas, "rotated", token)
        assert status == 200
        assert texts(found) == [f"t{i} " for i in range(20, CHUNKS)]
        tokens = [payload["resume_token"] for name, payload in found if name == "data"]
        assert tokens
        assert all(t.startswith("new.") for t in tokens)  # signed with the newest key
        replicas.keys.write_text(NEW_KEY + "\n")  # the old key retired: its tokens are refused
        status, body = await resume_on_new_replica(session, replicas, "retired", token)
    assert status == 401
    assert "retired" in body["error"]["message"]
