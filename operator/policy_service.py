"""Publish the policy snapshot compiled from the Tenants, and remember what each Tenant became.

Every Tenant event calls ``request()``; the `Publisher` coalesces bursts and rewrites the
``inferflux-policy`` ConfigMap only when the snapshot changed. Nothing is published before the
tenant watch has listed the Tenants once: an empty snapshot at start-up would lock every tenant
out until the list arrived.

After each publication the outcome of every Tenant (the generation now on the server, and any
problem that kept it out or cut it down) is recorded; the Tenants whose outcome changed are handed
to ``on_outcome`` so that their status is reconciled again, and only those, which keeps the loop
of status write -> watch event -> publication from spinning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from inferflux.crds.tenant import Tenant
from inferflux.operator.cache import ClusterCache, Key
from inferflux.operator.publisher import Publisher
from inferflux.operator.render.policy import CompiledPolicy, Problem, compile_policy, render_policy_configmap
from inferflux.operator.storage import Storage


@dataclass(frozen=True)
class Outcome:
    """What the last publication made of one Tenant generation."""

    generation: int
    problem: Problem | None


def parsed_tenants(cache: ClusterCache) -> list[Tenant]:
    """Every cached Tenant that parses (one that does not is reported Stalled by its reconcile)."""
    return cache.tenants.all_parsed(Tenant.from_body, ValidationError)


class PolicyPublisher(Publisher):
    """Keeps the ``inferflux-policy`` ConfigMap equal to the snapshot compiled from the cache."""

    name = "policy snapshot"

    def __init__(
        self,
        storage: Storage,
        cache: ClusterCache,
        namespace: str,
        on_outcome: Callable[[Key], None] = lambda key: None,
    ) -> None:
        super().__init__(storage)
        self._cache = cache
        self.namespace = namespace
        self.on_outcome = on_outcome
        self.synced = False  # set by the tenant watch once it has listed the Tenants
        self.outcomes: dict[str, Outcome] = {}
        self._building: dict[str, Outcome] = {}

    def mark_synced(self) -> None:
        """The Tenants have been listed: publishing may start."""
        self.synced = True
        self.request()

    def ready(self) -> bool:
        """Only once the Tenants were listed."""
        return self.synced

    def compile(self) -> tuple[CompiledPolicy, dict[str, Outcome]]:
        """The snapshot of the cached Tenants, and the outcome of each."""
        tenants = parsed_tenants(self._cache)
        compiled = compile_policy(tenants)
        outcomes = {
            t.metadata.name: Outcome(t.metadata.generation, compiled.problems.get(t.metadata.name))
            for t in tenants
        }
        return compiled, outcomes

    def documents(self) -> list[dict[str, Any]]:
        """The policy ConfigMap of the operator's namespace."""
        compiled, self._building = self.compile()
        return [render_policy_configmap(compiled.snapshot, self.namespace)]

    def published(self, documents: list[dict[str, Any]]) -> None:
        """Record each Tenant's outcome; hand over those that changed."""
        before, self.outcomes = self.outcomes, self._building
        for name in sorted(set(before) | set(self.outcomes)):
            if before.get(name) != self.outcomes.get(name):
                self.on_outcome((self.namespace, name))
