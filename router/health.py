"""Liveness and readiness: ``/livez``, ``/healthz`` and ``/readyz`` composed from named checks.

Readiness is the conjunction of checks other parts register by name, so the prompts package can
add ``prompts_loaded`` (or a provider adapter its own check) without touching this module.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

CheckResult = tuple[bool, str]
Check = Callable[[], CheckResult | Awaitable[CheckResult]]


class Readiness:
    """Named readiness checks; ready when every one passes."""

    def __init__(self) -> None:
        self.checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        """Register (or replace) the check called ``name``; it returns (ok, detail)."""
        self.checks[name] = check

    async def evaluate(self) -> tuple[bool, dict[str, dict[str, object]]]:
        """Run every check; a check that raises counts as failed, with the exception type as detail."""
        results: dict[str, dict[str, object]] = {}
        for name, check in self.checks.items():
            try:
                outcome = check()
                ok, detail = (await outcome) if inspect.isawaitable(outcome) else outcome
            except Exception as error:
                ok, detail = False, f"check failed: {type(error).__name__}"
            results[name] = {"ok": ok, "detail": detail}
        return all(result["ok"] for result in results.values()), results
