"""The garbage collector and the request path: startup's objects are frozen out of its full passes.

By the time the router serves, its imports (uvicorn, pydantic, prometheus, the Kubernetes and
OpenTelemetry clients...) have left some 300 000 container objects on the heap that live as long
as the process. CPython's full (generation 2) collection walks every one of them; profiled at 64
requests in flight (docs/router.md, "Benchmark"), each such pass stopped the event loop for
150-280 ms, and those pauses were the router's p99. `gc.freeze` moves everything alive at that
point into a permanent generation the collector never scans, so a full pass walks only what was
allocated since; objects frozen are never freed (by design: they live for the process anyway).
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect once, then freeze every object still alive; returns how many were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
