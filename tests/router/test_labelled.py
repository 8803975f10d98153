"""Metric types with a lock-free ``labels`` for existing series: same series, nothing stale."""

from __future__ import annotations

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
