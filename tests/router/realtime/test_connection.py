"""A connection's limits and backpressure, driven through its ASGI receive and send callables."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from inferflux.router.realtime.close_codes import CloseCode
from inferflux.router.realtime.connection import Closing, Connection, Limits
from inferflux.router.realtime.sessions import SessionStore


def attached(receive: Any, send: Any, **limits: Any) -> Connection:
    session = SessionStore(4, 60, outbox_frames=4).create("voice", None, "m", {})
    assert session is not None
    connection = Connection(receive, send, session, Limits(**limits))
    session.connection = connection.id
    return connection


def messages(*items: dict[str, Any]) -> Any:
    queue = list(items)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


async def test_frames_over_the_limits_close_with_their_codes() -> None:
    text = {"type": "websocket.receive", "text": "{}"}
    connection = attached(
        messages(
            text,
            {"type": "websocket.receive", "bytes": b"\x00"},
            {"type": "websocket.receive", "text": "x" * 101},
            {"type": "websocket.disconnect", "code": 1000},
        ),
        None,
        max_frame_bytes=100,
    )
    assert await connection.next_text() == "{}"
    with pytest.raises(Closing) as binary:
        await connection.next_text()
    assert binary.value.code == CloseCode.UNSUPPORTED_DATA
    with pytest.raises(Closing) as big:
        await connection.next_text()
    assert big.value.code == CloseCode.TOO_BIG
    assert await connection.next_text() is None


async def test_more_frames_than_the_rate_close_with_1008() -> None:
    frames = [{"type": "websocket.receive", "text": "{}"}] * 50
    connection = attached(messages(*frames), None, frames_per_second=10)
    for _ in range(10):  # the burst: one second's worth
        await connection.next_text()
    with pytest.raises(Closing) as fast:
        await connection.next_text()
    assert fast.value.code == CloseCode.POLICY_VIOLATION


async def test_a_client_that_takes_no_frame_is_closed_with_1013() -> None:
    async def stuck(message: dict[str, Any]) -> None:
        await asyncio.sleep(3600)

    connection = attached(None, stuck, send_timeout=0.05)
    connection.session.outbox.put("partial", text="a")
    with pytest.raises(Closing) as slow:
        await connection.pump(0)
    assert slow.value.code == CloseCode.SLOW_CONSUMER


async def test_a_reader_behind_the_outbox_is_closed_with_1013_and_memory_stays_bounded() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    connection = attached(None, send)
    for index in range(10):
        connection.session.outbox.put("partial", text=str(index))
    assert len(connection.session.outbox.frames) == 4
    with pytest.raises(Closing) as behind:
        await connection.pump(0)
    assert behind.value.code == CloseCode.SLOW_CONSUMER
    assert sent == []


async def test_a_replaced_connection_stops_pumping_with_4409() -> None:
    async def send(message: dict[str, Any]) -> None:
        pass

    connection = attached(None, send, poll_seconds=0.01)
    connection.session.connection = connection.id + 1000  # another connection took the session
    with pytest.raises(Closing) as replaced:
        await connection.pump(0)
    assert replaced.value.code == CloseCode.REPLACED
