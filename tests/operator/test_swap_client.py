"""The in-place swap client against a small aiohttp server speaking the runtime's admin API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from inferflux.operator.swap_client import (
    Outcome,
    SwapRequest,
    classify,
    swap_pod,
    swap_pods,
    swap_url,
)

TOKEN = "s3cret-token"
FITS = SwapRequest("/models/b.gguf", "gemma-b", "a" * 64)
TOO_BIG = SwapRequest("/models/huge.gguf", "huge", "b" * 64)
BROKEN = SwapRequest("/models/broken.gguf", "broken", "c" * 64)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=status)


class FakeAdmin:
    """The runtime admin API's contract: bearer token, 200 / 409 / 400, and the JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def swap(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error(401, "a valid admin bearer token is required")
        body = await request.json()
        self.bodies.append(body)
        if body["model_path"] == TOO_BIG.model_path:
            return _error(409, "model B does not fit beside model A: needs 3 GiB, 1 GiB free")
        if body["model_path"] == BROKEN.model_path:
            return _error(400, "not a GGUF file")
        return web.json_response({"served_name": body["served_name"], "previous": "a", "drained": True})


@pytest.fixture
async def admin() -> AsyncIterator[tuple[FakeAdmin, int]]:
    fake = FakeAdmin()
    app = web.Application()
    app.router.add_post("/admin/v1/swap", fake.swap)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield fake, port
    await runner.cleanup()


async def test_a_swap_that_fits_is_swapped_with_the_documented_body(admin: tuple[FakeAdmin, int]) -> None:
    fake, port = admin
    async with aiohttp.ClientSession() as session:
        result = await swap_pod(session, "127.0.0.1", TOKEN, FITS, port)
    assert result.outcome == Outcome.SWAPPED
    assert fake.bodies == [{"model_path": "/models/b.gguf", "served_name": "gemma-b", "sha256": "a" * 64}]


async def test_a_409_is_a_refusal_carrying_the_runtimes_reason(admin: tuple[FakeAdmin, int]) -> None:
    _, port = admin
    async with aiohttp.ClientSession() as session:
        result = await swap_pod(session, "127.0.0.1", TOKEN, TOO_BIG, port)
    assert result.outcome == Outcome.REFUSED
    assert "does not fit" in result.reason


async def test_a_bad_load_or_wrong_token_is_a_failure(admin: tuple[FakeAdmin, int]) -> None:
    _, port = admin
    async with aiohttp.ClientSession() as session:
        broken = await swap_pod(session, "127.0.0.1", TOKEN, BROKEN, port)
        unauthorised = await swap_pod(session, "127.0.0.1", "wrong", FITS, port)
    assert (broken.outcome, broken.reason) == (Outcome.FAILED, "HTTP 400: not a GGUF file")
    assert unauthorised.outcome == Outcome.FAILED
    assert "401" in unauthorised.reason
    assert "wrong" not in unauthorised.reason


async def test_no_server_behind_the_ip_is_a_failure_not_an_exception(unused_tcp_port: int) -> None:
    async with aiohttp.ClientSession() as session:
        result = await swap_pod(session, "127.0.0.1", TOKEN, FITS, unused_tcp_port)
    assert result.outcome == Outcome.FAILED
    assert "did not answer" in result.reason


async def test_pods_swap_one_at_a_time_and_stop_at_the_first_refusal(admin: tuple[FakeAdmin, int]) -> None:
    fake, port = admin
    async with aiohttp.ClientSession() as session:
        done = await swap_pods(session, ["127.0.0.1", "127.0.0.1"], TOKEN, FITS, port)
        assert done.outcome == Outcome.SWAPPED
        assert len(fake.bodies) == 2
        refused = await swap_pods(session, ["127.0.0.1", "127.0.0.1"], TOKEN, TOO_BIG, port)
        assert refused.outcome == Outcome.REFUSED
        assert len(fake.bodies) == 3
        assert (await swap_pods(session, [], TOKEN, FITS, port)).outcome == Outcome.FAILED


def test_classify_and_url() -> None:
    assert classify(500, "not json").reason == "HTTP 500: HTTP 500"
    assert classify(409, {"error": {"message": "busy"}}).outcome == Outcome.REFUSED
    assert swap_url("10.0.0.7") == "http://10.0.0.7:8080/admin/v1/swap"
    assert swap_url("fd00::7") == "http://[fd00::7]:8080/admin/v1/swap"


def test_the_signature_is_sent_only_for_a_signed_source() -> None:
    assert "signature" not in SwapRequest("/models/b.gguf", "m", "a" * 64).body()
    assert SwapRequest("/models/b.gguf", "m", "a" * 64, "c2ln").body()["signature"] == "c2ln"
