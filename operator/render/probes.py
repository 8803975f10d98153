"""Health probes of the runtime container.

Our runtime answers ``/readyz`` (a model is loaded and can take requests) and ``/livez`` (the
process is not wedged); vLLM's OpenAI server only has ``/health``. Loading a model takes a while,
so a startup probe gives it up to ten minutes before liveness may restart the pod.
"""

from __future__ import annotations

from typing import Any

from inferflux.crds.inferencemodel import Engine

STARTUP_SECONDS = 600
PERIOD_SECONDS = 5


def _http_get(path: str) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}}


def probe_paths(engine: Engine) -> tuple[str, str]:
    """(readiness path, liveness path) for ``engine``."""
    return ("/health", "/health") if engine == Engine.VLLM else ("/readyz", "/livez")


def probes(engine: Engine) -> dict[str, dict[str, Any]]:
    """``readinessProbe``, ``livenessProbe`` and ``startupProbe`` of the runtime container."""
    ready, live = probe_paths(engine)
    return {
        "readinessProbe": {**_http_get(ready), "periodSeconds": PERIOD_SECONDS, "failureThreshold": 2},
        "livenessProbe": {**_http_get(live), "periodSeconds": 10, "failureThreshold": 3},
        "startupProbe": {
            **_http_get(live),
            "periodSeconds": PERIOD_SECONDS,
            "failureThreshold": STARTUP_SECONDS // PERIOD_SECONDS,
        },
    }
