"""Batch metrics (``inferflux_router_batch_*``), labelled by tenant and model, never by content.

Counters are per process: ``queued`` counts tasks the API queued here, ``done``, ``failed`` and
``dead_lettered`` count outcomes this process's workers recorded (only the recording that won, so
a task redelivered after a crash is counted once across the fleet); ``running`` is a gauge of the
tasks this process runs now. Sum over pods for the cluster's figures.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from inferflux.router.labelled import Counter, Gauge, Histogram
from inferflux.router.metrics import PREFIX

_DURATION = (1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)


class BatchMetrics:
    """The batch queue's metrics in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        labels = ["tenant", "model"]
        self.queued = Counter(PREFIX + "batch_tasks_queued", "Batch tasks queued.", labels, registry=registry)
        self.running = Gauge(
            PREFIX + "batch_tasks_running", "Batch tasks this process runs now.", labels, registry=registry
        )
        self.done = Counter(
            PREFIX + "batch_tasks_done", "Batch tasks answered with a 2xx.", labels, registry=registry
        )
        self.failed = Counter(
            PREFIX + "batch_tasks_failed",
            "Batch tasks that ended in the error file (refused, or dead-lettered).",
            labels,
            registry=registry,
        )
        self.dead_lettered = Counter(
            PREFIX + "batch_tasks_dead_lettered",
            "Batch tasks given up after their last retryable failure.",
            labels,
            registry=registry,
        )
        self.retried = Counter(
            PREFIX + "batch_tasks_retried",
            "Batch task attempts retried after backoff.",
            labels,
            registry=registry,
        )
        self.duration = Histogram(
            PREFIX + "batch_duration_seconds",
            "Time from a batch's creation to its final status, by final status.",
            ["status"],
            buckets=_DURATION,
            registry=registry,
        )
