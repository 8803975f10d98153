"""Retention: remove whole segments whose every record is past its own tenant's window.

A segment holds many tenants' records, so it goes only when the last of them expires: a record can
outlive its tenant's window by up to the age span of its segment. Records that carry no tenant data
(checkpoints, set-asides, pruning records) never hold a segment back; a request or admin record
without a tenant uses the default window. Only a prefix of the chain is pruned (oldest first, never
the segment being written), so what remains is one contiguous chain.

Before deleting, the anchor (anchor.json: the seq and line hash of the last pruned record) is
signed and written durably; `verify_chain` then starts the chain from it. A crash between the two
leaves segments the anchor already covers, which verify skips and the next prune removes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from inferflux.router.audit.records import line_hash
from inferflux.router.audit.segments import (
    Anchor,
    first_seq,
    fsync_dir,
    read_anchor,
    read_tail,
    segments,
    write_anchor,
)
from inferflux.router.audit.signing import Signer

# Kinds that hold no tenant's data and so never keep a segment.
_NEUTRAL = frozenset({"checkpoint", "set_aside", "pruned"})

Window = Callable[[str | None], dt.timedelta]


@dataclass
class PruneResult:
    """What one pruning pass removed (empty when nothing was due)."""

    removed: list[str] = field(default_factory=list)
    anchor: Anchor | None = None


def expired(path: Path, window: Window, now: dt.datetime) -> bool:
    """True when every record in the segment is older than its tenant's window."""
    windows: dict[str | None, dt.timedelta] = {}
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                return False
            entry = orjson.loads(raw)
            if entry.get("kind") in _NEUTRAL:
                continue
            tenant = entry.get("tenant")
            limit = windows.get(tenant)
            if limit is None:
                limit = windows[tenant] = window(tenant)
            if dt.datetime.fromisoformat(entry["time"]) + limit > now:
                return False
    return True


def prune(
    chain_dir: Path, window: Window, now: dt.datetime, signer: Signer, active: Path | None
) -> PruneResult:
    """Remove the oldest segments that are wholly expired, never ``active`` nor the newest segment."""
    result = PruneResult()
    files = segments(chain_dir)
    previous = read_anchor(chain_dir)
    # Finish a pass a crash interrupted: segments the anchor already covers.
    while previous is not None and len(files) > 1 and first_seq(files[1]) <= previous.through_seq + 1:
        _remove(files.pop(0), result)
    due: list[Path] = []
    for path in files[:-1]:
        if path == active or not expired(path, window, now):
            break
        due.append(path)
    if not due:
        if result.removed:
            fsync_dir(chain_dir)
        return result
    last_line = read_tail(due[-1]).last_line
    if last_line is None:
        return result
    anchor = Anchor(
        chain=chain_dir.name,
        through_seq=int(orjson.loads(last_line)["seq"]),
        through_hash=line_hash(last_line),
        time=now,
        key_id=signer.key_id,
    )
    anchor.sig = signer.sign(anchor.signed_bytes())
    write_anchor(chain_dir, anchor)
    for path in due:
        _remove(path, result)
    fsync_dir(chain_dir)
    result.anchor = anchor
    return result


def _remove(path: Path, result: PruneResult) -> None:
    for torn in path.parent.glob(f"{path.name}.torn-*"):  # a set-aside tail goes with its segment
        torn.unlink()
    path.unlink()
    result.removed.append(path.name)
