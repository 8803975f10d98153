"""The writer on real files: links, checkpoints, group commit, rolling, reopening, torn tails."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from pathlib import Path

import orjson
import pytest

from inferflux.router.audit.log import AuditError, AuditLog, Options
from inferflux.router.audit.records import GENESIS, line_hash, signed_part
from inferflux.router.audit.segments import segment_name, segments
from inferflux.router.audit.signing import SignatureChecker
from inferflux.router.audit.verify import verify_chain
from tests.router.audit.conftest import Keys, request, write_chain


def entries(chain_dir: Path) -> list[tuple[bytes, dict]]:
    found = []
    for path in segments(chain_dir):
        for line in path.read_bytes().splitlines():
            found.append((line, orjson.loads(line)))
    return found


def append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


async def wait_until(condition, within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_records_link_to_their_predecessor_and_checkpoints_sign_the_head(
    tmp_path: Path, keys: Keys
) -> None:
    chain = await write_chain(tmp_path, keys, 25, Options(checkpoint_records=10))
    found = entries(chain)
    assert [entry["seq"] for _, entry in found] == list(range(len(found)))
    assert found[0][1]["prev"] == GENESIS
    for (line, _), (_, entry) in itertools.pairwise(found):
        assert entry["prev"] == line_hash(line)
    kinds = [entry["kind"] for _, entry in found]
    # A checkpoint after every 10 records, and one more at close() for the last 5.
    assert [seq for seq, kind in enumerate(kinds) if kind == "checkpoint"] == [10, 21, 27]
    checker = SignatureChecker.from_file(keys.public)
    for _, entry in found:
        if entry["kind"] == "checkpoint":
            assert checker.valid(signed_part(entry), entry["sig"])
    assert all(line == orjson.dumps(entry, option=orjson.OPT_SORT_KEYS) for line, entry in found)


async def test_the_head_is_signed_after_checkpoint_seconds_without_more_records(
    tmp_path: Path, keys: Keys
) -> None:
    audit = AuditLog(tmp_path, "r", keys.signer(), Options(checkpoint_records=1000, checkpoint_seconds=0.05))
    audit.open()
    audit.start()
    audit.append(request(1))
    await wait_until(lambda: any(entry["kind"] == "checkpoint" for _, entry in entries(audit.chain_dir)))
    await audit.close()
    assert verify_chain(audit.chain_dir, SignatureChecker.from_file(keys.public)).problem is None


async def test_a_record_appended_before_start_is_signed_in_time_too(tmp_path: Path, keys: Keys) -> None:
    audit = AuditLog(tmp_path, "r", keys.signer(), Options(checkpoint_records=1000, checkpoint_seconds=0.05))
    audit.open()
    audit.append(request(1))  # as the set-aside record of a recovering open is
    audit.start()
    await wait_until(lambda: any(entry["kind"] == "checkpoint" for _, entry in entries(audit.chain_dir)))
    await audit.close()


async def test_durable_waits_for_an_fsync_that_covers_the_seq(tmp_path: Path, keys: Keys) -> None:
    audit = AuditLog(tmp_path, "r", keys.signer(), Options(commit_seconds=0.001))
    audit.open()
    audit.start()

    async def one(number: int) -> int:
        seq = audit.append(request(number))
        await audit.durable(seq)
        assert audit.durable_seq >= seq
        return seq

    seqs = await asyncio.gather(*(one(number) for number in range(200)))
    assert sorted(seqs) == list(range(200))
    await audit.flush()
    assert audit.durable_seq == audit.next_seq - 1
    await audit.close()


async def test_segments_roll_by_size_and_are_named_by_their_first_seq(tmp_path: Path, keys: Keys) -> None:
    chain = await write_chain(tmp_path, keys, 40, Options(checkpoint_records=10, segment_bytes=2000))
    files = segments(chain)
    assert len(files) > 3
    for path in files:
        first = orjson.loads(path.read_bytes().splitlines()[0])
        assert path.name == segment_name(first["seq"])
        assert path.stat().st_size < 2000 + 1000  # rolled once past the limit


async def test_reopening_continues_the_chain(tmp_path: Path, keys: Keys) -> None:
    await write_chain(tmp_path, keys, 5)
    chain = await write_chain(tmp_path, keys, 5)
    found = entries(chain)
    assert [entry["seq"] for _, entry in found] == list(range(12))  # 5 + checkpoint, twice
    assert verify_chain(chain, SignatureChecker.from_file(keys.public)).problem is None


async def test_a_torn_tail_is_set_aside_recorded_and_the_chain_continues(tmp_path: Path, keys: Keys) -> None:
    chain = await write_chain(tmp_path, keys, 5)
    segment = segments(chain)[-1]
    torn = b'{"chain":"router-0","kind":"request","seq":6,"prev":"ab'
    append_bytes(segment, torn)
    assert "torn last line" in str(verify_chain(chain).problem)  # never accepted as it is

    audit = AuditLog(tmp_path, "router-0", keys.signer())
    aside = audit.open()
    assert aside is not None
    assert aside.length == len(torn)
    assert aside.sha256 == hashlib.sha256(torn).hexdigest()
    assert (chain / aside.moved_to).read_bytes() == torn
    audit.start()
    audit.append(request(99))
    await audit.close()

    found = entries(chain)
    assert torn not in segment.read_bytes()
    assert [entry["kind"] for _, entry in found][-3:] == ["set_aside", "request", "checkpoint"]
    assert found[-3][1]["seq"] == 6  # the torn record's seq is reused: it was never part of the chain
    report = verify_chain(chain, SignatureChecker.from_file(keys.public))
    assert report.problem is None


async def test_a_complete_line_of_garbage_at_the_end_is_set_aside_too(tmp_path: Path, keys: Keys) -> None:
    chain = await write_chain(tmp_path, keys, 5)
    segment = segments(chain)[-1]
    append_bytes(segment, b"\x00" * 40 + b"\n")  # what a power loss can leave in a file's last block
    audit = AuditLog(tmp_path, "router-0", keys.signer())
    aside = audit.open()
    assert aside is not None
    assert aside.length == 41
    await audit.close()
    assert verify_chain(chain, SignatureChecker.from_file(keys.public)).problem is None


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden"])
def test_a_bad_chain_name_is_refused(tmp_path: Path, keys: Keys, name: str) -> None:
    with pytest.raises(AuditError, match="chain name"):
        AuditLog(tmp_path, name, keys.signer())
