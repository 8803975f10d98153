"""The pipelined RESP connection against a real redis-server: order, errors, loss and reconnection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from inferflux.router.budgets.resp import Endpoint, Multiplexed, ReplyError, encode


def test_commands_are_arrays_of_bulk_strings() -> None:
    assert encode(("SET", b"k", "v")) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"


def test_urls_name_the_login() -> None:
    endpoint = Endpoint("redis://:p%40ss@db.example:6380/2")
    assert (endpoint.host, endpoint.port, endpoint.db, endpoint.tls) == ("db.example", 6380, 2, False)
    assert endpoint.login() == [("AUTH", "p@ss"), ("SELECT", "2")]
    assert Endpoint("rediss://user:pw@h").login() == [("AUTH", "user", "pw")]
    with pytest.raises(ValueError, match="redis://"):
        Endpoint("http://h")


async def test_concurrent_callers_each_get_their_own_reply(redis: Any) -> None:
    client = Multiplexed(redis.url)
    try:
        replies = await asyncio.gather(*(client.call("INCRBY", "n", str(i)) for i in range(1, 201)))
        assert len(set(replies)) == 200, "every reply went to exactly one caller"
        assert max(replies) == sum(range(1, 201))
        assert await client.call("GET", "n") == str(sum(range(1, 201))).encode()
        script = await client.call("EVAL", "return {1, ARGV[1]}", "0", "x")
        assert script == [1, b"x"]
    finally:
        await client.close()


def test_the_router_s_event_loop_uvloop_serves_it_too(redis: Any) -> None:
    """The router runs on uvloop, whose transports are not asyncio's classes."""
    import uvloop

    async def exchange() -> list[Any]:
        client = Multiplexed(redis.url)
        try:
            return list(await asyncio.gather(client.call("SET", "u", "1"), client.call("GET", "u")))
        finally:
            await client.close()

    assert uvloop.run(exchange()) == [b"OK", b"1"]


async def test_a_command_written_at_once_keeps_its_place_after_those_queued_before(redis: Any) -> None:
    """``at_once`` writes the turn's queued commands and this one now, in order (replies are matched
    to callers by order); nothing is written twice when the turn's own write comes."""
    client = Multiplexed(redis.url)
    try:
        await client.call("DEL", "order")
        queued = [client.send_encoded(encode(("RPUSH", "order", str(i)))) for i in range(3)]
        connection = client._connection
        assert connection is not None
        assert len(connection._outgoing) == 3  # waiting for the turn's end
        now = client.send_encoded(encode(("RPUSH", "order", "now")), at_once=True)
        assert connection._outgoing == []  # written, with the three before it
        later = client.send_encoded(encode(("RPUSH", "order", "later")))
        assert all(future is not None for future in (*queued, now, later))
        assert now is not None
        assert await now == 4
        replies = await asyncio.gather(*(f for f in (*queued, later) if f is not None))
        assert replies == [1, 2, 3, 5]
        assert await client.call("LRANGE", "order", "0", "-1") == [b"0", b"1", b"2", b"now", b"later"]
    finally:
        await client.close()


async def test_an_error_reply_raises_and_the_connection_goes_on(redis: Any) -> None:
    client = Multiplexed(redis.url)
    try:
        with pytest.raises(ReplyError, match="NOSCRIPT"):
            await client.call("EVALSHA", "0" * 40, "0")
        assert await client.call("PING") == b"PONG"
    finally:
        await client.close()


async def test_a_lost_server_fails_waiting_callers_fast_and_a_new_one_is_reached(redis: Any) -> None:
    client = Multiplexed(redis.url, timeout=1.0, connect_timeout=0.5)
    try:
        assert await client.call("SET", "k", "1") == b"OK"
        redis.kill()
        with pytest.raises((ConnectionError, OSError, TimeoutError)):
            await client.call("GET", "k")
        redis.start()
        assert await client.call("PING") == b"PONG", "the next call connects again"
    finally:
        await client.close()


async def test_a_wrong_password_is_refused_at_connect(redis: Any) -> None:
    admin = Multiplexed(redis.url)
    await admin.call("CONFIG", "SET", "requirepass", "secret")
    await admin.close()
    url = redis.url.replace("redis://", "redis://:wrong@")
    wrong = Multiplexed(url)
    with pytest.raises(ReplyError):
        await wrong.call("PING")
    await wrong.close()
    good = Multiplexed(redis.url.replace("redis://", "redis://:secret@"))
    try:
        assert await good.call("PING") == b"PONG"
    finally:
        await good.call("CONFIG", "SET", "requirepass", "")
        await good.close()


async def test_a_silent_server_times_callers_out_and_the_connection_is_dropped() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 20)  # takes the command, never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Multiplexed(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(*(client.call("PING") for _ in range(3)), return_exceptions=True)
        assert all(isinstance(result, TimeoutError) for result in results), results
        assert loop.time() - started < 5, "bounded by the timeout, not hung"
    finally:
        await client.close()
        server.close()
