"""Tamper tests: each kind of edit to a real chain on disk is caught by ``inferctl audit verify``
(a subprocess), which names the segment file, the line and the seq; an untouched chain verifies."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from inferflux.router.audit import signing
from inferflux.router.audit.log import Options
from inferflux.router.audit.segments import segments
from tests.router.audit.conftest import Keys, Verify, inferctl, write_chain

SMALL_SEGMENTS = Options(checkpoint_records=10, segment_bytes=4000)


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def broken(result, *fragments: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for fragment in fragments:
        assert fragment in message, message
    return message


async def test_an_untouched_chain_verifies(tmp_path: Path, keys: Keys, verify: Verify) -> None:
    chain = await write_chain(tmp_path / "audit", keys, 60, SMALL_SEGMENTS)
    assert len(segments(chain)) > 2  # the chain spans several segments
    result = verify(tmp_path / "audit")
    assert result.returncode == 0, result.stderr
    assert "intact: chain router-0: " in result.stdout
    assert "signatures checked" in result.stdout
    assert "0 records after it" in result.stdout  # close() sealed the head


async def test_an_edited_byte_is_named(tmp_path: Path, keys: Keys, verify: Verify) -> None:
    chain = await write_chain(tmp_path / "audit", keys, 30)
    segment = segments(chain)[0]
    content = lines(segment)
    content[4] = content[4].replace(b'"status":200', b'"status":500')
    segment.write_bytes(b"".join(content))
    broken(verify(chain), f"router-0/{segment.name}:6:", "seq 5", "prev does not match", "seq 4 edited")


async def test_an_edit_that_breaks_the_json_is_named(tmp_path: Path, keys: Keys, verify: Verify) -> None:
    chain = await write_chain(tmp_path / "audit", keys, 30)
    segment = segments(chain)[0]
    data = bytearray(segment.read_bytes())
    data[len(lines(segment)[0]) + 1] ^= 0xFF  # line 2, just after its opening brace
    segment.write_bytes(bytes(data))
    broken(verify(chain), f"{segment.name}:2:", "seq 1 expected", "not a JSON record")


async def test_a_deleted_record_is_named(tmp_path: Path, keys: Keys, verify: Verify) -> None:
    chain = await write_chain(tmp_path / "audit", keys, 30)
    segment = segments(chain)[0]
    content = lines(segment)
    del content[7]
    segment.write_bytes(b"".join(content))
    broken(verify(chain), f"{segment.name}:8:", "seq 8 where 7 was expected")


async def test_two_reordered_records_are_named(tmp_path: Path, keys: Keys, verify: Verify) -> None:
    chain = await write_chain(tmp_path / "audit", keys, 30)
    segment = segments(chain)[0]
    content = lines(segment)
    content[3], content[4] = content[4], content[3]
    segment.write_bytes(b"".join(content))
    broken(verify(chain), f"{segment.name}:4:", "seq 4 where 3 was expected")


async def test_a_truncated_tail_is_named(tmp_path: Path, keys: Keys, verify: Verify) -> None:
    chain = await write_chain(tmp_path / "audit", keys, 30)
    segment = segments(chain)[-1]
    count = len(lines(segment))
    os.truncate(segment, segment.stat().st_size - 20)
    broken(verify(chain), f"{segment.name}:{count}:", "torn last line")


async def test_a_replaced_segment_is_named(tmp_path: Path, keys: Keys, verify: Verify) -> None:
    chain = await write_chain(tmp_path / "audit", keys, 60, SMALL_SEGMENTS)
    # Another replica's chain of the same shape: same names, same seqs, other contents.
    other = await write_chain(tmp_path / "other", keys, 60, SMALL_SEGMENTS, tenant="team-b")
    victim = segments(chain)[1]
    shutil.copy(other / victim.name, victim)
    broken(verify(chain), f"router-0/{victim.name}:1:", "prev does not match")


async def test_a_rewritten_and_resigned_tail_is_caught_by_the_signature(
    tmp_path: Path, keys: Keys, verify: Verify
) -> None:
    """An attacker who rewrites the newest segment consistently still cannot sign with our key."""
    chain = await write_chain(tmp_path / "audit", keys, 60, SMALL_SEGMENTS)
    forger = tmp_path / "forger"
    forger.mkdir()
    forged_keys = Keys(forger / "k.pem", forger / "k.pub")
    signing.generate(forged_keys.private, forged_keys.public)
    forged = await write_chain(tmp_path / "forged", forged_keys, 60, SMALL_SEGMENTS)
    for path in segments(chain):
        path.unlink()
    for path in segments(forged):
        shutil.copy(path, chain / path.name)
    broken(verify(chain), "router-0/00000000000000000009.ndjson:2: seq 10: checkpoint signed by key")
    # Without the public key the forgery cannot be told apart, and the summary says so.
    unchecked = inferctl("audit", "verify", str(chain))
    assert unchecked.returncode == 0
    assert "signatures NOT checked" in unchecked.stdout


async def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, keys: Keys) -> None:
    missing = inferctl("audit", "verify", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"inferctl: error: {tmp_path / 'nowhere'}: not a folder"
    (tmp_path / "empty").mkdir()
    assert inferctl("audit", "verify", str(tmp_path / "empty")).returncode == 2
    await write_chain(tmp_path / "audit", keys, 3)
    bad_key = tmp_path / "bad.pub"
    bad_key.write_text("not a key")
    result = inferctl("audit", "verify", str(tmp_path / "audit"), "--public-key", str(bad_key))
    assert result.returncode == 2
    assert "not a PEM public key" in result.stderr
    assert "Traceback" not in result.stderr


def test_keygen_writes_a_private_key_only_once(tmp_path: Path) -> None:
    private, public = tmp_path / "k.pem", tmp_path / "k.pub"
    first = inferctl("audit", "keygen", "--private", str(private), "--public", str(public))
    assert first.returncode == 0, first.stderr
    assert private.stat().st_mode & 0o777 == 0o600
    signing.SignatureChecker.from_file(public)
    again = inferctl("audit", "keygen", "--private", str(private), "--public", str(public))
    assert again.returncode == 2
    assert "not overwriting" in again.stderr
