"""Fixtures: the labelled PII corpus module (corpus.py; conftest modules are not importable), and
tenants with API keys for tests through the real router."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.router.identity import api_keys
from inferflux.router.policy.effective import PolicyHolder


class Tenants:
    """A policy holder with ``tenants`` in it, an API key for each, and the hashing secret's file."""

    def __init__(self, tenants: dict[str, TenantPolicy], secret_file: Path) -> None:
        secret_file.write_bytes(b"s" * 48)
        self.secret_file = str(secret_file)
        self.holder = PolicyHolder()
        self.holder.set_snapshot(PolicySnapshot(tenants=tenants))
        hasher = api_keys.load_hasher(self.secret_file)
        self.keys: dict[str, str] = {}
        for name in tenants:
            key, record = api_keys.generate(hasher, name)
            self.holder.put_key(record.id, record)
            self.keys[name] = key

    def auth(self, tenant: str) -> dict[str, str]:
        """The authorization header of ``tenant``'s key."""
        return {"authorization": f"Bearer {self.keys[tenant]}"}


@pytest.fixture
def with_keys(tmp_path: Path) -> Callable[[dict[str, TenantPolicy]], Tenants]:
    """``with_keys(tenants)``: the `Tenants` of a test."""
    return lambda tenants: Tenants(tenants, tmp_path / "auth-secret")


@pytest.fixture(scope="session")
def corpus() -> Any:
    """tests/router/guardrails/corpus.py, loaded once."""
    spec = importlib.util.spec_from_file_location("guardrail_corpus", Path(__file__).with_name("corpus.py"))
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["guardrail_corpus"] = module
    spec.loader.exec_module(module)
    return module
