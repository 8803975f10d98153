"""Prometheus metric types whose ``labels`` is a dictionary read when the series exists.

prometheus_client's ``labels`` checks its arguments, converts every value with ``str`` and takes a
lock on each call, about 1 us; a routed request makes a dozen such calls (counters, gauges and
histograms by model, route and status). These types look the child up in the metric's own table
of children first, without the lock: a plain dictionary read, atomic under the GIL. A miss (a new
series, values that are not strings yet, keyword arguments) goes the library's way. Removing a
series removes it from that same table, so nothing stale is ever returned.
"""

from __future__ import annotations

from typing import TypeVar, cast

import prometheus_client
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)


class FastLabels(MetricWrapperBase):
    """``labels`` served from the metric's children when the series exists (mixed in first)."""

    def labels(self: M, *labelvalues: object, **labelkwargs: object) -> M:
        if not labelkwargs:
            try:
                child = self._metrics.get(labelvalues)  # type: ignore[arg-type]
            except AttributeError:  # not a labelled parent: the library's call says why
                child = None
            if child is not None:
                return cast(M, child)
        return super().labels(*labelvalues, **labelkwargs)


class Counter(FastLabels, prometheus_client.Counter):
    """`prometheus_client.Counter` with `FastLabels`."""


class Gauge(FastLabels, prometheus_client.Gauge):
    """`prometheus_client.Gauge` with `FastLabels`."""


class Histogram(FastLabels, prometheus_client.Histogram):
    """`prometheus_client.Histogram` with `FastLabels`."""
