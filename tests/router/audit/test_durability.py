"""Durability: a writer process SIGKILLed at a random moment loses no record it acknowledged.

writer_process.py prints a record's seq only after `AuditLog.append` returned. Three times over the
same folder, the test kills it after a random delay; each new process recovers the chain and goes
on. At the end a partial line is planted (what a power loss can leave; a SIGKILL cannot tear a
single write(2)) and the recovering open must set it aside. Every acknowledged record must be there,
and ``inferctl audit verify`` must pass.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

from inferflux.router.audit.log import AuditLog
from inferflux.router.audit.segments import segments
from tests.router.audit.conftest import Keys, Verify

WRITER = Path(__file__).with_name("writer_process.py")


def run_and_kill(directory: Path, keys: Keys, rng: random.Random) -> dict[int, str]:
    """Start a writer, SIGKILL it a random moment after its first acknowledgement; its acks."""
    process = subprocess.Popen(
        [sys.executable, str(WRITER), str(directory), str(keys.private)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    acks: dict[int, str] = {}
    first = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            seq, request_id = raw.decode().split()
            acks[int(seq)] = request_id
            first.set()

    reader = threading.Thread(target=drain)
    reader.start()
    assert first.wait(60), process.stderr.read().decode() if process.poll() is not None else "no ack in 60 s"
    time.sleep(rng.uniform(0.05, 1.0))
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    reader.join(30)
    assert process.returncode == -signal.SIGKILL
    return acks


def stored(chain_dir: Path) -> dict[int, dict]:
    found = {}
    for path in segments(chain_dir):
        for line in path.read_bytes().splitlines():
            entry = orjson.loads(line)
            found[entry["seq"]] = entry
    return found


async def test_every_acknowledged_record_survives_sigkill_and_the_chain_verifies(
    tmp_path: Path, keys: Keys, verify: Verify
) -> None:
    rng = random.Random(os.urandom(8))
    directory = tmp_path / "audit"
    acks: dict[int, str] = {}
    for _ in range(3):
        acks |= await asyncio.to_thread(run_and_kill, directory, keys, rng)
    chain = directory / "router-0"
    last = segments(chain)[-1]
    with open(last, "ab") as handle:  # noqa: ASYNC230 - a test's one small write
        handle.write(b'{"chain":"router-0","kind":"request","seq":')

    audit = AuditLog(directory, "router-0", keys.signer())
    aside = audit.open()
    assert aside is not None  # the planted partial line was set aside, not accepted
    await audit.close()

    records = stored(chain)
    assert len(acks) > 100
    missing = [
        seq for seq, request_id in acks.items() if records.get(seq, {}).get("request_id") != request_id
    ]
    assert missing == []
    result = verify(directory)
    assert result.returncode == 0, result.stderr
    assert len(segments(chain)) > 1
