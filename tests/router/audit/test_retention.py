"""Retention on a real chain: whole segments past every record's tenant window go, an anchor keeps
what remains verifiable, and a removed or forged anchor is caught."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson

from inferflux.router.audit.log import AuditLog, Options
from inferflux.router.audit.records import Pruned
from inferflux.router.audit.retention import prune
from inferflux.router.audit.segments import ANCHOR, read_anchor, segments, write_anchor
from inferflux.router.audit.signing import Signer
from tests.router.audit.conftest import T0, Keys, Verify, request

WINDOWS = {"short": dt.timedelta(days=30), "long": dt.timedelta(days=180)}
DEFAULT = dt.timedelta(days=90)


def window(tenant: str | None) -> dt.timedelta:
    return WINDOWS.get(tenant or "", DEFAULT)


def tenants_in(chain: Path) -> list[str]:
    return [
        orjson.loads(line).get("tenant", "")
        for path in segments(chain)
        for line in path.read_bytes().splitlines()
    ]


async def build(directory: Path, keys: Keys) -> AuditLog:
    """Day 0: 30 'short' records; day 1: one 'long' record amid 'short' ones; day 2: more 'short'."""
    audit = AuditLog(directory, "r", keys.signer(), Options(checkpoint_records=10, segment_bytes=3000))
    audit.open()
    audit.start()
    for day, tenant_of in (
        (0, lambda n: "short"),
        (1, lambda n: "long" if n == 5 else "short"),
        (2, lambda n: "short"),
    ):
        for number in range(30):
            audit.append(request(number, tenant_of(number), T0 + dt.timedelta(days=day)))
    return audit


async def test_expired_segments_go_and_the_rest_still_verifies(
    tmp_path: Path, keys: Keys, verify: Verify
) -> None:
    audit = await build(tmp_path, keys)
    before = segments(audit.chain_dir)
    signer = keys.signer()

    nothing = prune(audit.chain_dir, window, T0 + dt.timedelta(days=29), signer, audit.segment)
    assert nothing.removed == []
    assert read_anchor(audit.chain_dir) is None

    result = prune(audit.chain_dir, window, T0 + dt.timedelta(days=31, hours=1), signer, audit.segment)
    assert result.removed  # day-0 segments went...
    remaining = segments(audit.chain_dir)
    assert remaining == before[len(result.removed) :]
    assert "long" in tenants_in(audit.chain_dir)  # ...but not the segment with the 180-day record
    assert result.anchor is not None
    first = orjson.loads(remaining[0].read_bytes().splitlines()[0])
    assert first["seq"] == result.anchor.through_seq + 1
    assert first["prev"] == result.anchor.through_hash
    audit.append(
        Pruned(
            time=T0,
            through_seq=result.anchor.through_seq,
            through_hash=result.anchor.through_hash,
            segments=result.removed,
        )
    )
    await audit.close()
    outcome = verify(tmp_path)
    assert outcome.returncode == 0, outcome.stderr

    # 181 days on, everything but the newest segment (being written) has gone.
    later = prune(audit.chain_dir, window, T0 + dt.timedelta(days=181), signer, None)
    assert segments(audit.chain_dir) == [before[-1]]
    assert later.anchor is not None
    assert verify(tmp_path).returncode == 0


async def test_the_segment_being_written_is_never_pruned(tmp_path: Path, keys: Keys) -> None:
    audit = await build(tmp_path, keys)
    active = segments(audit.chain_dir)[0]
    result = prune(audit.chain_dir, window, T0 + dt.timedelta(days=400), keys.signer(), active)
    assert result.removed == []
    await audit.close()


async def test_a_removed_or_forged_anchor_is_caught(tmp_path: Path, keys: Keys, verify: Verify) -> None:
    audit = await build(tmp_path, keys)
    await audit.close()
    prune(audit.chain_dir, window, T0 + dt.timedelta(days=31, hours=1), keys.signer(), None)
    anchor = read_anchor(audit.chain_dir)
    assert anchor is not None

    (audit.chain_dir / ANCHOR).unlink()
    message = verify(tmp_path).stderr
    assert f"seq {anchor.through_seq + 1} where 0 was expected" in message

    forged = anchor.model_copy(update={"through_seq": anchor.through_seq - 1})
    forged.sig = Signer.from_file(keys.private).sign(forged.signed_bytes())[::-1]
    write_anchor(audit.chain_dir, forged)
    assert "anchor.json: signature does not verify" in verify(tmp_path).stderr


async def test_an_interrupted_prune_is_finished_and_verifies_meanwhile(
    tmp_path: Path, keys: Keys, verify: Verify
) -> None:
    """A crash after the anchor was written but before the segments went: verify skips them."""
    audit = await build(tmp_path, keys)
    await audit.close()
    before = segments(audit.chain_dir)
    saved = {path: path.read_bytes() for path in before}
    result = prune(audit.chain_dir, window, T0 + dt.timedelta(days=31, hours=1), keys.signer(), None)
    for name in result.removed:  # put the pruned segments back, as if the deletes never happened
        path = audit.chain_dir / name
        path.write_bytes(saved[path])
    assert verify(tmp_path).returncode == 0
    again = prune(audit.chain_dir, window, T0 + dt.timedelta(days=31, hours=1), keys.signer(), None)
    assert again.removed == result.removed
    assert verify(tmp_path).returncode == 0
