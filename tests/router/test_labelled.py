"""Metric types with a lock-free ``labels`` for existing series: same series, nothing stale."""

from __future__ import annotations

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry

from inferflux.router.labelled import Counter, Gauge, Histogram


def test_every_way_of_naming_a_series_counts_into_the_same_one() -> None:
    registry = CollectorRegistry()
    requests = Counter("requests", "Requests.", ["route", "status"], registry=registry)
    requests.labels("chat", "200").inc()  # created through the library
    requests.labels("chat", "200").inc()  # found in the children
    requests.labels("chat", 200).inc()  # not a string yet: the library converts it
    requests.labels(route="chat", status="200").inc()
    assert registry.get_sample_value("requests_total", {"route": "chat", "status": "200"}) == 4


def test_a_removed_series_starts_again_from_zero() -> None:
    registry = CollectorRegistry()
    depth = Gauge("depth", "Depth.", ["model"], registry=registry)
    depth.labels("m").set(7)
    depth.remove("m")
    assert registry.get_sample_value("depth", {"model": "m"}) is None
    depth.labels("m").inc()
    assert registry.get_sample_value("depth", {"model": "m"}) == 1


def test_histogram_children_observe_into_their_series() -> None:
    registry = CollectorRegistry()
    duration = Histogram("duration", "Duration.", ["model"], buckets=(0.1, 1), registry=registry)
    for _ in range(3):
        duration.labels("m").observe(0.5)
    assert registry.get_sample_value("duration_bucket", {"model": "m", "le": "1.0"}) == 3
    assert registry.get_sample_value("duration_bucket", {"model": "m", "le": "0.1"}) == 0


def test_misuse_gets_the_librarys_own_error() -> None:
    registry = CollectorRegistry()
    requests = Counter("requests", "Requests.", ["route"], registry=registry)
    unlabelled = Counter("plain", "Plain.", registry=registry)
    with pytest.raises(ValueError, match="already has labels set"):
        requests.labels("chat").labels("chat")
    with pytest.raises(ValueError, match="No label names"):
        unlabelled.labels("chat")


def test_children_count_as_the_library_counts() -> None:
    """The direct ``inc``/``dec``/``set``/``observe`` give the library's samples, boundaries included."""
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    bounds = (0.1, 0.5, 1.0)
    for registry, (counter, gauge, histogram) in (
        (ours, (Counter, Gauge, Histogram)),
        (theirs, (prometheus_client.Counter, prometheus_client.Gauge, prometheus_client.Histogram)),
    ):
        requests = counter("requests", "Requests.", ["route"], registry=registry)
        plain = counter("plain", "Plain.", registry=registry)
        depth = gauge("depth", "Depth.", ["model"], registry=registry)
        duration = histogram("duration", "Duration.", ["model"], buckets=bounds, registry=registry)
        for amount in (0.0, 0.05, 0.1, 0.100001, 0.5, 0.7, 1.0, 3.0, float("inf"), -1.0):
            duration.labels("m").observe(amount)
        requests.labels("chat").inc()
        requests.labels("chat").inc(2.5)
        plain.inc()
        depth.labels("m").inc(3)
        depth.labels("m").dec()
        depth.labels("n").set(7)
    for sample in (s for metric in theirs.collect() for s in metric.samples):
        if not sample.name.endswith("_created"):
            assert ours.get_sample_value(sample.name, sample.labels) == sample.value, sample


def test_a_parent_and_bad_amounts_get_the_librarys_errors() -> None:
    registry = CollectorRegistry()
    requests = Counter("requests", "Requests.", ["route"], registry=registry)
    depth = Gauge("depth", "Depth.", ["model"], registry=registry)
    duration = Histogram("duration", "Duration.", ["model"], registry=registry)
    for misuse in (requests.inc, depth.inc, depth.dec, lambda: depth.set(1), lambda: duration.observe(1)):
        with pytest.raises(ValueError, match="metric is missing label values"):
            misuse()
    with pytest.raises(ValueError, match="non-negative"):
        requests.labels("chat").inc(-1)
    duration.labels("m").observe(0.2, exemplar={"trace_id": "abc"})
    assert registry.get_sample_value("duration_count", {"model": "m"}) == 1
