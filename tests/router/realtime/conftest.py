"""Fixtures for the realtime tests: flite speech, and a client for the realtime endpoints."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest


def _load(filename: str, name: str) -> Any:
    """A helper module beside this file, registered as ``name`` (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(filename))
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_load("speech.py", "inferflux_tests_speech")
_load("client.py", "inferflux_tests_realtime_client")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A hand-moved clock starting at 0."""
    return Clock()
