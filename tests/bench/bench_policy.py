"""Policy propagation between two router replicas sharing a real Redis (`make bench-policy`).

Starts redis-server and two ``python -m inferflux.router`` processes, makes policy updates through
router A's admin API (key creations and revocations, alternating) and times each until router B's
admin API, which reads B's `PolicyHolder`, shows it. The clock starts before A's request is sent.

    python tests/bench/bench_policy.py                 # 500 updates
    python tests/bench/bench_policy.py --updates 2000
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=500)
    args = parser.parse_args(argv)
    redis_server = load(ROOT / "tests" / "redis_server.py", "bench_redis_server")
    replicas = load(ROOT / "tests" / "router" / "policy" / "replicas.py", "bench_policy_replicas")
    with tempfile.TemporaryDirectory() as folder:
        redis = redis_server.RedisServer(Path(folder) / "redis").start()
        started = []
        try:
            ports = replicas.free_ports(4)
            for i, name in enumerate(("a", "b")):
                started.append(
                    replicas.Replica(Path(folder) / name, redis.url, name, (ports[2 * i], ports[2 * i + 1]))
                )
            for replica in started:
                replica.wait_ready()
            timings = replicas.measure(started[0], started[1], args.updates, bound=5.0)
        finally:
            for replica in started:
                replica.stop()
            redis.stop()
    print(f"policy propagation, router A -> Redis -> router B, {len(timings)} updates")
    print(f"{'updates':<10}{'count':>7}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for kind in ("create", "revoke", "all"):
        values = [elapsed for name, elapsed in timings if kind in (name, "all")]
        p50, p99 = replicas.percentile(values, 0.5), replicas.percentile(values, 0.99)
        print(f"{kind:<10}{len(values):>7}{p50 * 1000:>10.2f}{p99 * 1000:>10.2f}{max(values) * 1000:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
