"""A process that appends audit records and acknowledges each one on stdout once `append` returned.

Run by test_durability.py, which SIGKILLs it at a random moment: ``python writer_process.py DIR KEY``.
Thirty-two tasks append concurrently, as a router's requests would, while the commit task fsyncs.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from inferflux.router.audit.log import AuditLog, Options, utc_now
from inferflux.router.audit.records import RequestRecord
from inferflux.router.audit.signing import Signer


async def main(directory: Path, key: Path) -> None:
    audit = AuditLog(
        directory, "router-0", Signer.from_file(key), Options(checkpoint_records=50, segment_bytes=20_000)
    )
    audit.open()
    audit.start()
    out = sys.stdout

    async def producer(worker: int) -> None:
        number = 0
        while True:
            number += 1
            record = RequestRecord(
                time=utc_now(),
                request_id=f"w{worker}-{number}",
                tenant="t",
                route="chat",
                status=200,
                latency_ms=1.0,
            )
            seq = audit.append(record)
            out.write(f"{seq} w{worker}-{number}\n")
            out.flush()
            await asyncio.sleep(0)

    await asyncio.gather(*(producer(worker) for worker in range(32)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
