"""The acceptance test of durability: a real router process (``python -m inferflux.router``) serving
a load of chat requests, streamed and whole, to a mock OpenAI backend, is SIGKILLed at a random
moment. Every request whose response the client received in full has its record (found by the
receipt the response carried), and the chain verifies after the recovering open."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson

from inferflux.router.audit.log import AuditLog
from inferflux.router.audit.segments import segments
from tests.router.audit.conftest import Keys, Verify
from tests.router.mock_openai import MockOpenAI, MockState

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 3}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def load(url: str, received: list[str], stop: asyncio.Event, worker: int) -> None:
    """Requests until ``stop``; a receipt counts once its response was read to the end."""
    document = CHAT | {"stream": worker % 2 == 0}
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            try:
                async with session.post(f"{url}/v1/chat/completions", json=document) as response:
                    body = await response.read()
                    complete = (
                        body.endswith(b"data: [DONE]\n\n") if document["stream"] else b'"choices"' in body
                    )
                    if response.status == 200 and complete:
                        received.append(response.headers["x-inferflux-receipt"])
            except (aiohttp.ClientError, ConnectionError):
                await asyncio.sleep(0.01)  # the router is gone (killed) or not up yet


async def test_every_answered_request_survives_a_sigkill_of_the_router(
    tmp_path: Path, keys: Keys, verify: Verify
) -> None:
    backend = await MockOpenAI(MockState(delay_ms=2.0, keep_bodies=False)).start()
    routes = tmp_path / "routes.json"
    model = {"name": "m", "engine": "llamacpp", "endpoints": [{"url": backend.url, "pod": "pod-0"}]}
    routes.write_text(json.dumps({"version": 1, "models": {"m": model}}))
    secret = tmp_path / "audit-secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "INFERFLUX_AUTH": "false",  # allowed on loopback; keeps the test about the audit log
        "INFERFLUX_ROUTER_PORT": str(port),
        "INFERFLUX_ADMIN_PORT": str(free_port()),
        "INFERFLUX_ROUTES_FILE": str(routes),
        "INFERFLUX_AUDIT_DIR": str(tmp_path / "audit"),
        "INFERFLUX_AUDIT_CHAIN": "router-0",
        "INFERFLUX_AUDIT_SIGNING_KEY_FILE": str(keys.private),
        "INFERFLUX_AUDIT_SECRET_FILE": str(secret),
        "INFERFLUX_AUDIT_CHECKPOINT_RECORDS": "50",
        "INFERFLUX_AUDIT_SEGMENT_BYTES": "50000",
    }
    router = subprocess.Popen(  # noqa: ASYNC220 - killed, not awaited, and only once
        [sys.executable, "-m", "inferflux.router"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    received: list[str] = []
    stop = asyncio.Event()
    workers = [asyncio.ensure_future(load(f"http://127.0.0.1:{port}", received, stop, n)) for n in range(16)]
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not received:
            assert router.poll() is None, router.stderr.read().decode() if router.stderr else ""
            assert loop.time() < deadline, "no answer from the router in 60 s"
            await asyncio.sleep(0.05)
        await asyncio.sleep(random.uniform(0.3, 2.0))
        router.send_signal(signal.SIGKILL)
        await asyncio.to_thread(router.wait, 30)
        answered = list(received)  # nothing can complete after the kill
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
        with contextlib.suppress(ProcessLookupError):
            router.kill()
        await backend.stop()
    assert router.returncode == -signal.SIGKILL

    audit = AuditLog(tmp_path / "audit", "router-0", keys.signer())
    audit.open()  # what the next router start does: a torn tail would be set aside here
    await audit.close()
    receipts = {
        orjson.loads(line).get("receipt")
        for path in segments(audit.chain_dir)
        for line in path.read_bytes().splitlines()
    }
    assert len(answered) > 20
    assert [receipt for receipt in answered if receipt not in receipts] == []
    result = verify(tmp_path / "audit")
    assert result.returncode == 0, result.stderr
