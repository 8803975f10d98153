"""The ledger: budgets and rate limits that cannot be overspent, kept in Redis.

Every operation is one round trip: one EVALSHA of ledger.lua, which Redis runs atomically, so no
two routers can both spend the last of a budget. The admissions made in one turn of the event loop
go in one call (`_Batch`), checked in order as separate calls would be. A settle sent without
waiting (`settle_soon`) rides along with the next admission's call, applied first in the same
script run, so a busy router makes far fewer calls than requests; with no admission to carry it, it
goes alone after ``settle_delay``, and at once when it was the last admitted request of the process
still open (nothing else is in flight, so the next admission would carry it only by adding the
settle's script time to its wait).
At admission the script, in this order, releases the tenant's expired reservations, checks the
request id (idempotency), the rate limits (GCRA on Redis time) and every budget window, and only if
all pass reserves the request's maximum cost (one counter per tenant and key, checked against every
window) and takes a request slot. At the end
the request is settled: its real cost moves into spent, the rest of the reservation is released,
its tokens count against tokens-per-minute.

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
    # or without waiting: ledger.settle_soon(admission, cost, tokens, on_record) / release_soon
    await ledger.close()                                   # at shutdown

Reading, off the request path (the admin API): `spend` (windows) and `rates` (requests and tokens
per minute left, read without taking anything).

`settle` never raises for an unreachable Redis: the settle is queued in memory and retried with
backoff (``record.outcome == "queued"``); `pending_settles` tells how many wait. An `admit` that
raised `LedgerUnavailable` may still have run in Redis: the ledger queues its cancellation.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import functools
import itertools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal, NamedTuple

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from inferflux.router.budgets.resp import Multiplexed, ReplyError, bulk

log = logging.getLogger("inferflux.router.budgets.ledger")

SCRIPT = resources.files("inferflux.router.budgets").joinpath("ledger.lua").read_text(encoding="utf-8")
MICROS = 1_000_000
MAX_REQUEST_ID = 200
MAX_BATCH = 128  # calls per pipeline, at most
MAX_CALLERS = 10_000  # callers whose admission arguments are kept encoded, at most
MAX_CARRY = 128  # settles waiting to ride along with an admission, at most (then they go alone)
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

    def arguments(self) -> tuple[str, ...]:
        """The limits as the script's arguments (worked out once: a policy's limits are reused)."""
        return self._arguments

    @functools.cached_property
    def _arguments(self) -> tuple[str, ...]:
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
        return tuple("" if value is None else str(int(value)) for value in values)


#: The limits of a scope that declares none. One shared instance: the script arguments it caches
#: were worked out anew for every request of a key without limits (a profile's 13 % of the ledger).
NO_LIMITS = ScopeLimits()


@dataclass(frozen=True)
class Limits:
    """What applies to one request: its tenant's limits and, optionally, its key's."""

    tenant: ScopeLimits = field(default_factory=ScopeLimits)
    key: ScopeLimits | None = None


class RateState(NamedTuple):
    """One rate limit as the response headers show it (the tighter of tenant and key).

    This and the other records made for every request (`Admission`, `CostRecord`) are named
    tuples: immutable like a frozen dataclass, built at a third of its cost.
    """

    limit: int
    remaining: int
    reset_seconds: float  # until the limit is back to full


class Admission(NamedTuple):
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


class CostRecord(NamedTuple):
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
class RateUse:
    """One rate limit's use now, read without taking anything from it.

    ``capacity`` is the most that can be left: the request burst for requests per minute (what the
    ``x-ratelimit-remaining-requests`` header counts down from), a minute's worth for tokens.
    """

    limit: int  # per minute
    capacity: int
    remaining: int
    reset_seconds: float  # until the limit is back to full


@dataclass(frozen=True)
class ScopeRates:
    """A tenant's or a key's rate limits now; None where it declares no such limit."""

    requests: RateUse | None
    tokens: RateUse | None


@dataclass(frozen=True)
class Rates:
    """A tenant's (and optionally a key's) rate-limit use now."""

    tenant: ScopeRates
    key: ScopeRates | None


class _Caller(NamedTuple):
    """What every admission of one caller (tenant, key, limits) sends alike, worked out once.

    ``arguments``: the script's arguments before the request's own (ledger.lua's admit, [1]-[20]).
    ``shared``: the caller's part of them ([4]-[20]) as RESP (`resp.bulk`), for batched admissions
    on the pipelined connection; empty where they cannot be batched (a test clock).
    """

    limits: Limits
    arguments: tuple[str, ...]
    shared: bytes


class _Batch:
    """Admissions made in one turn of the event loop: sent in one script call (ledger.lua's admits).

    A busy router admits requests in bursts (measured: most of the pipelined connection's writes
    held 10-50 admissions). One call for them reads and writes each scope once, not once per
    request, and pays the script's fixed cost once.
    """

    __slots__ = ("callers", "carried", "command", "indices", "parts", "reloaded", "waiters")

    def __init__(self) -> None:
        self.callers: list[_Caller] = []
        self.indices: dict[int, bytes] = {}  # id(caller) -> its number in this call, in RESP
        self.parts: list[bytes] = []  # each admission's own arguments, in RESP
        self.waiters: list[asyncio.Future[list[Any]]] = []
        self.carried: list[_Background] = []
        self.command = b""  # as sent
        self.reloaded = False  # sent again after Redis had lost the script

    def add(self, caller: _Caller, own: tuple[str, ...]) -> asyncio.Future[list[Any]]:
        """Add one admission: a future of its 13 answer values."""
        index = self.indices.get(id(caller))
        if index is None:
            self.callers.append(caller)
            index = self.indices[id(caller)] = bulk((str(len(self.callers)),))
        self.parts.append(index + bulk(own))
        waiter: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return waiter


class _PendingSettle(NamedTuple):
    admission: Admission
    cost: int
    tokens: int
    release: bool

    @property
    def tenant(self) -> str:
        return self.admission.tenant


@dataclass(frozen=True)
class _PendingCancel:
    tenant: str
    request_id: str
    token: str


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
    the epoch) replaces Redis TIME: for tests only. ``round_trips`` counts round trips to Redis (a
    pipeline of many calls is one). ``max_pipelines`` bounds the calls or pipelines in flight.
    ``settle_delay`` (seconds) is how long a background settle waits for an admission to ride along
    with before it is sent alone; the settle of the only admitted request still open is sent at once.
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
        max_pipelines: int = 8,
        fast: Multiplexed | None = None,
        settle_delay: float = 0.002,
        send_at: int = 8,
    ) -> None:
        if reservation_ttl <= 0 or idempotency_window <= 0 or max_attempts < 1:
            raise ValueError("reservation_ttl and idempotency_window are > 0, max_attempts >= 1")
        if not 1 <= send_at <= MAX_BATCH:
            raise ValueError(f"send_at is 1-{MAX_BATCH} admissions")
        self.client = client
        # The pipelined connection EVALSHA goes through when set (resp.py says why); else redis-py.
        self.fast = fast
        self.prefix = prefix
        self.reservation_ttl = reservation_ttl
        self.idempotency_window = idempotency_window
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.clock = clock
        self.max_pipelines = max_pipelines
        self._senders = 0  # single calls and pipelines in flight
        self._waiting: list[tuple[tuple[str, ...], asyncio.Future[list[Any]]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._settling: dict[tuple[str, str], _Background] = {}
        self.round_trips = 0
        self.dropped_settles = 0  # settles lost because the retry queue was full
        self._sha: str | None = None
        self._queue: collections.deque[_PendingSettle] = collections.deque(maxlen=retry_queue_size)
        # Admissions whose answer was lost: released if they ran (they expire anyway if not).
        self._cancels: collections.deque[_PendingCancel] = collections.deque(
            maxlen=max(retry_queue_size // 10, 1)
        )
        self._drainer: asyncio.Task[None] | None = None
        # Background settles waiting for the next admission's call (or ``settle_delay``, or close).
        self.settle_delay = settle_delay
        self._carry: list[_Background] = []
        self._carry_timer: asyncio.TimerHandle | None = None
        # Admitted requests whose settle or release is not queued yet. At one request in flight the
        # next admission comes right after a settle and would carry it, paying the settle's script
        # time (measured: 51 of the 122 us a carrying call costs Redis) before its own answer.
        self._unsettled = 0
        self._callers: dict[tuple[str, str | None, float], _Caller] = {}
        self._batch: _Batch | None = None  # admissions of this turn of the event loop, not sent yet
        # A batch this full goes at once, not at the end of the turn: Redis works on it while this
        # process goes on with the rest of the turn (else the two take turns, see docs/budgets.md).
        self.send_at = send_at
        self._batch_head: bytes | None = None
        # Admission tokens only need to differ from every other admission's of the same id.
        self._token_prefix = secrets.token_hex(6)
        self._tokens = itertools.count()

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
        fast = Multiplexed(url, timeout=socket_timeout, connect_timeout=connect_timeout)
        return cls(Redis(connection_pool=pool), fast=fast, **options)

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
        if isinstance(error, ResponseError | ReplyError) and str(error).startswith(_UNAVAILABLE_REPLIES):
            return LedgerUnavailable(f"Redis cannot serve now ({str(error).split(' ', 1)[0]})")
        return error

    async def _run(self, *arguments: str) -> list[Any]:
        """Run the script once: at once when a connection is free, else in the next pipeline.

        Group commit: while ``max_pipelines`` calls or pipelines are in flight, further calls
        queue, and each sender that frees up takes up to ``MAX_BATCH`` of them in one pipeline
        (one round trip). At one request in flight nothing waits; under load the round trips per
        call fall below one.
        """
        if self._sha is None:
            await self.load()
        if self.fast is not None:  # one connection that pipelines by itself: nothing to queue
            return await self._single(arguments)
        if self._senders < self.max_pipelines and not self._waiting:
            self._senders += 1
            try:
                return await self._single(arguments)
            finally:
                self._senders -= 1
                self._kick()
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((arguments, future))
        self._kick()
        return await future

    def _kick(self) -> None:
        """Start pipelines for queued calls while fewer than ``max_pipelines`` are in flight."""
        while self._waiting and self._senders < self.max_pipelines:
            batch = self._waiting[:MAX_BATCH]
            del self._waiting[:MAX_BATCH]
            self._senders += 1
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[tuple[str, ...], asyncio.Future[list[Any]]]]) -> None:
        """One pipeline of queued calls; each caller gets its own answer or error."""
        try:
            replies = await self._pipeline([arguments for arguments, _ in batch])
        except BaseException as error:  # cancelled (closing) too: no caller may wait forever
            failure = self._translate(error) if isinstance(error, Exception) else LedgerUnavailable("closed")
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            if not isinstance(error, Exception):
                raise
        else:
            for (_, future), reply in zip(batch, replies, strict=True):
                if future.done():  # its caller went away
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(self._translate(reply))
                else:
                    future.set_result(list(reply))
        finally:
            self._senders -= 1
            self._kick()

    async def _pipeline(self, calls: list[tuple[str, ...]]) -> list[Any]:
        """EVALSHA each call in one pipeline; those Redis lost the script for run again after a load."""
        replies: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for _ in range(2):
            self.round_trips += 1
            pipe = self.client.pipeline(transaction=False)
            for index in pending:
                pipe.evalsha(self._sha, 0, *calls[index])  # type: ignore[arg-type]
            answers = await pipe.execute(raise_on_error=False)
            for index, answer in zip(pending, answers, strict=True):
                replies[index] = answer
            pending = [index for index in pending if isinstance(replies[index], NoScriptError)]
            if not pending:
                break
            await self.load()
        return replies

    async def _single(self, arguments: tuple[str, ...]) -> list[Any]:
        """One EVALSHA (reloading the script once if Redis lost it, e.g. after a restart)."""
        try:
            try:
                reply = await self._evalsha(arguments)
            except (NoScriptError, ReplyError) as error:
                if not str(error).startswith("NOSCRIPT"):
                    raise
                await self.load()
                reply = await self._evalsha(arguments)
        except Exception as error:
            raise self._translate(error) from error
        return list(reply)

    async def _evalsha(self, arguments: tuple[str, ...]) -> Any:
        assert self._sha is not None
        self.round_trips += 1
        if self.fast is None:
            return await self.client.evalsha(self._sha, 0, *arguments)
        return await self.fast.call("EVALSHA", self._sha, "0", *arguments)

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
        if not request_id or len(request_id) > MAX_REQUEST_ID:
            _check_name("request id", request_id, MAX_REQUEST_ID, colon=True)  # raises
        if max_cost < 0:
            raise ValueError("max_cost is a non-negative number of micro-units")
        caller = self._caller(
            tenant, key_id, limits, self.reservation_ttl if reservation_ttl is None else reservation_ttl
        )
        earlier = self._settling.get((tenant, request_id))
        if earlier is not None and not self._carries(tenant, request_id):
            # This id's previous attempt is still being settled from here, in a call already sent.
            await asyncio.wait([earlier.landing()])
        token = f"{self._token_prefix}{next(self._tokens)}"
        own: tuple[str, ...] = (request_id, str(int(max_cost)), token)
        try:
            if caller.shared and self.fast is not None and self._sha is not None:
                reply = await self._join_batch(caller, own)
            else:
                reply = await self._admit_alone(caller.arguments + own)
        except (LedgerUnavailable, asyncio.CancelledError):
            # The script may have run and reserved without our seeing the answer (a timeout, or the
            # caller cancelled): left alone, the id would be "in flight" until the reservation expires.
            self._cancels.append(_PendingCancel(tenant, request_id, token))
            self._start_draining()
            raise
        if reply[0] == b"ok":  # the common answer, read without the refusal's fields
            self._unsettled += 1
            attempt, reserved, charged, rpm, rpm_left, rpm_reset, tpm, tpm_left, tpm_reset = reply[4:13]
            return Admission(
                request_id,
                tenant,
                key_id,
                pricing_checksum,
                None,
                attempt,
                reserved if reserved > 0 else 0,
                charged if charged > 0 else 0,
                None,
                None,
                None,
                _rate(rpm, rpm_left, rpm_reset),
                _rate(tpm, tpm_left, tpm_reset),
            )
        verdict, scope, window = map(_text, reply[:3])
        numbers = list(map(int, reply[3:13]))
        if len(numbers) < 10:
            numbers += [-1] * (10 - len(numbers))
        wait, attempt, reserved, charged = numbers[:4]
        refusal = None if verdict == "ok" else Refusal(verdict)
        if refusal is None:
            self._unsettled += 1
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
            requests=_rate(*numbers[4:7]),
            tokens=_rate(*numbers[7:10]),
        )

    def _join_batch(self, caller: _Caller, own: tuple[str, ...]) -> asyncio.Future[list[Any]]:
        """Add the admission to this turn's batch (started here if none is): its answer's future.

        The settles waiting to ride along go with the batch, applied first.
        """
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch()
            asyncio.get_running_loop().call_soon(self._send_batch, batch)
        waiter = batch.add(caller, own)
        if self._carry:
            batch.carried += self._take_carry()
        if len(batch.waiters) >= self.send_at:
            self._send_batch(batch)
        return waiter

    def _send_batch(self, batch: _Batch) -> None:
        """One script call for the batch's admissions and carried settles; the reply is handed out
        in a callback, with no task per request."""
        if batch.command:  # sent already (it filled up)
            return
        if self._batch is batch:
            self._batch = None
        if self._carry:  # settles queued since the batch's last admission: not sent yet either
            batch.carried += self._take_carry()
        carried = batch.carried
        settles = self._carried_arguments(carried) if carried else ()
        head = self._batch_head  # the script's SHA-1 never changes, even when Redis reloads it
        if head is None:
            head = self._batch_head = bulk(("EVALSHA", self._sha or "", "0", "admits", self.prefix, ""))
        count = 8 + 17 * len(batch.callers) + 4 * len(batch.waiters) + len(settles)
        batch.command = b"".join(
            (
                b"*%d\r\n" % count,
                head,
                bulk((str(len(batch.callers)),)),
                *(caller.shared for caller in batch.callers),
                bulk((str(len(batch.waiters)),)),
                *batch.parts,
                bulk(settles) if settles else b"",
            )
        )
        self._send_batch_command(batch)

    def _send_batch_command(self, batch: _Batch) -> None:
        assert self.fast is not None
        self.round_trips += 1
        # Written now: at the end of the turn already, or filled up (then Redis works on it while
        # this process goes on with the turn's other requests).
        sent: asyncio.Future[Any] | None = self.fast.send_encoded(batch.command, at_once=True)
        if sent is None:  # no connection open yet (or any more): a task connects, then sends
            sent = asyncio.get_running_loop().create_task(self.fast.call_encoded(batch.command))
            self._sending.add(sent)
            sent.add_done_callback(self._sending.discard)
        sent.add_done_callback(functools.partial(self._batch_answered, batch))

    def _batch_answered(self, batch: _Batch, sent: asyncio.Future[Any]) -> None:
        """Hand each admission of the batch its 13 values, and the carried settles theirs."""
        if sent.cancelled():
            _fail_batch(batch, LedgerUnavailable("closed"))
            return
        failure = sent.exception()
        if failure is not None and not isinstance(failure, ReplyError):
            _fail_batch(batch, self._translate(failure) if isinstance(failure, Exception) else failure)
            return
        reply = sent.result() if failure is None else failure
        if isinstance(reply, ReplyError):
            if str(reply).startswith("NOSCRIPT") and not batch.reloaded:  # Redis restarted
                task = asyncio.get_running_loop().create_task(self._reload_and_resend(batch))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)
            else:
                _fail_batch(batch, self._translate(reply))
            return
        waiters = batch.waiters
        if not isinstance(reply, list) or len(reply) != 13 * len(waiters) + 4 * len(batch.carried):
            _fail_batch(batch, ReplyError("the ledger script's answer to a batch has the wrong length"))
            return
        for index, waiter in enumerate(waiters):
            if not waiter.done():  # its caller went away (it queued a cancel for its token)
                waiter.set_result(reply[13 * index : 13 * index + 13])
        if batch.carried:
            _answer(batch.carried, reply[13 * len(waiters) :])

    async def _reload_and_resend(self, batch: _Batch) -> None:
        """SCRIPT LOAD (Redis lost the script, e.g. restarted without it) and send the batch again."""
        try:
            await self.load()
        except BaseException as error:
            _fail_batch(batch, error if isinstance(error, Exception) else LedgerUnavailable("closed"))
            if not isinstance(error, Exception):
                raise
            return
        batch.reloaded = True
        self._send_batch_command(batch)

    async def _admit_alone(self, arguments: tuple[str, ...]) -> list[Any]:
        """One admission in a call of its own (ledger.lua's admit), carrying the waiting settles."""
        carried = self._take_carry()
        if carried:
            arguments += self._carried_arguments(carried)
        try:
            reply = await self._run(*arguments)
        except BaseException:
            _the_slow_way(carried)
            raise
        if carried:
            _answer(carried, reply[13:])
        return reply

    def _caller(self, tenant: str, key_id: str | None, limits: Limits, ttl: float) -> _Caller:
        """The arguments every admission of this caller shares (names checked once, not per request).

        Kept per (tenant, key, ttl) while ``limits`` is the same object: the budget stage reuses one
        per caller and policy version. Bounded: cleared when it grows past `MAX_CALLERS`.
        """
        found = self._callers.get((tenant, key_id, ttl))
        if found is not None and found.limits is limits and self.clock is None:
            return found
        _check_name("tenant", tenant)
        if key_id is not None:
            _check_name("key id", key_id)
        key_limits = limits.key if key_id is not None and limits.key is not None else NO_LIMITS
        arguments = (
            "admit",
            self.prefix,
            self._now(),
            tenant,
            key_id or "",
            str(int(ttl * MICROS)),
            str(int(self.idempotency_window * MICROS)),
            str(self.max_attempts),
            *limits.tenant.arguments(),
            *key_limits.arguments(),
        )
        if self.clock is not None:
            return _Caller(limits, arguments, b"")
        if len(self._callers) >= MAX_CALLERS:
            self._callers.clear()
        caller = self._callers[(tenant, key_id, ttl)] = _Caller(limits, arguments, bulk(arguments[3:]))
        return caller

    # Settling ------------------------------------------------------------------------------------
    def _settling_one(self) -> None:
        """An admitted request's settle or release is on its way: one fewer still open."""
        if self._unsettled:
            self._unsettled -= 1

    async def settle(self, admission: Admission, cost: int, tokens: int) -> CostRecord:
        """Charge ``cost`` (micro-units, from the same pricing as admission) and count ``tokens``.

        Settling an attempt twice changes nothing the second time. If Redis is unreachable the
        settle is queued and retried (outcome ``queued``); it never raises LedgerUnavailable.
        """
        self._settling_one()
        return await self._settle(_PendingSettle(admission, max(cost, 0), max(tokens, 0), release=False))

    async def release(self, admission: Admission) -> CostRecord:
        """Release a reservation without charging (the request was refused downstream)."""
        self._settling_one()
        return await self._settle(_PendingSettle(admission, 0, 0, release=True))

    def settle_soon(
        self, admission: Admission, cost: int, tokens: int, done: Callable[[CostRecord], None] | None = None
    ) -> None:
        """`settle` without waiting for Redis: the response need not wait for its own accounting.

        ``done`` gets the `CostRecord` when the settle has landed (or was queued). A new admission
        of the same (tenant, request id) in this process waits for it first, so a client retrying
        at once is not told its previous attempt is still in flight. `close` waits for these.
        """
        pending = _PendingSettle(admission, cost if cost > 0 else 0, tokens if tokens > 0 else 0, False)
        self._in_background(pending, done)

    def release_soon(self, admission: Admission, done: Callable[[CostRecord], None] | None = None) -> None:
        """`release` without waiting, like `settle_soon`."""
        self._in_background(_PendingSettle(admission, 0, 0, release=True), done)

    def _in_background(self, pending: _PendingSettle, done: Callable[[CostRecord], None] | None) -> None:
        """Queue the settle to ride along with the next admission's call (one script call per
        request), or to go alone after ``settle_delay``; its reply is handled in a callback, with no
        task per request. When that cannot be done, or fails, the settle goes the slow way
        (`_settle`: reload the script, retry, queue while Redis is away); settling twice is
        harmless, so one whose call timed out can."""
        admission = pending.admission
        if admission.refusal is not None:
            raise ValueError("only an admitted request can be settled or released")
        key = (admission.tenant, admission.request_id)
        background = self._settling[key] = _Background(self, pending, key, done)
        self._settling_one()
        if self.fast is None or self._sha is None:
            background.slow_way()
            return
        self._carry.append(background)
        if len(self._carry) >= MAX_CARRY or not self._unsettled:
            self._send_carry_now()
        elif self._carry_timer is None:
            self._carry_timer = asyncio.get_running_loop().call_later(self.settle_delay, self._send_carry)

    def _carries(self, tenant: str, request_id: str) -> bool:
        """True when a settle of this id waits to ride along (the next admission applies it first)."""
        return any(b.key == (tenant, request_id) for b in self._carry)

    def _take_carry(self) -> list[_Background]:
        carried, self._carry = self._carry, []
        return carried

    def _carried_arguments(self, carried: list[_Background]) -> tuple[str, ...]:
        """The script arguments that carry settles along with another call (ledger.lua's carried)."""
        arguments = [str(int(self.idempotency_window * MICROS))]
        for background in carried:
            pending = background.pending
            admission = pending.admission
            arguments += (
                admission.tenant,
                admission.request_id,
                str(admission.attempt),
                str(pending.cost),
                str(pending.tokens),
                "release" if pending.release else "settle",
            )
        return tuple(arguments)

    def _send_carry_now(self) -> None:
        if self._carry_timer is not None:
            self._carry_timer.cancel()
        self._send_carry()

    def _send_carry(self) -> None:
        """Send the waiting settles in one call of their own (no admission came to carry them)."""
        self._carry_timer = None
        carried = self._take_carry()
        if not carried:
            return
        sent = None
        if self.fast is not None and self._sha is not None:
            arguments = ("settles", self.prefix, self._now(), *self._carried_arguments(carried))
            sent = self.fast.send_now("EVALSHA", self._sha, "0", *arguments)
        if sent is None:
            _the_slow_way(carried)
            return
        self.round_trips += 1

        def replied(future: asyncio.Future[Any]) -> None:
            if (
                future.cancelled()
                or future.exception() is not None
                or isinstance(future.result(), ReplyError)
            ):
                _the_slow_way(carried)
            else:
                _answer(carried, future.result())

        sent.add_done_callback(replied)

    async def _settle(self, pending: _PendingSettle) -> CostRecord:
        if not pending.admission.admitted:
            raise ValueError("only an admitted request can be settled or released")
        try:
            return await self._settle_now(pending)
        except LedgerUnavailable:
            self._enqueue(pending)
            return _record(pending, "queued", 0, 0, 0)

    async def _settle_now(self, pending: _PendingSettle) -> CostRecord:
        return self._settled(pending, await self._run(*self._settle_arguments(pending)))

    def _settle_arguments(self, pending: _PendingSettle) -> tuple[str, ...]:
        admission = pending.admission
        return (
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

    def _settled(self, pending: _PendingSettle, reply: list[Any]) -> CostRecord:
        """The cost record for the script's answer to a settle (warning on what needs a look)."""
        admission = pending.admission
        outcome, charged, total, reserved = reply  # the amounts are Redis integers: ints already
        outcome = outcome.decode() if type(outcome) is bytes else str(outcome)
        if charged > reserved and reserved >= 0 and outcome == "settled":
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
        self._start_draining()

    def _start_draining(self) -> None:
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def settled(self) -> None:
        """Wait until every `settle_soon` / `release_soon` made so far has landed (or was queued)."""
        self._send_carry_now()
        while self._settling:
            landings = [each.landing() for each in self._settling.values()]
            await asyncio.gather(*landings, return_exceptions=True)

    @property
    def pending_settles(self) -> int:
        """Settles waiting in memory for Redis to come back."""
        return len(self._queue)

    @property
    def pending_cancels(self) -> int:
        """Admissions whose answer was lost, waiting to be released if they ran."""
        return len(self._cancels)

    async def _drain(self) -> None:
        """Retry queued settles oldest first, then cancels, backing off while Redis stays away."""
        first, longest = self.retry_backoff
        delay = first
        while self._queue or self._cancels:
            queue: collections.deque[Any] = self._queue if self._queue else self._cancels
            pending = queue[0]
            try:
                if isinstance(pending, _PendingSettle):
                    await self._settle_now(pending)
                else:
                    await self._run(
                        "cancel", self.prefix, self._now(), pending.tenant, pending.request_id, pending.token
                    )
            except LedgerUnavailable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)
                continue
            except Exception:  # one that Redis refuses for another reason would block the rest
                log.exception("dropping a queued ledger operation of tenant %s", pending.tenant)
            if queue and queue[0] is pending:
                queue.popleft()
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

    async def rates(self, tenant: str, key_id: str | None = None, limits: Limits | None = None) -> Rates:
        """Requests and tokens per minute left now, read without taking a slot or counting a token.

        Only the limits declared in ``limits`` are read (the ledger stores state, not limits).
        """
        _check_name("tenant", tenant)
        if key_id is not None:
            _check_name("key id", key_id)
        limits = limits or Limits()
        key_limits = limits.key if key_id is not None and limits.key is not None else NO_LIMITS
        reply = await self._run(
            "rates",
            self.prefix,
            self._now(),
            tenant,
            key_id or "",
            *limits.tenant.arguments()[3:],
            *key_limits.arguments()[3:],
        )
        numbers = [int(part) for part in reply]

        def scope(offset: int) -> ScopeRates:
            rpm_limit, burst, rpm_left, rpm_reset, tpm_limit, tpm_left, tpm_reset = numbers[
                offset : offset + 7
            ]
            return ScopeRates(
                requests=_use(rpm_limit, burst, rpm_left, rpm_reset),
                tokens=_use(tpm_limit, tpm_limit, tpm_left, tpm_reset),
            )

        return Rates(tenant=scope(0), key=scope(7) if key_id is not None else None)

    async def close(self, settle_within: float = 2.0) -> None:
        """Finish background settles (bounded), stop retrying (saying how many settles are lost) and
        close the connections."""
        self._send_carry_now()
        if self._settling:
            await asyncio.wait([each.landing() for each in self._settling.values()], timeout=settle_within)
        for task in list(self._sending):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for _, future in self._waiting:
            if not future.done():
                future.set_exception(LedgerUnavailable("closed"))
        self._waiting.clear()
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        if self._queue:
            log.error("%d queued settles are lost (their reservations expire uncharged)", len(self._queue))
        if self.fast is not None:
            await self.fast.close()
        await self.client.aclose()


def _rate(limit: int, remaining: int, reset: int) -> RateState | None:
    if limit < 0:
        return None
    return RateState(limit, remaining if remaining > 0 else 0, reset / MICROS if reset > 0 else 0.0)


def _use(limit: int, capacity: int, remaining: int, reset: int) -> RateUse | None:
    if limit < 0:
        return None
    return RateUse(
        limit=limit, capacity=capacity, remaining=max(remaining, 0), reset_seconds=max(reset, 0) / MICROS
    )


def _record(pending: _PendingSettle, outcome: Outcome, charged: int, total: int, reserved: int) -> CostRecord:
    admission, cost, tokens, _ = pending
    request_id, tenant, key_id, checksum, _, attempt = admission[:6]
    return CostRecord(
        request_id, tenant, key_id, attempt, outcome, cost, tokens, charged, total, reserved, checksum
    )


class _Background:
    """One settle sent without waiting: where it stands, and whom to tell when it has landed.

    It stays in the ledger's ``_settling`` until it has landed. Whoever must wait for that (a
    retry of its request id, `Ledger.settled`, `Ledger.close`) asks for `landing`: the future is
    made only then, not for every request.
    """

    __slots__ = ("done", "key", "landed", "ledger", "pending")

    def __init__(
        self,
        ledger: Ledger,
        pending: _PendingSettle,
        key: tuple[str, str],
        done: Callable[[CostRecord], None] | None,
    ) -> None:
        self.ledger = ledger
        self.pending = pending
        self.key = key
        self.landed: asyncio.Future[None] | None = None
        self.done = done

    def landing(self) -> asyncio.Future[None]:
        """A future resolved when this settle has landed (or was queued, or failed)."""
        if self.landed is None:
            self.landed = asyncio.get_running_loop().create_future()
        return self.landed

    def answered(self, reply: list[Any]) -> None:
        """The script's answer to this settle (carried along with another call)."""
        try:
            record = self.ledger._settled(self.pending, reply)
        except Exception as error:  # a reply the script never gives: say so, lose nothing else
            self.finish(None, error)
        else:
            self.finish(record)

    def slow_way(self) -> None:
        """Settle through `Ledger._settle`: reloads the script, queues while Redis is away."""
        task = asyncio.get_running_loop().create_task(self.ledger._settle(self.pending))
        task.add_done_callback(self._settled_slowly)

    def _settled_slowly(self, task: asyncio.Task[CostRecord]) -> None:
        if task.cancelled():
            self.finish(None)
        elif (error := task.exception()) is not None:
            self.finish(None, error)
        else:
            self.finish(task.result())

    def finish(self, record: CostRecord | None, error: BaseException | None = None) -> None:
        landed = self.landed
        if landed is not None and not landed.done():
            landed.set_result(None)
        settling = self.ledger._settling
        if settling.get(self.key) is self:
            del settling[self.key]
        if error is not None:
            log.error("a background settle failed", exc_info=error)
        elif record is not None and self.done is not None:
            self.done(record)


def _answer(carried: list[_Background], replies: list[Any]) -> None:
    """Hand each carried settle its four values of the script's answer."""
    if len(replies) != 4 * len(carried):  # never expected: settle them again rather than guess
        _the_slow_way(carried)
        return
    for index, background in enumerate(carried):
        background.answered(replies[4 * index : 4 * index + 4])


def _fail_batch(batch: _Batch, error: BaseException) -> None:
    """A batch whose call failed: every admission in it gets ``error``; its carried settles are sent
    again the slow way (settling twice is harmless)."""
    _the_slow_way(batch.carried)
    for waiter in batch.waiters:
        if not waiter.done():
            waiter.set_exception(error)


def _the_slow_way(carried: list[_Background]) -> None:
    """Carried settles whose call failed or was never answered: settle each again (idempotent)."""
    for background in carried:
        background.slow_way()
