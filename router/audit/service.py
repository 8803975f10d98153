"""The audit subsystem of one router process: its log, its prompt hasher and its retention loop.

Built from settings (`Audit.from_settings`: every file is read up front, so a bad key or secret
stops the process with one line), started on the event loop, and closed last, which signs and
fsyncs the head.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

from inferflux.crds.audit import DEFAULT_RETENTION
from inferflux.router.audit.log import AuditError, AuditLog, Options, utc_now
from inferflux.router.audit.prompt_hash import PromptHasher
from inferflux.router.audit.records import Pruned
from inferflux.router.audit.retention import PruneResult, Window, prune
from inferflux.router.audit.signing import KeyFileError, Signer
from inferflux.router.audit.stage import AuditStage, Redactor
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.settings import Settings

log = logging.getLogger("inferflux.router.audit")


class AuditConfigError(ValueError):
    """The audit settings cannot work; the message is one line naming the setting."""


def retention_window(holder: PolicyHolder) -> Window:
    """Each tenant's window from the policy it has now; unknown tenants and none: the default."""

    def window(tenant: str | None) -> dt.timedelta:
        policy = holder.current.tenants.get(tenant) if tenant else None
        audit = policy.audit if policy is not None else None
        days = int(audit.retention_days) if audit is not None else int(DEFAULT_RETENTION)
        return dt.timedelta(days=days)

    return window


@dataclass
class Audit:
    """A replica's audit log, the prompt hasher, and where the chains live (for the export)."""

    directory: Path
    log: AuditLog
    hasher: PromptHasher
    prune_seconds: float
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings) -> Audit | None:
        """The audit subsystem the settings describe (None when ``INFERFLUX_AUDIT_DIR`` is unset)."""
        if not settings.audit_dir:
            return None
        if not settings.audit_signing_key_file or not settings.audit_secret_file:
            raise AuditConfigError(
                "INFERFLUX_AUDIT_DIR is set, so INFERFLUX_AUDIT_SIGNING_KEY_FILE (inferctl audit keygen) and "
                "INFERFLUX_AUDIT_SECRET_FILE (at least 32 bytes) must be set too"
            )
        try:
            signer = Signer.from_file(settings.audit_signing_key_file)
        except KeyFileError as error:
            raise AuditConfigError(f"INFERFLUX_AUDIT_SIGNING_KEY_FILE: {error}") from None
        try:
            hasher = PromptHasher.from_file(settings.audit_secret_file)
        except OSError as error:
            raise AuditConfigError(f"INFERFLUX_AUDIT_SECRET_FILE: cannot read: {error.strerror}") from None
        except ValueError as error:
            raise AuditConfigError(f"INFERFLUX_AUDIT_SECRET_FILE: {error}") from None
        options = Options(
            commit_seconds=settings.audit_commit_seconds,
            checkpoint_records=settings.audit_checkpoint_records,
            checkpoint_seconds=settings.audit_checkpoint_seconds,
            segment_bytes=settings.audit_segment_bytes,
            segment_seconds=settings.audit_segment_seconds,
        )
        directory = Path(settings.audit_dir)
        try:
            audit_log = AuditLog(directory, settings.audit_chain or socket.gethostname(), signer, options)
            audit_log.open()
        except AuditError as error:
            raise AuditConfigError(str(error)) from None
        except OSError as error:
            raise AuditConfigError(f"INFERFLUX_AUDIT_DIR: {directory}: {error.strerror}") from None
        return cls(directory, audit_log, hasher, settings.audit_prune_seconds)

    def stage(self, holder: PolicyHolder, redact: Redactor | None = None) -> AuditStage:
        """The pipeline stage writing request records; ``redact`` is the PII filter's text redaction
        (without it no prompt text is recorded, whatever a tenant's policy says)."""
        return AuditStage(self.log, self.hasher, holder, redact)

    def start(self, holder: PolicyHolder) -> None:
        """Start group commit and the retention loop on the running loop."""
        self.log.start()
        self._tasks.append(asyncio.ensure_future(self._retain(holder)))

    async def prune_now(self, holder: PolicyHolder) -> PruneResult:
        """One retention pass (in a thread: it reads whole segments); records what it removed."""
        result = await asyncio.to_thread(
            prune, self.log.chain_dir, retention_window(holder), utc_now(), self.log.signer, self.log.segment
        )
        if result.anchor is not None:
            self.log.append(
                Pruned(
                    time=utc_now(),
                    through_seq=result.anchor.through_seq,
                    through_hash=result.anchor.through_hash,
                    segments=result.removed,
                )
            )
            log.info(
                "audit: pruned %d segments through seq %d", len(result.removed), result.anchor.through_seq
            )
        return result

    async def _retain(self, holder: PolicyHolder) -> None:
        while True:
            await asyncio.sleep(self.prune_seconds)
            try:
                await self.prune_now(holder)
            except (OSError, AuditError, ValueError) as error:  # retry next round; never stop serving
                log.error("audit: retention pass failed: %s", error)

    async def close(self) -> None:
        """Stop retention, then sign and fsync the head."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.log.close()
