"""The operator's view of the cluster: the latest body of every watched object, by key.

kopf's watch streams feed it (one handler per resource kind); reconcilers read from it instead of
calling the API server, so an event storm costs no extra requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

Key = tuple[str, str]  # (namespace, name)


def key_of(body: Mapping[str, Any]) -> Key:
    """The (namespace, name) of an object body."""
    meta = body.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


class ObjectCache:
    """Latest bodies of one kind of object, by (namespace, name)."""

    def __init__(self) -> None:
        self._bodies: dict[Key, dict[str, Any]] = {}
        self._parsed: dict[Key, tuple[str, Any]] = {}

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> Key:
        """Record a watch event (``DELETED`` removes the object); returns the object's key."""
        key = key_of(body)
        if event_type == "DELETED":
            self._bodies.pop(key, None)
            self._parsed.pop(key, None)
        else:
            self._bodies[key] = dict(body)
        return key

    def get(self, key: Key) -> dict[str, Any] | None:
        """The latest body, or None when the object is not (or no longer) there."""
        return self._bodies.get(key)

    def parsed(self, key: Key, parse: Callable[[dict[str, Any]], T]) -> T | None:
        """``parse`` of the latest body, computed once per resourceVersion (parsing is not free).

        ``parse`` may raise; nothing is remembered then, so the caller sees the error every time.
        """
        body = self._bodies.get(key)
        if body is None:
            return None
        version = (body.get("metadata") or {}).get("resourceVersion") or ""
        memo = self._parsed.get(key)
        if memo is not None and memo[0] == version and version:
            result: T = memo[1]
            return result
        value = parse(body)
        self._parsed[key] = (version, value)
        return value

    def all_parsed(self, parse: Callable[[dict[str, Any]], T], skip: type[Exception]) -> list[T]:
        """``parse`` of every cached body, leaving out those it refuses with ``skip`` (their own
        reconcile reports them)."""
        found = []
        for key in self:
            try:
                value = self.parsed(key, parse)
            except skip:
                continue
            if value is not None:
                found.append(value)
        return found

    def __iter__(self) -> Iterator[Key]:
        """Every cached key (a snapshot: the cache may change while the caller awaits)."""
        return iter(list(self._bodies))

    def values(self) -> Iterator[dict[str, Any]]:
        """Every cached body."""
        return iter(list(self._bodies.values()))

    def replace(self, bodies: Iterable[Mapping[str, Any]]) -> set[Key]:
        """Make the cache hold exactly ``bodies`` (a fresh list); returns every key added, changed or gone."""
        fresh = {key_of(body): dict(body) for body in bodies}
        touched = {key for key in self._bodies if key not in fresh}
        touched |= {key for key, body in fresh.items() if self._bodies.get(key) != body}
        for key in set(self._bodies) - set(fresh):
            self._parsed.pop(key, None)
        self._bodies = fresh
        return touched

    def __len__(self) -> int:
        return len(self._bodies)


@dataclass
class ClusterCache:
    """One ObjectCache per watched kind."""

    models: ObjectCache = field(default_factory=ObjectCache)
    deployments: ObjectCache = field(default_factory=ObjectCache)
    pods: ObjectCache = field(default_factory=ObjectCache)
    prompts: ObjectCache = field(default_factory=ObjectCache)
    tenants: ObjectCache = field(default_factory=ObjectCache)  # the operator's namespace only
