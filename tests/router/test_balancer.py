"""Replica choice: least outstanding requests, and prefix hashing with bounded load."""

from __future__ import annotations

from collections import Counter

from inferflux.crds.routing import Endpoint
from inferflux.router.balancer import Balancer

ENDPOINTS = [Endpoint(url=f"http://10.0.0.{i}:8080") for i in range(4)]


def test_least_outstanding_picks_the_idlest_replica() -> None:
    balancer = Balancer()
    for url, load in zip((e.url for e in ENDPOINTS), (3, 1, 2, 5), strict=True):
        for _ in range(load):
            balancer.acquire(url)
    assert balancer.least_outstanding(ENDPOINTS).endpoint.url == ENDPOINTS[1].url


def test_least_outstanding_spreads_ties_over_every_replica() -> None:
    balancer = Balancer()
    picks = Counter(balancer.least_outstanding(ENDPOINTS).endpoint.url for _ in range(40))
    assert set(picks.values()) == {10}


def test_release_brings_counts_back_to_zero() -> None:
    balancer = Balancer()
    balancer.acquire("a")
    balancer.acquire("a")
    balancer.release("a")
    assert balancer.outstanding == {"a": 1}
    balancer.release("a")
    assert balancer.outstanding == {}


def test_prefix_hash_is_sticky_and_spreads_prefixes() -> None:
    balancer = Balancer()
    homes = {balancer.prefix_hash(ENDPOINTS, f"system prompt {i}".encode()).endpoint.url for i in range(200)}
    assert homes == {e.url for e in ENDPOINTS}  # different prefixes land everywhere
    first = balancer.prefix_hash(ENDPOINTS, b"same prefix")
    assert all(balancer.prefix_hash(ENDPOINTS, b"same prefix").endpoint == first.endpoint for _ in range(20))
    assert first.preferred


def test_prefix_hash_home_survives_another_replica_leaving() -> None:
    balancer = Balancer()
    prefixes = [f"p{i}".encode() for i in range(100)]
    before = {p: balancer.prefix_hash(ENDPOINTS, p).endpoint.url for p in prefixes}
    remaining = ENDPOINTS[:3]
    after = {p: balancer.prefix_hash(remaining, p).endpoint.url for p in prefixes}
    moved = [p for p in prefixes if before[p] != after[p]]
    assert all(before[p] == ENDPOINTS[3].url for p in moved)  # only the gone replica's prefixes move


def test_bounded_load_spills_a_hot_prefix() -> None:
    balancer = Balancer(load_factor=1.25)
    picks = []
    for _ in range(40):
        choice = balancer.prefix_hash(ENDPOINTS, b"hot")
        balancer.acquire(choice.endpoint.url)  # requests stay in flight
        picks.append(choice)
    loads = balancer.outstanding.values()
    assert max(loads) <= 1.25 * 40 / 4 + 1
    assert any(not choice.preferred for choice in picks)
