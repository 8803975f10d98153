"""The on-disk layout of a chain: a folder of append-only segment files, and an optional anchor.

``<audit dir>/<chain>/`` holds ``<first seq, 20 digits>.ndjson`` segments, in seq order by name,
and ``anchor.json`` once retention has pruned the oldest segments. A torn tail found at start is
moved to ``<segment>.torn-<ns>`` beside its segment (not a segment: verify ignores it, the chain's
``set_aside`` record names it).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from inferflux.router.audit.records import canonical

SUFFIX = ".ndjson"
ANCHOR = "anchor.json"
_TAIL_BLOCK = 64 * 1024


def segment_name(first_seq: int) -> str:
    """The file name of a segment whose first record has ``first_seq``."""
    return f"{first_seq:020d}{SUFFIX}"


def segments(chain_dir: Path) -> list[Path]:
    """The chain's segment files, oldest first (files not named like a segment are not segments)."""
    return sorted(
        path
        for path in chain_dir.glob(f"*{SUFFIX}")
        if path.is_file() and path.name.removesuffix(SUFFIX).isdigit()
    )


def first_seq(segment: Path) -> int:
    """The seq a segment's name says its first record has."""
    return int(segment.name.removesuffix(SUFFIX))


def chains(root: Path) -> list[Path]:
    """The chain folders under ``root``, or ``root`` itself when it is one."""
    if segments(root) or (root / ANCHOR).exists():
        return [root]
    return sorted(
        path for path in root.iterdir() if path.is_dir() and (segments(path) or (path / ANCHOR).exists())
    )


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a created, renamed or removed file) durable."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Anchor(BaseModel):
    """Where a pruned chain now starts: the seq and line hash of the last pruned record, signed."""

    model_config = ConfigDict(extra="forbid")

    chain: str
    through_seq: int
    through_hash: str
    time: dt.datetime
    key_id: str
    sig: str = ""

    def signed_bytes(self) -> bytes:
        """What ``sig`` covers: the canonical anchor without ``sig``."""
        return canonical(self.model_dump(mode="json", exclude={"sig"}))


class AnchorError(ValueError):
    """anchor.json is unreadable or malformed."""


def read_anchor(chain_dir: Path) -> Anchor | None:
    """The chain's anchor, or None when nothing was pruned."""
    path = chain_dir / ANCHOR
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return Anchor.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError):
        raise AnchorError(f"{path}: not a valid anchor") from None


def write_anchor(chain_dir: Path, anchor: Anchor) -> None:
    """Replace anchor.json atomically and durably (write, fsync, rename, fsync the folder)."""
    temporary = chain_dir / f".{ANCHOR}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(canonical(anchor.model_dump(mode="json")) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, chain_dir / ANCHOR)
    fsync_dir(chain_dir)


@dataclass(frozen=True)
class Tail:
    """The end of a segment: where its last complete line ends, and that line (None: no complete line)."""

    good_end: int
    size: int
    last_line: bytes | None


def read_tail(path: Path, good_end: int | None = None) -> Tail:
    """The last complete line of ``path`` ending at or before ``good_end`` (default: the file's end).

    Reads backwards in blocks, so a long segment costs a few reads, not a scan.
    """
    size = path.stat().st_size
    end = size if good_end is None else good_end
    with open(path, "rb") as handle:
        data = b""
        position = end
        while position > 0:
            step = min(_TAIL_BLOCK, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
            last_newline = data.rfind(b"\n")
            if last_newline == -1:
                continue
            previous = data.rfind(b"\n", 0, last_newline)
            if previous != -1 or position == 0:
                return Tail(position + last_newline + 1, size, data[previous + 1 : last_newline])
    return Tail(0, size, None)
