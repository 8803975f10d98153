"""Reading records back out: one tenant's (or, for an administrator, every) record in a time range.

Lines are returned exactly as stored, so an exported record's hash is the one its successor names.
Every chain under the audit folder is read (replicas that share a volume are all included; a
replica's chain on its own volume is only visible to that replica). A segment last modified before
``since`` is skipped unread. A torn last line (a write in flight) is left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from inferflux.router.audit.segments import chains, segments

# Kinds that hold chain bookkeeping, not any tenant's data: only a caller allowed every tenant sees them.
_BOOKKEEPING = frozenset({"checkpoint", "set_aside", "pruned"})


@dataclass(frozen=True)
class Query:
    """What to export: ``tenant`` None means every record, bookkeeping included (administrators only)."""

    tenant: str | None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def export(root: Path, query: Query) -> Iterator[bytes]:
    """The matching lines, each ending with a newline, chain by chain in seq order."""
    if not root.is_dir():
        return
    since_epoch = query.since.timestamp() if query.since is not None else None
    for chain_dir in chains(root):
        for path in segments(chain_dir):
            try:
                if since_epoch is not None and path.stat().st_mtime < since_epoch:
                    continue
                handle = open(path, "rb")  # noqa: SIM115 - closed below; pruning may remove it meanwhile
            except FileNotFoundError:
                continue
            with handle:
                for raw in handle:
                    if raw.endswith(b"\n") and _matches(raw, query):
                        yield raw


def _matches(raw: bytes, query: Query) -> bool:
    entry = orjson.loads(raw)
    if query.tenant is not None and (
        entry.get("tenant") != query.tenant or entry.get("kind") in _BOOKKEEPING
    ):
        return False
    if query.since is None and query.until is None:
        return True
    when = dt.datetime.fromisoformat(entry["time"])
    return (query.since is None or when >= query.since) and (query.until is None or when < query.until)
