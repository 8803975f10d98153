"""The seeds' contract end to end: sync inference, streams, heartbeats, resume and token failures."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import orjson

from inferflux.router.resume import parse_keyring, sign

STREAM = "/api/v1/inference:stream"
CHUNKS = 40


def parse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, payload) for each SSE event in ``raw``."""
    events = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = "", b""
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"data: "):
                data = line[6:]
        if name:
            events.append((name, orjson.loads(data)))
    return events


async def read_events(response: Any, limit: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Events from a live response, stopping after ``limit`` data events (or at the end)."""
    events: list[tuple[str, dict[str, Any]]] = []
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            events.extend(parse_events(block + b"\n\n"))
            if limit is not None and sum(1 for name, _ in events if name == "data") >= limit:
                return events
    return events


def texts(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [payload["text"] for name, payload in events if name == "data"]


def expected(count: int = CHUNKS) -> list[str]:
    return [f"t{i} " for i in range(count)]


def request(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": CHUNKS, **extra}


async def test_sync_inference_returns_the_whole_output(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])})
    async with harness.post("/api/v1/inference", request(max_tokens=4)) as response:
        document = await response.json()
    assert response.status == 200
    assert document["output"] == "t0 t1 t2 t3 "
    assert document["usage"]["completion_tokens"] == 4
    async with harness.post("/api/v1/inference", {"model": "m", "prompt": "x", "max_tokens": 2}) as response:
        assert (await response.json())["output"] == "t0 t1 "
    assert backend.state.bodies[-1]["prompt"] == "x"


async def test_bad_requests_are_400_in_the_error_shape(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])})
    for body in (
        {"model": "m"},
        {"model": "m", "prompt": "x", "messages": [{"role": "user", "content": "y"}]},
        {"model": "m", "prompt": "x", "temperature": 9},
        {"model": "m", "prompt": "x", "extra": 1},
    ):
        for path in ("/api/v1/inference", STREAM):
            async with harness.post(path, body) as response:
                assert response.status == 400, (path, body)
                assert (await response.json())["error"]["code"] == "bad_request"
    async with harness.post(STREAM, {"model": "nope", "prompt": "x"}) as response:
        assert response.status == 404


async def test_stream_sends_resume_data_and_done_in_order(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])})
    async with harness.post(STREAM, request()) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_events(await response.read())
    assert events[0][0] == "resume"
    assert events[0][1]["offset"] == 0
    assert texts(events) == expected()
    assert [payload["offset"] for name, payload in events if name == "data"] == list(range(CHUNKS))
    assert events[-1][0] == "done"
    assert events[-1][1]["usage"]["completion_tokens"] == CHUNKS


async def test_dropped_connection_resumes_with_exactly_the_remaining_chunks(
    mocks, make_router, route
) -> None:
    backend = await mocks(delay_ms=10)
    harness = await make_router({"m": route([backend.url])})
    response = await harness.session.post(harness.url + STREAM, json=request())
    first = await read_events(response, limit=12)
    response.close()  # the connection drops with 28 chunks still to come
    token = [payload for name, payload in first if name == "data"][-1]["resume_token"]
    seen = texts(first)
    assert len(seen) == 12
    async with harness.post(STREAM, {"resume_token": token}) as resumed:
        assert resumed.status == 200
        rest = parse_events(await resumed.read())
    assert rest[0] == ("resume", rest[0][1])
    assert rest[0][1]["offset"] == 12
    assert seen + texts(rest) == expected()
    assert rest[-1][0] == "done"


KILLED_CLIENT = """
import http.client, json, sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
body = json.dumps({"model": "m", "prompt": "x", "max_tokens": 40})
connection.request("POST", url.path, body, {"content-type": "application/json"})
for line in connection.getresponse():
    if line.startswith(b"data: ") and b'"text"' in line:
        print(line[6:].decode().strip(), flush=True)
"""


async def test_killed_client_resumes_from_its_last_token(mocks, make_router, route) -> None:
    backend = await mocks(delay_ms=10)
    harness = await make_router({"m": route([backend.url])})
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_CLIENT, harness.url + STREAM, stdout=subprocess.PIPE
    )
    assert client.stdout is not None
    received = []
    while len(received) < 10:
        received.append(orjson.loads(await client.stdout.readline()))
    client.kill()  # SIGKILL: no goodbye, the socket just dies
    await client.wait()
    async with harness.post(STREAM, {"resume_token": received[-1]["resume_token"]}) as resumed:
        rest = parse_events(await resumed.read())
    assert [item["text"] for item in received] + texts(rest) == expected()


async def test_heartbeats_carry_fresh_tokens(mocks, make_router, route) -> None:
    backend = await mocks(delay_ms=150)
    harness = await make_router({"m": route([backend.url])}, heartbeat_seconds=0.1)
    async with harness.post(STREAM, request(max_tokens=4)) as response:
        events = parse_events(await response.read())
    beats = [payload for name, payload in events if name == "heartbeat"]
    assert len(beats) >= 3
    assert texts(events) == expected(4)
    # a heartbeat's token resumes at the offset it names
    last_beat = beats[-1]
    async with harness.post(STREAM, {"resume_token": last_beat["resume_token"]}) as resumed:
        rest = parse_events(await resumed.read())
    assert texts(rest) == expected(4)[last_beat["offset"] :]


async def test_forged_expired_and_unknown_tokens_are_refused(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])})
    async with harness.post(STREAM, request(max_tokens=3)) as response:
        events = parse_events(await response.read())
    good = events[1][1]["resume_token"]
    stream_id = events[0][1]["stream_id"]
    kid, sid, _offset, expires, signature = good.split(".")
    keyring = harness.router.keys.keyring
    forged_sig = ".".join([kid, sid, "0", expires, signature])
    other_key = parse_keyring("other=" + "x" * 32)
    cases = {
        forged_sig: 401,
        "garbage": 401,
        sign(other_key, stream_id, 1, 300): 401,
        sign(keyring, stream_id, 1, -10): 410,
        sign(keyring, "ab" * 16, 0, 300): 410,  # validly signed, but no such stream is buffered
    }
    for token, status in cases.items():
        async with harness.post(STREAM, {"resume_token": token}) as response:
            assert response.status == status, token
            assert "error" in await response.json()
    async with harness.post(STREAM, {"resume_token": good}) as response:
        assert response.status == 200


async def test_key_rotation_mid_stream_loses_nothing(mocks, make_router, route, tmp_path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("k1=" + "a" * 32 + "\n")
    backend = await mocks(delay_ms=60)
    harness = await make_router({"m": route([backend.url])}, resume_keys_file=str(keys_file))
    response = await harness.session.post(harness.url + STREAM, json=request())
    first = await read_events(response, limit=8)
    old_token = [payload for name, payload in first if name == "data"][-1]["resume_token"]
    assert old_token.startswith("k1.")
    keys_file.write_text("k2=" + "b" * 32 + "\nk1=" + "a" * 32 + "\n")  # new key signs, old still verifies
    start = time.monotonic()
    while harness.router.keys.keyring.signing[0] != "k2":
        assert time.monotonic() - start < 3
        await asyncio.sleep(0.05)
    second = await read_events(response)
    assert texts(first) + texts(second) == expected()
    new_token = [payload for name, payload in second if name == "data"][-1]["resume_token"]
    assert new_token.startswith("k2.")
    # the client reconnects with the token it got before the rotation: still honoured
    async with harness.post(STREAM, {"resume_token": old_token}) as resumed:
        rest = parse_events(await resumed.read())
    assert texts(first) + texts(rest) == expected()
    # once k1 is retired, its tokens are refused
    keys_file.write_text("k2=" + "b" * 32 + "\n")
    while harness.router.keys.keyring.secret("k1") is not None:
        assert time.monotonic() - start < 6
        await asyncio.sleep(0.05)
    async with harness.post(STREAM, {"resume_token": old_token}) as response:
        assert response.status == 401


async def test_evicted_stream_is_gone(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])}, replay_max_streams=1)
    async with harness.post(STREAM, request(max_tokens=3)) as response:
        token = parse_events(await response.read())[1][1]["resume_token"]
    async with harness.post(STREAM, request(max_tokens=3)) as response:
        await response.read()  # a second stream evicts the first
    async with harness.post(STREAM, {"resume_token": token}) as response:
        assert response.status == 410


async def test_upstream_failure_ends_the_stream_with_an_error_event(mocks, make_router, route) -> None:
    backend = await mocks(fail_status=500)
    harness = await make_router({"m": route([backend.url])})
    async with harness.post(STREAM, request()) as response:
        events = parse_events(await response.read())
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["code"] == "upstream_error"
