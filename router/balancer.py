"""Choosing a replica: least outstanding requests, or consistent hashing with bounded load on a prefix.

Least-outstanding sends each request to the replica with the fewest requests in flight, which
tracks real load better than round-robin when generations differ in length. Prefix hashing sends
requests that share a prompt prefix to the same replica, so its KV cache is reused; "bounded load"
(Mirrokni et al., 2018) caps any replica at ``load_factor`` times the mean, after which the request
spills to the next replica on the ring, so a hot prefix cannot melt one pod.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from inferflux.crds.routing import Endpoint

VIRTUAL_NODES = 64


def stable_hash(data: bytes) -> int:
    """A 64-bit hash that is the same in every process (Python's ``hash`` is salted)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


@dataclass(frozen=True)
class Choice:
    """The picked endpoint, and whether it was the policy's first preference."""

    endpoint: Endpoint
    preferred: bool


class Ring:
    """A hash ring over endpoint URLs, each placed at ``VIRTUAL_NODES`` points for an even spread."""

    def __init__(self, urls: Sequence[str]) -> None:
        points = sorted(
            (stable_hash(f"{url}#{index}".encode()), url) for url in urls for index in range(VIRTUAL_NODES)
        )
        self.keys = [key for key, _ in points]
        self.urls = [url for _, url in points]

    def walk(self, key: int) -> list[str]:
        """Distinct URLs in ring order, starting at the first point at or after ``key``."""
        start = bisect.bisect_left(self.keys, key)
        seen: list[str] = []
        count = len(self.urls)
        for offset in range(count):
            url = self.urls[(start + offset) % count]
            if url not in seen:
                seen.append(url)
        return seen


class Balancer:
    """Outstanding-request counts per endpoint URL, shared by every model and both policies."""

    def __init__(self, load_factor: float = 1.25) -> None:
        self.load_factor = load_factor
        self.outstanding: dict[str, int] = {}
        self._rings: dict[tuple[str, ...], Ring] = {}
        self._turn = 0

    def acquire(self, url: str) -> None:
        """Count a request as started on ``url``."""
        self.outstanding[url] = self.outstanding.get(url, 0) + 1

    def release(self, url: str) -> None:
        """Count a request on ``url`` as finished."""
        left = self.outstanding.get(url, 0) - 1
        if left > 0:
            self.outstanding[url] = left
        else:
            self.outstanding.pop(url, None)

    def least_outstanding(self, endpoints: Sequence[Endpoint]) -> Choice:
        """The endpoint with the fewest requests in flight; ties rotate so idle replicas share work."""
        self._turn += 1
        count = len(endpoints)
        best = endpoints[self._turn % count]
        best_load = self.outstanding.get(best.url, 0)
        for offset in range(1, count):
            candidate = endpoints[(self._turn + offset) % count]
            load = self.outstanding.get(candidate.url, 0)
            if load < best_load:
                best, best_load = candidate, load
        return Choice(best, preferred=True)

    def prefix_hash(self, endpoints: Sequence[Endpoint], prefix: bytes) -> Choice:
        """The prefix's home on the ring, or the next replica under the load bound when home is full."""
        urls = tuple(endpoint.url for endpoint in endpoints)
        ring = self._rings.get(urls)
        if ring is None:
            if len(self._rings) > 256:
                self._rings.clear()
            ring = self._rings[urls] = Ring(urls)
        total = sum(self.outstanding.get(url, 0) for url in urls)
        bound = math.ceil(self.load_factor * (total + 1) / len(urls))
        by_url = {endpoint.url: endpoint for endpoint in endpoints}
        order = ring.walk(stable_hash(prefix))
        for position, url in enumerate(order):
            if self.outstanding.get(url, 0) < bound:
                return Choice(by_url[url], preferred=position == 0)
        return Choice(by_url[order[0]], preferred=True)

    def forget(self, live_urls: set[str]) -> None:
        """Drop cached rings for endpoint sets that no longer exist (counts drain on their own)."""
        self._rings = {urls: ring for urls, ring in self._rings.items() if set(urls) <= live_urls}
