"""The ledger when things die: a router SIGKILLed with open reservations, Redis SIGKILLed mid-run."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from inferflux.router.budgets.ledger import Admission, Ledger, LedgerUnavailable, Limits, Refusal, ScopeLimits

RESERVER = Path(__file__).with_name("reserver.py")


async def wait_until(condition: Any, within: float = 30.0) -> None:
    """Poll an async condition until true (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_a_killed_router_leaks_no_budget(redis: Any, ledger: Ledger) -> None:
    """15 open reservations of a SIGKILLed process are released at expiry; the budget is exact."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(RESERVER), redis.url, "acme", "15", "5", "5", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=120)).decode().strip()
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert line == "spent=4000 reserved=15000"  # 5 settled at 800, 15 open at 1000

    async def released() -> bool:
        return (await ledger.spend("acme")).tenant["total"].reserved == 0

    await wait_until(released)
    total = (await ledger.spend("acme")).tenant["total"]
    assert (total.spent, total.reserved) == (4_000, 0)
    # Exact afterwards: a budget of 10,000 more than spent admits ten requests of 1,000, not eleven.
    limits = Limits(ScopeLimits(total=14_000))
    verdicts = [
        (await ledger.admit(f"after-{i}", "acme", None, 1_000, limits, pricing_checksum="")).refusal
        for i in range(11)
    ]
    assert verdicts == [None] * 10 + [Refusal.BUDGET]


async def test_redis_killed_and_restarted_with_aof_loses_nothing_settled(aof_redis: Any) -> None:
    ledger = Ledger.from_url(aof_redis.url, retry_backoff=(0.05, 0.5))
    limits = Limits(ScopeLimits(daily=1_000_000, total=1_000_000))
    try:
        for i in range(10):
            admission = await ledger.admit(f"before-{i}", "acme", "k1", 1_000, limits, pricing_checksum="p")
            await ledger.settle(admission, 500, 10)
        in_flight = [
            await ledger.admit(f"during-{i}", "acme", "k1", 1_000, limits, pricing_checksum="p")
            for i in range(5)
        ]
        aof_redis.kill()

        # During the outage: admission fails fast with LedgerUnavailable (bounded here, never a hang),
        # and settles are queued in memory.
        with pytest.raises(LedgerUnavailable):
            await asyncio.wait_for(
                ledger.admit("outage", "acme", "k1", 1_000, limits, pricing_checksum="p"), timeout=5
            )
        with pytest.raises(LedgerUnavailable):
            await asyncio.wait_for(ledger.spend("acme"), timeout=5)
        records = [await ledger.settle(admission, 700, 10) for admission in in_flight]
        assert {record.outcome for record in records} == {"queued"}
        assert ledger.pending_settles == 5

        aof_redis.start()  # same folder and port: the AOF is replayed

        async def drained() -> bool:
            return ledger.pending_settles == 0

        await wait_until(drained)
        spend = await ledger.spend("acme", "k1")
        assert spend.key is not None
        for windows in (spend.tenant, spend.key):
            assert (windows["daily"].spent, windows["daily"].reserved) == (10 * 500 + 5 * 700, 0)
            assert (windows["total"].spent, windows["total"].reserved) == (10 * 500 + 5 * 700, 0)
        # The queued settles landed once: settling again (as a retry after a lost reply would) is a no-op.
        again = await ledger.settle(in_flight[0], 700, 10)
        assert again.outcome == "duplicate"
        assert (await ledger.spend("acme")).tenant["total"].spent == 10 * 500 + 5 * 700
        assert ledger.dropped_settles == 0
    finally:
        await ledger.close()


async def test_an_unreachable_redis_is_reported_not_waited_for(tmp_path: Path) -> None:
    from socket import socket

    with socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ledger = Ledger.from_url(f"redis://127.0.0.1:{port}/0", retry_queue_size=2)
    try:
        with pytest.raises(LedgerUnavailable):
            await asyncio.wait_for(ledger.load(), timeout=5)
        with pytest.raises(LedgerUnavailable):
            await asyncio.wait_for(
                ledger.admit("r", "acme", None, 1, Limits(), pricing_checksum=""), timeout=5
            )
        # Settles wait in a bounded queue; past its size they are dropped (and counted), not kept.
        admitted = Admission(
            "r", "acme", None, "p", refusal=None, attempt=1, reserved=1, previously_charged=0
        )
        records = [await ledger.settle(admitted, 1, 1) for _ in range(3)]
        assert [record.outcome for record in records] == ["queued"] * 3
        assert (ledger.pending_settles, ledger.dropped_settles) == (2, 1)
    finally:
        await ledger.close()


class AnswerDroppingProxy:
    """A TCP proxy to Redis that can swallow Redis's answers: requests arrive, replies are lost."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dropping = False
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, answers: bool) -> None:
            try:
                while data := await source.read(65536):
                    if not (answers and self.dropping):
                        sink.write(data)
                        await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(client_reader, writer, False), pipe(reader, client_writer, True))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_an_admission_whose_answer_was_lost_is_cancelled(redis: Any) -> None:
    """The script ran but its answer never came back: the ledger releases what it reserved."""
    proxy = AnswerDroppingProxy(redis.port)
    ledger = Ledger.from_url(await proxy.start())
    admin = Redis.from_url(redis.url)
    limits = Limits(ScopeLimits(total=10_000))
    try:
        await ledger.load()
        proxy.dropping = True
        with pytest.raises(LedgerUnavailable):  # after the 0.5 s socket timeout
            await ledger.admit("lost", "acme", None, 4_000, limits, pricing_checksum="")
        # It did run (and its cancellation may already have, through a new connection).
        assert await admin.hget("inferflux:ledger:r:acme:lost", "st") in (b"open", b"released")
        proxy.dropping = False

        async def cancelled() -> bool:
            return ledger.pending_cancels == 0

        await wait_until(cancelled)
        assert await admin.hget("inferflux:ledger:r:acme:lost", "st") == b"released"
        assert (await ledger.spend("acme")).tenant["total"].reserved == 0
        # The client's retry with the same id is admitted, not refused as in flight.
        retry = await ledger.admit("lost", "acme", None, 4_000, limits, pricing_checksum="")
        assert (retry.refusal, retry.reserved) == (None, 4_000)
    finally:
        await admin.aclose()
        await ledger.close()
        await proxy.close()


async def test_an_admission_cancelled_by_its_caller_is_undone(redis: Any) -> None:
    """The caller went away while the script ran: its reservation is released, not left to expire."""
    proxy = AnswerDroppingProxy(redis.port)
    ledger = Ledger.from_url(await proxy.start())
    limits = Limits(ScopeLimits(total=10_000))
    try:
        await ledger.load()
        proxy.dropping = True
        admission = asyncio.create_task(
            ledger.admit("gone", "acme", None, 4_000, limits, pricing_checksum="")
        )

        async def ran() -> bool:
            return (await ledger_spend(redis.url)).reserved == 4_000

        await wait_until(ran)  # the script ran; its answer is being swallowed
        admission.cancel()
        with pytest.raises(asyncio.CancelledError):
            await admission
        proxy.dropping = False

        async def released() -> bool:
            return ledger.pending_cancels == 0 and (await ledger_spend(redis.url)).reserved == 0

        await wait_until(released)
    finally:
        await ledger.close()
        await proxy.close()


async def ledger_spend(url: str) -> Any:
    """The tenant's total window, read through a ledger of its own."""
    reader = Ledger.from_url(url)
    try:
        return (await reader.spend("acme")).tenant["total"]
    finally:
        await reader.close()


async def test_settles_carried_by_an_admission_that_fails_are_queued_not_lost(aof_redis: Any) -> None:
    """Redis dies while background settles wait to ride along: the failing admission hands them to
    the retry queue, and they land once Redis is back."""
    ledger = Ledger.from_url(aof_redis.url, retry_backoff=(0.05, 0.5))
    ledger.settle_delay = 60.0  # only an admission may carry them
    limits = Limits(ScopeLimits(total=1_000_000))
    try:
        admitted = [
            await ledger.admit(f"carried-{i}", "acme", None, 1_000, limits, pricing_checksum="p")
            for i in range(5)
        ]
        for admission in admitted:
            ledger.settle_soon(admission, 300, 10)
        aof_redis.kill()
        with pytest.raises(LedgerUnavailable):
            await asyncio.wait_for(
                ledger.admit("outage", "acme", None, 1_000, limits, pricing_checksum="p"), timeout=5
            )

        async def queued() -> bool:
            return ledger.pending_settles == 5

        await wait_until(queued)
        aof_redis.start()

        async def drained() -> bool:
            return ledger.pending_settles == 0

        await wait_until(drained)
        total = (await ledger.spend("acme")).tenant["total"]
        assert (total.spent, total.reserved) == (5 * 300, 0)
        assert ledger.dropped_settles == 0
    finally:
        await ledger.close()
