"""The ledger: budgets and rate limits that cannot be overspent, kept in Redis.

Every operation is one round trip: one EVALSHA of ledger.lua, which Redis runs atomically, so no
two routers can both spend the last of a budget. At admission the script, in this order, releases
the tenant's expired reservations, checks the request id (idempotency), the rate limits (GCRA on
Redis time) and every budget window, and only if all pass reserves the request's maximum cost in
every window and takes a request slot. At the end the request is settled: its real cost moves into
spent, the rest of the reservation is released, its tokens count against tokens-per-minute.

Money is integer micro-units (pricing.py). docs/budgets.md explains the model and its limits.

Usage (one `Ledger` per router process, shared by all requests)::

    ledger = Ledger.from_url(settings.redis_url, reservation_ttl=settings.total_timeout_seconds + 60)
    await ledger.load()                                    # SCRIPT LOAD once (else on first use)
    limits = Limits(tenant=ScopeLimits(daily=5_000_000, requests_per_minute=600, tokens_per_minute=90_000),
                    key=ScopeLimits(monthly=20_000_000))
    try:
        admission = await ledger.admit(request_id, tenant, key_id,
                                       pricing.max_cost(model, prompt_tokens, max_tokens), limits,
                                       pricing_checksum=pricing.checksum or "")
    except LedgerUnavailable:
        ...                                                # 503, or let it through (fail-open tenant)
    if not admission.admitted:
        ...                                                # admission.refusal: 409 / 429, retry_after
    ...                                                    # forward; admission.requests/.tokens: headers
    record = await ledger.settle(admission, pricing.cost(model, usage.prompt, usage.completion),
                                 usage.prompt + usage.completion)
    # or, refused downstream before any cost: await ledger.release(admission)
    await ledger.close()                                   # at shutdown

`settle` never raises for an unreachable Redis: the settle is queued in memory and retried with
backoff (``record.outcome == "queued"``); `pending_settles` tells how many wait.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("inferflux.router.budgets.ledger")

SCRIPT = resources.files("inferflux.router.budgets").joinpath("ledger.lua").read_text(encoding="utf-8")
MICROS = 1_000_000
MAX_REQUEST_ID = 200
# Redis answers these (as errors) when it cannot take writes now: treated as unavailable.
_UNAVAILABLE_REPLIES = ("LOADING", "MISCONF", "READONLY", "BUSY", "MASTERDOWN", "NOREPLICAS")

Window = Literal["daily", "monthly", "total"]
Outcome = Literal["settled", "released", "duplicate", "unknown", "queued"]


class LedgerUnavailable(Exception):
    """Redis could not be reached, or did not answer in time: nothing is known about the budget."""


class Refusal(enum.StrEnum):
    """Why an admission was refused (the stage maps these to HTTP answers)."""

    DUPLICATE_IN_FLIGHT = "duplicate_in_flight"  # the id's previous attempt is still open: 409
    DUPLICATE_EXHAUSTED = "duplicate_exhausted"  # the id was used max_attempts times
    REQUESTS_RATE = "rate_limited_requests"  # requests per minute: 429 + retry-after
    TOKENS_RATE = "rate_limited_tokens"  # tokens per minute (in debt): 429 + retry-after
    BUDGET = "budget_exceeded"  # a budget window: 429 insufficient_quota


@dataclass(frozen=True)
class ScopeLimits:
    """The limits of one tenant or one key; None = no such limit. Budgets are micro-units."""

    daily: int | None = None
    monthly: int | None = None
    total: int | None = None
    requests_per_minute: int | None = None
    request_burst: int | None = None  # requests allowed at once; default one second's worth (rpm/60)
    tokens_per_minute: int | None = None

    def window_limit(self, window: Window) -> int | None:
        """The budget of one window."""
        return {"daily": self.daily, "monthly": self.monthly, "total": self.total}[window]

    def arguments(self) -> list[str]:
        values = (
            self.daily,
            self.monthly,
            self.total,
            self.requests_per_minute,
            self.request_burst,
            self.tokens_per_minute,
        )
        for value in values:
            if value is not None and value < 0:
                raise ValueError("limits are non-negative integers")
        for rate in (self.requests_per_minute, self.request_burst, self.tokens_per_minute):
            if rate == 0:
                raise ValueError("a rate limit of 0 is not a limit: leave it unset")
        return ["" if value is None else str(int(value)) for value in values]


@dataclass(frozen=True)
class Limits:
    """What applies to one request: its tenant's limits and, optionally, its key's."""

    tenant: ScopeLimits = field(default_factory=ScopeLimits)
    key: ScopeLimits | None = None


@dataclass(frozen=True)
class RateState:
    """One rate limit as the response headers show it (the tighter of tenant and key)."""

    limit: int
    remaining: int
    reset_seconds: float  # until the limit is back to full


@dataclass(frozen=True)
class Admission:
    """The answer to `Ledger.admit`; pass it to `settle` or `release` once the request is done."""

    request_id: str
    tenant: str
    key_id: str | None
    pricing_checksum: str
    refusal: Refusal | None
    attempt: int  # 1 for a new id, then 2, 3, ... for retries with the same id
    reserved: int  # micro-units reserved for this attempt (max cost less what the id was charged)
    previously_charged: int  # what earlier attempts with this id were charged
    refused_scope: Literal["tenant", "key"] | None = None
    refused_window: Window | None = None
    retry_after: float | None = None  # seconds, for rate refusals and daily/monthly budgets
    requests: RateState | None = None  # None when no requests/minute limit applies
    tokens: RateState | None = None  # None when no tokens/minute limit applies

    @property
    def admitted(self) -> bool:
        """True when the request may go ahead."""
        return self.refusal is None


@dataclass(frozen=True)
class CostRecord:
    """What a settle did. ``charged`` was added to spend now; ``total_charged`` is the id's total."""

    request_id: str
    tenant: str
    key_id: str | None
    attempt: int
    outcome: Outcome
    cost: int  # this attempt's real cost, micro-units
    tokens: int
    charged: int
    total_charged: int
    reserved: int
    pricing_checksum: str


@dataclass(frozen=True)
class WindowSpend:
    """One budget window: settled spend, open reservations, and its limit (None = unlimited)."""

    spent: int
    reserved: int
    limit: int | None


@dataclass(frozen=True)
class Spend:
    """A tenant's (and optionally a key's) windows now; ``day``/``month`` name the current ones."""

    day: str  # e.g. 2026-12-06
    month: str  # e.g. 2026-12
    tenant: dict[Window, WindowSpend]
    key: dict[Window, WindowSpend] | None


@dataclass(frozen=True)
class _PendingSettle:
    admission: Admission
    cost: int
    tokens: int
    release: bool


WINDOWS: tuple[Window, ...] = ("daily", "monthly", "total")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_name(what: str, value: str, longest: int = 253, colon: bool = False) -> None:
    if not value or len(value) > longest or (not colon and ":" in value):
        raise ValueError(f"{what} must be 1-{longest} characters" + ("" if colon else " without ':'"))


class Ledger:
    """Budgets and rate limits on one (non-cluster) Redis, through ledger.lua.

    ``reservation_ttl`` (seconds) must exceed the longest request: a reservation older than that is
    released as if its router died. ``idempotency_window`` is how long a settled request id is
    remembered; ``max_attempts`` how often one id may be admitted. ``clock`` (microseconds since
    the epoch) replaces Redis TIME: for tests only. ``round_trips`` counts commands sent to Redis.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "inferflux:ledger:",
        reservation_ttl: float = 660.0,
        idempotency_window: float = 600.0,
        max_attempts: int = 5,
        retry_queue_size: int = 10_000,
        retry_backoff: tuple[float, float] = (0.05, 5.0),
        clock: Callable[[], int] | None = None,
    ) -> None:
        if reservation_ttl <= 0 or idempotency_window <= 0 or max_attempts < 1:
            raise ValueError("reservation_ttl and idempotency_window are > 0, max_attempts >= 1")
        self.client = client
        self.prefix = prefix
        self.reservation_ttl = reservation_ttl
        self.idempotency_window = idempotency_window
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.clock = clock
        self.round_trips = 0
        self.dropped_settles = 0  # settles lost because the retry queue was full
        self._sha: str | None = None
        self._queue: collections.deque[_PendingSettle] = collections.deque(maxlen=retry_queue_size)
        self._drainer: asyncio.Task[None] | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float = 0.5,
        connect_timeout: float = 1.0,
        max_connections: int = 128,
        pool_timeout: float = 5.0,
        **options: Any,
    ) -> Ledger:
        """A ledger on the Redis at ``url`` with short timeouts and no client-side retries.

        A refused connection fails at once; a stalled Redis within ``connect_timeout`` (opening a
        connection) or ``socket_timeout`` (an answer); a request waits at most ``pool_timeout``
        for one of the ``max_connections``. Each raises `LedgerUnavailable` instead of hanging.
        The timeouts count event-loop time, so they must stay well above the loop's lag under load:
        at 250 ms, a burst of 1,000 requests in one process on two busy cores timed out connecting.
        """
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=pool_timeout,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(Redis(connection_pool=pool), **options)

    # Plumbing ------------------------------------------------------------------------------------
    def _now(self) -> str:
        return "" if self.clock is None else str(int(self.clock()))

    async def load(self) -> None:
        """SCRIPT LOAD the ledger script (at start-up, so that requests need one round trip each)."""
        try:
            self.round_trips += 1
            self._sha = _text(await self.client.script_load(SCRIPT))
        except Exception as error:
            raise self._translate(error) from error

    def _translate(self, error: Exception) -> Exception:
        if isinstance(error, RedisConnectionError | RedisTimeoutError | OSError | asyncio.TimeoutError):
            return LedgerUnavailable(f"Redis unavailable ({type(error).__name__})")
        if isinstance(error, ResponseError) and str(error).startswith(_UNAVAILABLE_REPLIES):
            return LedgerUnavailable(f"Redis cannot serve now ({str(error).split(' ', 1)[0]})")
        return error

    async def _run(self, *arguments: str) -> list[Any]:
        """One EVALSHA (reloading the script once if Redis lost it, e.g. after a restart)."""
        if self._sha is None:
            await self.load()
        try:
            try:
                self.round_trips += 1
                reply = await self.client.evalsha(self._sha, 0, *arguments)  # type: ignore[arg-type]
            except NoScriptError:
                await self.load()
                self.round_trips += 1
                reply = await self.client.evalsha(self._sha, 0, *arguments)  # type: ignore[arg-type]
        except Exception as error:
            raise self._translate(error) from error
        return list(reply)

    # Admission -----------------------------------------------------------------------------------
    async def admit(
        self,
        request_id: str,
        tenant: str,
        key_id: str | None,
        max_cost: int,
        limits: Limits,
        *,
        pricing_checksum: str,
        reservation_ttl: float | None = None,
    ) -> Admission:
        """Check idempotency, rate limits and budgets, and reserve ``max_cost`` — or refuse.

        Raises `LedgerUnavailable` when Redis cannot answer, ValueError on malformed arguments.
        """
        _check_name("request id", request_id, MAX_REQUEST_ID, colon=True)
        _check_name("tenant", tenant)
        if key_id is not None:
            _check_name("key id", key_id)
        if max_cost < 0:
            raise ValueError("max_cost is a non-negative number of micro-units")
        ttl = self.reservation_ttl if reservation_ttl is None else reservation_ttl
        key_limits = limits.key if key_id is not None and limits.key is not None else ScopeLimits()
        reply = await self._run(
            "admit",
            self.prefix,
            self._now(),
            tenant,
            key_id or "",
            request_id,
            str(int(max_cost)),
            str(int(ttl * MICROS)),
            str(int(self.idempotency_window * MICROS)),
            str(self.max_attempts),
            *limits.tenant.arguments(),
            *key_limits.arguments(),
        )
        verdict, scope, window = (_text(part) for part in reply[:3])
        numbers = [int(part) for part in reply[3:]] + [-1] * (13 - len(reply))
        wait, attempt, reserved, charged = numbers[:4]
        refusal = None if verdict == "ok" else Refusal(verdict)
        return Admission(
            request_id=request_id,
            tenant=tenant,
            key_id=key_id,
            pricing_checksum=pricing_checksum,
            refusal=refusal,
            attempt=attempt,
            reserved=max(reserved, 0),
            previously_charged=max(charged, 0),
            refused_scope="tenant" if scope == "tenant" else "key" if scope == "key" else None,
            refused_window=window if window in WINDOWS else None,
            retry_after=wait / MICROS if refusal is not None and wait > 0 else None,
            requests=_rate(numbers[4:7]),
            tokens=_rate(numbers[7:10]),
        )

    # Settling ------------------------------------------------------------------------------------
    async def settle(self, admission: Admission, cost: int, tokens: int) -> CostRecord:
        """Charge ``cost`` (micro-units, from the same pricing as admission) and count ``tokens``.

        Settling an attempt twice changes nothing the second time. If Redis is unreachable the
        settle is queued and retried (outcome ``queued``); it never raises LedgerUnavailable.
        """
        return await self._settle(_PendingSettle(admission, max(cost, 0), max(tokens, 0), release=False))

    async def release(self, admission: Admission) -> CostRecord:
        """Release a reservation without charging (the request was refused downstream)."""
        return await self._settle(_PendingSettle(admission, 0, 0, release=True))

    async def _settle(self, pending: _PendingSettle) -> CostRecord:
        if not pending.admission.admitted:
            raise ValueError("only an admitted request can be settled or released")
        try:
            return await self._settle_now(pending)
        except LedgerUnavailable:
            self._enqueue(pending)
            return _record(pending, "queued", 0, 0, 0)

    async def _settle_now(self, pending: _PendingSettle) -> CostRecord:
        admission = pending.admission
        reply = await self._run(
            "settle",
            self.prefix,
            self._now(),
            admission.tenant,
            admission.request_id,
            str(admission.attempt),
            str(pending.cost),
            str(pending.tokens),
            str(int(self.idempotency_window * MICROS)),
            "release" if pending.release else "settle",
        )
        outcome = _text(reply[0])
        charged, total, reserved = (int(part) for part in reply[1:4])
        if outcome == "settled" and charged > reserved and reserved >= 0:
            log.warning(
                "request %s of tenant %s cost %d micro-units, more than the %d reserved",
                admission.request_id,
                admission.tenant,
                charged,
                reserved,
            )
        if outcome == "unknown":
            log.warning(
                "request %s of tenant %s settled after its id was forgotten: not charged",
                admission.request_id,
                admission.tenant,
            )
        return _record(pending, outcome, charged, total, reserved)  # type: ignore[arg-type]

    def _enqueue(self, pending: _PendingSettle) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped_settles += 1
            log.error(
                "settle retry queue full: request %s of tenant %s is not charged (its reservation expires)",
                pending.admission.request_id,
                pending.admission.tenant,
            )
            return
        self._queue.append(pending)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    @property
    def pending_settles(self) -> int:
        """Settles waiting in memory for Redis to come back."""
        return len(self._queue)

    async def _drain(self) -> None:
        """Retry queued settles oldest first, backing off while Redis stays away."""
        first, longest = self.retry_backoff
        delay = first
        while self._queue:
            pending = self._queue[0]
            try:
                await self._settle_now(pending)
            except LedgerUnavailable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)
                continue
            except Exception:  # a settle Redis refuses for another reason would block the rest
                log.exception("dropping a queued settle of tenant %s", pending.admission.tenant)
            self._queue.popleft()
            delay = first

    # Reading -------------------------------------------------------------------------------------
    async def spend(self, tenant: str, key_id: str | None = None, limits: Limits | None = None) -> Spend:
        """Spent and reserved per window now (expired reservations released first), with limits."""
        _check_name("tenant", tenant)
        if key_id is not None:
            _check_name("key id", key_id)
        reply = await self._run("spend", self.prefix, self._now(), tenant, key_id or "")
        day, month = _text(reply[0])[2:], _text(reply[1])[2:]
        amounts = [int(part) for part in reply[2:]]
        limits = limits or Limits()

        def windows(offset: int, scope: ScopeLimits | None) -> dict[Window, WindowSpend]:
            return {
                window: WindowSpend(
                    spent=amounts[offset + 2 * i],
                    reserved=amounts[offset + 2 * i + 1],
                    limit=scope.window_limit(window) if scope else None,
                )
                for i, window in enumerate(WINDOWS)
            }

        return Spend(
            day=day,
            month=month,
            tenant=windows(0, limits.tenant),
            key=windows(6, limits.key) if key_id is not None else None,
        )

    async def close(self) -> None:
        """Stop retrying (saying how many settles are lost) and close the connections."""
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        if self._queue:
            log.error("%d queued settles are lost (their reservations expire uncharged)", len(self._queue))
        await self.client.aclose()


def _rate(values: list[int]) -> RateState | None:
    limit, remaining, reset = values
    if limit < 0:
        return None
    return RateState(limit=limit, remaining=max(remaining, 0), reset_seconds=max(reset, 0) / MICROS)


def _record(pending: _PendingSettle, outcome: Outcome, charged: int, total: int, reserved: int) -> CostRecord:
    admission = pending.admission
    return CostRecord(
        request_id=admission.request_id,
        tenant=admission.tenant,
        key_id=admission.key_id,
        attempt=admission.attempt,
        outcome=outcome,
        cost=pending.cost,
        tokens=pending.tokens,
        charged=charged,
        total_charged=total,
        reserved=reserved,
        pricing_checksum=admission.pricing_checksum,
    )
