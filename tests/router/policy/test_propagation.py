"""Propagation: 100 policy updates made on router A, each seen by router B (real processes, real Redis).

What is timed: from sending the update to A's admin API until B enforces it on its public port (a
new key gets 200 on /v1/models, a revoked one 401). The bound asserted here is generous (2 s) so the
test is not flaky; `make bench-policy` reports the figures.
"""

from __future__ import annotations

import http.client
import importlib
from typing import Any

replicas = importlib.import_module("inferflux_tests_policy_replicas")  # loaded by conftest


def test_every_update_on_one_router_reaches_the_other(replica_pair: tuple[Any, Any]) -> None:
    a, b = replica_pair
    public = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
    public.request("GET", "/admin/v1/policy", headers={"authorization": f"Bearer {replicas.TOKEN}"})
    assert public.getresponse().status == 404, "the admin API is never on the public port"
    public.close()
    timings = replicas.measure(a, b, updates=100, bound=2.0)
    seconds = [elapsed for _, elapsed in timings]
    kinds = {kind for kind, _ in timings}
    print(
        f"\npropagation over {len(seconds)} updates: p50 {replicas.percentile(seconds, 0.5) * 1000:.1f} ms, "
        f"p99 {replicas.percentile(seconds, 0.99) * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms"
    )
    assert kinds == {"create", "revoke"}
    late = [(number, kind, elapsed) for number, (kind, elapsed) in enumerate(timings) if elapsed > 2.0]
    assert not late, f"updates not seen by router B within 2 s: {late}"
    # The two replicas agree on every key.
    status_a, keys_a = a.admin.call("GET", "/tenants/propagation/keys")
    status_b, keys_b = b.admin.call("GET", "/tenants/propagation/keys")
    assert status_a == status_b == 200
    assert keys_a == keys_b
