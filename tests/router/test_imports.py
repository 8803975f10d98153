"""What a router process loads at start: the heavy clients only when a route or setting needs them.

The provider SDKs (``openai``, ``anthropic``), the Kubernetes client and aiohttp together weighed
about 100 MB of the router's resident memory and seconds of its start-up; a local-mode router uses
none of them.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("openai", "anthropic", "kubernetes_asyncio", "aiohttp")

PROBE = """
import json, sys
import inferflux.router.__main__
from inferflux.router.app import Router
print(json.dumps(sorted(name for name in {heavy} if name in sys.modules)))
"""


def loaded_after(code: str) -> list[str]:
    """Which of HEAVY a fresh interpreter has loaded after running ``code``."""
    found = subprocess.run(
        [sys.executable, "-c", code.replace("{heavy}", repr(HEAVY))],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    result: list[str] = json.loads(found.stdout.strip().splitlines()[-1])
    return result


def test_starting_the_router_loads_no_provider_sdk_kubernetes_client_or_aiohttp() -> None:
    assert loaded_after(PROBE) == []


def test_a_provider_adapter_loads_its_sdk_when_it_is_made() -> None:
    code = PROBE.replace(
        "print(",
        "from inferflux.router.providers.anthropic_adapter import AnthropicAdapter\n"
        "AnthropicAdapter(model='m', base_url=None, api_key='k', timeout_seconds=1)\nprint(",
    )
    loaded = loaded_after(code)
    assert "anthropic" in loaded
    assert "openai" not in loaded
    assert "kubernetes_asyncio" not in loaded
