"""Probes of each engine's server."""

from __future__ import annotations

from inferflux.crds import Engine
from inferflux.operator.render.probes import probes


def test_runtime_probes_use_readyz_and_livez_on_the_http_port() -> None:
    rendered = probes(Engine.LLAMACPP)
    assert rendered["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert rendered["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    startup = rendered["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600


def test_vllm_probes_use_its_health_endpoint() -> None:
    rendered = probes(Engine.VLLM)
    assert {p["httpGet"]["path"] for p in rendered.values()} == {"/health"}
