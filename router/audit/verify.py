"""Checking a chain: every link, every seq, every checkpoint signature, the pruning anchor.

`verify_chain` reads a chain folder front to back and stops at the first problem, naming the segment
file, the line number and the seq. It detects an edited byte (the next record's ``prev`` no longer
matches, or the line no longer parses), a removed or reordered record (a seq out of order), a torn
or truncated last line, a replaced segment (a broken link or a bad signature), a checkpoint whose
signature does not verify, and a chain that does not start where the anchor says.

What a hash chain cannot show: whole records cut from the end after the last checkpoint, or an edit
to the very last record, leave a shorter chain that is still consistent. The report says how many
records follow the last checkpoint; a clean stop of the router signs the head, so a sealed chain
ends with a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from inferflux.router.audit.records import GENESIS, line_hash, signed_part
from inferflux.router.audit.segments import AnchorError, first_seq, read_anchor, segment_name, segments
from inferflux.router.audit.signing import SignatureChecker


@dataclass
class Report:
    """The outcome for one chain: ``problem`` is None when it is intact."""

    chain: str
    records: int = 0
    checkpoints: int = 0
    last_checkpoint_seq: int | None = None
    last_seq: int | None = None
    signatures_checked: bool = False
    problem: str | None = None

    @property
    def unsigned_tail(self) -> int:
        """Records after the last checkpoint (not protected against truncation)."""
        if self.last_seq is None:
            return 0
        return self.last_seq - (self.last_checkpoint_seq if self.last_checkpoint_seq is not None else -1)


class _Broken(Exception):
    pass


def verify_chain(chain_dir: Path, checker: SignatureChecker | None = None) -> Report:
    """Verify one chain folder; stops at the first problem."""
    report = Report(chain=chain_dir.name, signatures_checked=checker is not None)
    try:
        _verify(chain_dir, checker, report)
    except _Broken as problem:
        report.problem = str(problem)
    return report


def _verify(chain_dir: Path, checker: SignatureChecker | None, report: Report) -> None:
    try:
        anchor = read_anchor(chain_dir)
    except AnchorError as error:
        raise _Broken(str(error)) from None
    expected_seq, expected_prev = 0, GENESIS
    if anchor is not None:
        if checker is not None and (
            anchor.key_id != checker.key_id or not checker.valid(anchor.signed_bytes(), anchor.sig)
        ):
            raise _Broken(
                f"{chain_dir.name}/anchor.json: signature does not verify under the given public key"
            )
        if anchor.chain != chain_dir.name:
            raise _Broken(f"{chain_dir.name}/anchor.json: names chain {anchor.chain!r}")
        expected_seq, expected_prev = anchor.through_seq + 1, anchor.through_hash
    files = segments(chain_dir)
    if anchor is not None:
        files = _after_anchor(files, anchor.through_seq)
    if not files:
        raise _Broken(f"{chain_dir.name}: no segments")
    for index, path in enumerate(files):
        last = index == len(files) - 1
        expected_seq, expected_prev = _verify_segment(
            path, chain_dir.name, expected_seq, expected_prev, checker, report, last
        )


def _after_anchor(files: list[Path], through_seq: int) -> list[Path]:
    """Drop leading segments wholly covered by the anchor (pruning removes them after writing it)."""
    while len(files) > 1 and first_seq(files[1]) <= through_seq + 1:
        files = files[1:]
    return files


def _verify_segment(
    path: Path,
    chain: str,
    expected_seq: int,
    expected_prev: str,
    checker: SignatureChecker | None,
    report: Report,
    last_segment: bool,
) -> tuple[int, str]:
    where = f"{chain}/{path.name}"
    with open(path, "rb") as handle:
        number = 0
        for number, raw in enumerate(handle, 1):
            if not raw.endswith(b"\n"):
                raise _Broken(f"{where}:{number}: torn last line ({len(raw)} bytes without a newline)")
            line = raw[:-1]
            entry = _parse(line, where, number, expected_seq)
            seq = entry.get("seq")
            if entry.get("chain") != chain:
                raise _Broken(
                    f"{where}:{number}: seq {seq}: names chain {entry.get('chain')!r}, not {chain!r}"
                )
            if seq != expected_seq:
                raise _Broken(
                    f"{where}:{number}: seq {seq} where {expected_seq} was expected "
                    "(a record removed, reordered or inserted)"
                )
            if number == 1 and path.name != segment_name(expected_seq):
                raise _Broken(f"{where}:1: seq {seq}: the segment is named for another first seq (replaced?)")
            if entry.get("prev") != expected_prev:
                raise _Broken(
                    f"{where}:{number}: seq {seq}: prev does not match the hash of the record before it "
                    f"(seq {expected_seq - 1} edited, or this link altered)"
                )
            if entry.get("kind") == "checkpoint":
                _check_signature(entry, checker, where, number)
                report.checkpoints += 1
                report.last_checkpoint_seq = seq
            report.records += 1
            report.last_seq = seq
            expected_seq, expected_prev = seq + 1, line_hash(line)
        if number == 0 and not last_segment:
            raise _Broken(f"{where}: empty segment in the middle of the chain")
    return expected_seq, expected_prev


def _parse(line: bytes, where: str, number: int, expected_seq: int) -> dict[str, Any]:
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        entry = None
    if not isinstance(entry, dict):
        raise _Broken(
            f"{where}:{number}: seq {expected_seq} expected: the line is not a JSON record (edited?)"
        )
    return entry


def _check_signature(
    entry: dict[str, Any], checker: SignatureChecker | None, where: str, number: int
) -> None:
    if checker is None:
        return
    if entry.get("key_id") != checker.key_id:
        raise _Broken(
            f"{where}:{number}: seq {entry.get('seq')}: checkpoint signed by key {entry.get('key_id')!r}, "
            f"not the given public key ({checker.key_id})"
        )
    if not checker.valid(signed_part(entry), str(entry.get("sig", ""))):
        raise _Broken(f"{where}:{number}: seq {entry.get('seq')}: checkpoint signature does not verify")
