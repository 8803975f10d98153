"""One replica's audit chain: append, group commit, checkpoints, segment rolling, torn-tail recovery.

`AuditLog.append` serialises a record, links it to the previous one and hands the line to the
kernel with one ``write(2)`` before it returns: from then on a SIGKILL of the process cannot lose it
(the page cache belongs to the kernel). A commit task fsyncs every ``commit_seconds`` when there is
something new, so one fsync covers every record of that interval (group commit); `durable` waits
for the fsync that covers a given seq, for callers that need power-loss durability.

Every ``checkpoint_records`` records, or ``checkpoint_seconds`` after the first unsigned one, the
head is signed into a `Checkpoint` line. Segments roll by size or age. One chain per replica (its
name, e.g. the pod name, is a folder), so replicas never write the same file.

Not thread-safe: one event loop owns a log (the router's).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import heapq
import itertools
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from inferflux.router.audit.records import (
    CHAIN_NAME,
    GENESIS,
    Body,
    Checkpoint,
    SetAside,
    canonical,
    entry_of,
    line_hash,
    signed_part,
)
from inferflux.router.audit.segments import fsync_dir, read_anchor, read_tail, segment_name, segments
from inferflux.router.audit.signing import Signer

log = logging.getLogger("inferflux.router.audit")
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


class AuditError(RuntimeError):
    """The audit log cannot be opened or written; the message says where."""


@dataclass(frozen=True)
class Options:
    """How often to fsync, sign and roll (docs/audit.md lists the matching settings)."""

    commit_seconds: float = 0.002
    checkpoint_records: int = 1000
    checkpoint_seconds: float = 10.0
    segment_bytes: int = 64 * 1024 * 1024
    segment_seconds: float = 3600.0


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AuditLog:
    """An append-only, hash-chained, signed log in ``directory/chain``."""

    def __init__(
        self,
        directory: Path,
        chain: str,
        signer: Signer,
        options: Options | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        if not re.fullmatch(CHAIN_NAME, chain):
            raise AuditError(f"audit chain name {chain!r} must be letters, digits, '.', '_' or '-'")
        self.chain = chain
        self.chain_dir = Path(directory) / chain
        self.signer = signer
        self.options = options or Options()
        self.clock = clock
        self.next_seq = 0
        self.head = GENESIS
        self.durable_seq = -1
        self._fd = -1
        self._segment: Path | None = None
        self._segment_size = 0
        self._segment_opened = 0.0
        self._unsynced: list[int] = []  # rolled-over descriptors still to fsync and close
        self._dir_dirty = False
        self._unsigned = 0
        self._first_unsigned_at = 0.0
        self._written = 0  # seq + 1 of the last line handed to the kernel
        self._wake = asyncio.Event()
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._tie = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    # Opening and recovery ----------------------------------------------------------------------
    def open(self) -> SetAside | None:
        """Find the chain's head, setting aside a torn tail; returns the set-aside record, if any.

        The set-aside is also appended to the chain, so the move is itself on the record.
        """
        self.chain_dir.mkdir(parents=True, exist_ok=True)
        aside = None
        files = segments(self.chain_dir)
        last_line: bytes | None = None
        if files:
            aside = self._set_aside_torn_tail(files[-1])
            for path in reversed(files):
                last_line = read_tail(path).last_line
                if last_line is not None:
                    break
        if last_line is not None:
            entry = orjson.loads(last_line)
            self.next_seq = int(entry["seq"]) + 1
            self.head = line_hash(last_line)
        else:
            anchor = read_anchor(self.chain_dir)
            if anchor is not None:
                self.next_seq, self.head = anchor.through_seq + 1, anchor.through_hash
        self._written = self.next_seq
        self.durable_seq = self.next_seq - 1
        self._open_segment(files[-1] if files else None)
        if aside is not None:
            self.append(aside)
        return aside

    def _set_aside_torn_tail(self, path: Path) -> SetAside | None:
        """Move everything after the last good line of ``path`` to a ``.torn-<ns>`` file beside it.

        A good line is complete (ends with a newline) and parses as one of this chain's records: a
        crash mid-write leaves a partial line, and a power loss can leave a line of garbage.
        """
        tail = read_tail(path)
        while tail.last_line is not None and not self._is_record(tail.last_line):
            tail = read_tail(path, tail.good_end - len(tail.last_line) - 1)
        if tail.good_end == tail.size:
            return None
        with open(path, "rb") as handle:
            handle.seek(tail.good_end)
            torn = handle.read()
        moved_to = path.with_name(f"{path.name}.torn-{time.time_ns()}")
        with open(moved_to, "wb") as handle:
            handle.write(torn)
            handle.flush()
            os.fsync(handle.fileno())
        with open(path, "r+b") as handle:
            handle.truncate(tail.good_end)
            os.fsync(handle.fileno())
        fsync_dir(self.chain_dir)
        log.warning("audit: set aside %d torn bytes at the end of %s as %s", len(torn), path, moved_to.name)
        return SetAside(
            time=self.clock(),
            segment=path.name,
            offset=tail.good_end,
            length=len(torn),
            sha256=hashlib.sha256(torn).hexdigest(),
            moved_to=moved_to.name,
        )

    def _is_record(self, line: bytes) -> bool:
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            return False
        return (
            isinstance(entry, dict) and entry.get("chain") == self.chain and isinstance(entry.get("seq"), int)
        )

    def _open_segment(self, path: Path | None) -> None:
        if path is None:
            path = self.chain_dir / segment_name(self.next_seq)
            self._dir_dirty = True
        try:
            self._fd = os.open(path, _FLAGS, 0o640)
        except OSError as error:
            raise AuditError(f"cannot open audit segment {path}: {error.strerror}") from None
        self._segment = path
        self._segment_size = os.fstat(self._fd).st_size
        self._segment_opened = time.monotonic()

    def _roll(self) -> None:
        self._unsynced.append(self._fd)
        self._open_segment(None)

    @property
    def failed(self) -> bool:
        """True once a write or fsync failed: the chain cannot go on in this process."""
        return self._failure is not None

    @property
    def segment(self) -> Path | None:
        """The segment being written (retention never touches it)."""
        return self._segment

    # Appending ---------------------------------------------------------------------------------
    def append(self, body: Body) -> int:
        """Write one record (one ``write(2)``, so a process crash cannot lose it); returns its seq."""
        if self._failure is not None:
            raise AuditError(f"the audit log failed earlier: {self._failure}")
        seq = self._write(entry_of(body, self.chain, self.next_seq, self.head))
        if not isinstance(body, Checkpoint):
            if self._unsigned == 0:
                self._first_unsigned_at = time.monotonic()
                if self._loop is not None:  # wake the commit task when this record is due a signature
                    self._loop.call_later(self.options.checkpoint_seconds, self._wake.set)
            self._unsigned += 1
            if self._unsigned >= self.options.checkpoint_records:
                self.checkpoint()
        return seq

    def checkpoint(self) -> int | None:
        """Sign the head now, unless nothing was written since the last checkpoint."""
        if self._unsigned == 0:
            return None
        body = Checkpoint(time=self.clock(), key_id=self.signer.key_id)
        entry = entry_of(body, self.chain, self.next_seq, self.head)
        entry["sig"] = self.signer.sign(signed_part(entry))
        self._unsigned = 0
        return self._write(entry)

    def _write(self, entry: dict[str, object]) -> int:
        options = self.options
        if self._segment_size >= options.segment_bytes or (
            self._segment_size and time.monotonic() - self._segment_opened >= options.segment_seconds
        ):
            self._roll()
        line = canonical(entry)
        data = line + b"\n"
        try:
            written = os.write(self._fd, data)
        except OSError as error:
            self._failure = error
            raise AuditError(f"cannot write the audit log: {error.strerror}") from None
        if written != len(data):  # a full disk: the partial line is set aside at the next start
            self._failure = OSError("short write")
            raise AuditError("short write to the audit log (disk full?)")
        seq = self.next_seq
        self.head = line_hash(line)
        self.next_seq = seq + 1
        self._written = self.next_seq
        self._segment_size += len(data)
        self._wake.set()
        return seq

    # Group commit ------------------------------------------------------------------------------
    async def durable(self, seq: int) -> None:
        """Return once an fsync covered ``seq`` (needs `start`)."""
        if seq <= self.durable_seq:
            return
        if self._failure is not None:
            raise AuditError(f"the audit log failed: {self._failure}")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (seq, next(self._tie), future))
        self._wake.set()
        await future

    async def flush(self) -> None:
        """Return once everything appended so far is fsynced."""
        await self.durable(self.next_seq - 1)

    def start(self) -> None:
        """Start the commit task (on the running loop)."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._commit_loop(), name="audit-commit")
            if self._unsigned:  # records appended before the start (a set-aside) are signed in time too
                self._loop.call_later(self.options.checkpoint_seconds, self._wake.set)

    async def _commit_loop(self) -> None:
        """Until `close`: wait for news, sign a head that waited long enough, then fsync in one go."""
        options = self.options
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            if self._unsigned and time.monotonic() - self._first_unsigned_at >= options.checkpoint_seconds:
                self.checkpoint()
            if self.durable_seq < self._written - 1:
                await asyncio.sleep(options.commit_seconds)  # let more records join this fsync
                await self._commit()

    async def _commit(self) -> None:
        """One fsync round (only the commit task runs it, or `close` once the task has ended)."""
        target = self._written - 1
        descriptors, self._unsynced = self._unsynced, []
        sync_dir, self._dir_dirty = self._dir_dirty, False
        try:
            await asyncio.to_thread(self._sync, [*descriptors, self._fd], sync_dir)
        except OSError as error:
            self._failure = error
            log.error("audit: fsync failed: %s", error.strerror)
            for _, _, future in self._waiters:
                if not future.done():
                    future.set_exception(AuditError(f"audit fsync failed: {error.strerror}"))
            self._waiters.clear()
            return
        finally:
            for descriptor in descriptors:
                os.close(descriptor)
        self.durable_seq = target
        while self._waiters and self._waiters[0][0] <= target:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)

    def _sync(self, descriptors: list[int], sync_dir: bool) -> None:
        for descriptor in descriptors:
            os.fsync(descriptor)
        if sync_dir:
            fsync_dir(self.chain_dir)

    async def close(self) -> None:
        """Sign the head, fsync everything and stop the commit task (a clean stop leaves a sealed chain)."""
        if self._fd < 0:
            return
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task  # it ends after its current round, never in the middle of an fsync
            self._task = None
        if self._failure is None:
            self.checkpoint()
            await self._commit()
        for descriptor in self._unsynced:
            os.close(descriptor)
        self._unsynced = []
        os.close(self._fd)
        self._fd = -1
