"""Fair-queue metrics by model, priority band and tenant, all prefixed ``inferflux_router_``.

Cardinality stays bounded: the tenant label is a tenant's name only when a Tenant resource
declares it (the installation's admins write those), ``other`` for tenants of the admin API, and
``-`` for requests without a tenant; bands are the integers -10..10.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from inferflux.router.labelled import Counter
from inferflux.router.metrics import PREFIX


class SchedulingMetrics:
    """Counters of what the fair queue decided."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["model", "priority", "tenant"]
        self.queued = Counter(
            PREFIX + "fairness_queued", "Requests that had to wait for a slot.", labels, registry=registry
        )
        self.admitted = Counter(
            PREFIX + "fairness_admitted",
            "Requests given a slot, at once or after waiting.",
            labels,
            registry=registry,
        )
        self.shed = Counter(
            PREFIX + "fairness_shed",
            "Requests refused with 429 by the fair queue, by reason (queue_full, displaced, shed).",
            [*labels, "reason"],
            registry=registry,
        )
