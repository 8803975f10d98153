"""A Prompt resource, end to end: kubectl apply → operator → ConfigMap → the router's resolver.

Acceptance of issue 8 on the real control plane: an applied Prompt is resolvable by the resolver
the router runs (the same ConfigMap source and cache) within a second, and an edit takes over
within a second with the old version still pinned as ``id@version``. The operator runs under its
own ServiceAccount, started by the fixtures of test_operator.py.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

from inferflux.prompts.configmap_source import ConfigMapSource
from inferflux.prompts.resolver import PromptNotFoundError, PromptResolver


def _operator_fixtures() -> Any:
    name = "inferflux_e2e_test_operator"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("test_operator.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_ops = _operator_fixtures()
admin, operator_kubeconfig, operator, namespace = (
    _ops.admin,
    _ops.operator_kubeconfig,
    _ops.operator,
    _ops.namespace,
)


def _prompt(namespace: str, version: str, greeting: str) -> dict[str, Any]:
    return {
        "apiVersion": "inferflux.io/v1alpha1",
        "kind": "Prompt",
        "metadata": {"name": "greeter", "namespace": namespace},
        "spec": {
            "id": "greeter",
            "version": version,
            "slices": {"system": f"{greeting} You help with {{{{topic}}}}."},
            "variables": {"type": "object", "properties": {"topic": {"type": "string"}}},
        },
    }


async def _resolvable(resolver: PromptResolver, version: str, within: float) -> float:
    """Seconds until ``greeter`` resolves (not as a fallback) at ``version``; fails after ``within``."""
    started = time.monotonic()
    while True:
        try:
            resolved = await resolver.resolve("greeter", {"topic": "trains"})
        except PromptNotFoundError:  # not published yet
            resolved = None
        if resolved is not None and not resolved.fallback and resolved.version == version:
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"greeter {version} not resolvable in {within} s"
        await asyncio.sleep(0.02)


async def test_applied_and_edited_prompts_reach_the_router_within_a_second(
    admin: Any, operator: Any, namespace: str, admin_kubeconfig: Path
) -> None:
    resolver = PromptResolver([ConfigMapSource(kubeconfig=admin_kubeconfig, namespace=namespace)], budget=1.0)
    await resolver.start()
    try:
        await asyncio.to_thread(admin.apply, _prompt(namespace, "1.0.0", "Hello!"))
        assert await _resolvable(resolver, "1.0.0", within=1.0) < 1.0
        first = await resolver.resolve("greeter", {"topic": "trains"})
        assert "Hello! You help with trains." in first.text

        await asyncio.to_thread(admin.apply, _prompt(namespace, "1.1.0", "Welcome!"))
        assert await _resolvable(resolver, "1.1.0", within=1.0) < 1.0
        pinned = await resolver.resolve("greeter@1.0.0", {"topic": "trains"})
        assert "Hello!" in pinned.text
    finally:
        await resolver.close()
