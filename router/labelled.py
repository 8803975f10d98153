"""Prometheus metric types whose ``labels`` is a dictionary read when the series exists.

prometheus_client's ``labels`` checks its arguments, converts every value with ``str`` and takes a
lock on each call, about 1 us; a routed request makes a dozen such calls (counters, gauges and
histograms by model, route and status). These types look the child up in the metric's own table
of children first, without the lock: a plain dictionary read, atomic under the GIL. A miss (a new
series, values that are not strings yet, keyword arguments) goes the library's way. Removing a
series removes it from that same table, so nothing stale is ever returned.

Their ``inc``, ``dec``, ``set`` and ``observe`` skip, too, the library's check on every call that
the metric is not a labelled parent (two Python calls each): only a child, or a metric without
labels, has a value to change, so a parent's missing value is what sends it the library's way,
where the check raises as before. A histogram finds its bucket by bisection instead of a loop over
the bounds. Counted in the router at saturation (docs/router.md), these metrics were about 12 % of a
request's Python opcodes. Exemplars, negative or NaN amounts go the library's way unchanged.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, TypeVar, cast

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
    """`prometheus_client.Counter` with `FastLabels` and a direct ``inc``."""

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        try:
            value = self._value
        except AttributeError:  # a labelled parent: the library's error
            return super().inc(amount, exemplar)
        if exemplar or not amount >= 0:
            return super().inc(amount, exemplar)
        value.inc(amount)


class Gauge(FastLabels, prometheus_client.Gauge):
    """`prometheus_client.Gauge` with `FastLabels` and a direct ``inc``, ``dec`` and ``set``."""

    def inc(self, amount: float = 1) -> None:
        try:
            value = self._value
        except AttributeError:
            return super().inc(amount)
        if self._is_most_recent:  # a multiprocess mode: the library's checks
            return super().inc(amount)
        value.inc(amount)

    def dec(self, amount: float = 1) -> None:
        self.inc(-amount)  # as the library's own dec does

    def set(self, value: float) -> None:
        try:
            current = self._value
        except AttributeError:
            return super().set(value)
        if self._is_most_recent:
            return super().set(value)
        current.set(float(value))


class Histogram(FastLabels, prometheus_client.Histogram):
    """`prometheus_client.Histogram` with `FastLabels` and a direct ``observe``."""

    _buckets: list[Any]
    _sum: Any
    _upper_bounds: list[float]

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        try:
            buckets = self._buckets
        except AttributeError:
            return super().observe(amount, exemplar)
        if exemplar or amount != amount:  # an exemplar to validate and keep, or NaN (in no bucket)
            return super().observe(amount, exemplar)
        self._sum.inc(amount)
        buckets[bisect_left(self._upper_bounds, amount)].inc(1)  # the first bound >= amount
