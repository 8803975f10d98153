"""Fixtures: the labelled PII corpus module (corpus.py; conftest modules are not importable)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest


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
