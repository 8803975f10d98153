"""Audit log throughput on one core: group commit against fsync per record, side by side (`make bench-audit`).

Each row appends realistic request records (a pydantic model built per record, canonical JSON,
SHA-256 link, one write(2); a signed checkpoint every 1000) to a fresh chain in a temporary folder
on the same file system, pinned to one CPU:

- group commit: records are appended as a router would (``append`` returns after write(2)); the
  commit task fsyncs every 2 ms; the clock stops when a final flush has made everything durable;
- group commit, each durable: 256 concurrent producers each await the fsync covering their record;
- fsync per record: one producer awaits the fsync of each record before the next (commit interval 0).

Rounds are interleaved so that noise from other work on the machine hits every row alike; the
median round is reported, both as records per wall-clock second and as records per CPU-second of
the process (its threads included), because these machines are shared and a busy neighbour halves
the wall-clock figure. Acceptance: group commit >= 20,000 records per CPU-second on one core.

    python tests/bench/bench_audit.py [--records N] [--rounds R] [--dir PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferflux.router.audit.log import AuditLog, Options, utc_now
from inferflux.router.audit.records import RequestRecord, Verdict
from inferflux.router.audit.signing import Signer
from inferflux.router.audit.verify import verify_chain

TARGET = 20_000
SIGNER = Signer(Ed25519PrivateKey.generate())


def record(number: int) -> RequestRecord:
    return RequestRecord(
        time=utc_now(),
        request_id=f"{number:032x}",
        tenant="team-a",
        key_id="abcdefghijklmnop",
        route="chat.completions",
        model="smollm2-135m",
        upstream="10.0.3.17:8080",
        status=200,
        prompt_tokens=812,
        completion_tokens=97,
        cost_micros=420,
        latency_ms=412.7,
        verdicts=[Verdict(direction="input", check="pii", subject="email", action="redact", count=1)],
        prompt_hmac="5f" * 32,
    )


async def group_commit(directory: Path, count: int) -> float:
    audit = AuditLog(directory, "bench", SIGNER, Options(commit_seconds=0.002))
    audit.open()
    audit.start()
    start = time.perf_counter()
    for number in range(count):
        audit.append(record(number))
        if number % 64 == 0:
            await asyncio.sleep(0)  # the loop runs other work (here: the commit task) as a router's would
    await audit.flush()
    elapsed = time.perf_counter() - start
    await audit.close()
    return count / elapsed


async def group_commit_each_durable(directory: Path, count: int, producers: int = 256) -> float:
    audit = AuditLog(directory, "bench", SIGNER, Options(commit_seconds=0.002))
    audit.open()
    audit.start()
    share = count // producers

    async def producer(worker: int) -> None:
        for number in range(share):
            await audit.durable(audit.append(record(worker * share + number)))

    start = time.perf_counter()
    await asyncio.gather(*(producer(worker) for worker in range(producers)))
    elapsed = time.perf_counter() - start
    await audit.close()
    return share * producers / elapsed


async def fsync_per_record(directory: Path, count: int) -> float:
    audit = AuditLog(directory, "bench", SIGNER, Options(commit_seconds=0.0))
    audit.open()
    audit.start()
    start = time.perf_counter()
    for number in range(count):
        await audit.durable(audit.append(record(number)))
    elapsed = time.perf_counter() - start
    await audit.close()
    return count / elapsed


Row = tuple[str, Callable[[Path, int], Awaitable[float]], int]


async def run(base: Path, records: int, rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    rows: list[Row] = [
        ("group commit (2 ms)", group_commit, records),
        ("group commit, each awaits fsync", group_commit_each_durable, records),
        ("fsync per record", fsync_per_record, max(200, records // 50)),
    ]
    results: dict[str, list[float]] = {name: [] for name, _, _ in rows}
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in rows}
    for round_number in range(rounds):
        for name, bench, count in rows:
            directory = base / f"{round_number}-{len(results[name])}-{name.split()[0]}"
            cpu_start = time.process_time()
            rate = await bench(directory, count)
            cpu[name].append(count / (time.process_time() - cpu_start))
            results[name].append(rate)
            report = verify_chain(directory / "bench")
            assert report.problem is None, report.problem
            shutil.rmtree(directory)
    return results, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", help="where the chains go (default: a temporary folder)")
    args = parser.parse_args()
    cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})  # one core, threads included (the fsync thread shares it)
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-audit-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        results, cpu_rates = asyncio.run(run(base, args.records, args.rounds))
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    print(
        f"pinned to CPU {cpu}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; folder {base}"
    )
    print(f"{'mode':34} {'records/s wall':>15} {'records/CPU-s':>14} {'wall vs fsync/record':>21}")
    baseline = statistics.median(results["fsync per record"])
    for name, values in results.items():
        wall, per_cpu = statistics.median(values), statistics.median(cpu_rates[name])
        print(f"{name:34} {wall:>15,.0f} {per_cpu:>14,.0f} {wall / baseline:>20.1f}x")
    group = statistics.median(cpu_rates["group commit (2 ms)"])
    verdict = "PASS" if group >= TARGET else "FAIL"
    print(f"\ngroup commit {group:,.0f} records per CPU-second >= {TARGET:,}: {verdict}")
    return 0 if group >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
