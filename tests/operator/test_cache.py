"""The cluster cache fed by watch events."""

from __future__ import annotations

from inferflux.operator.cache import ObjectCache, key_of


def test_events_upsert_and_delete() -> None:
    cache = ObjectCache()
    body = {"metadata": {"namespace": "a", "name": "m"}, "spec": {"x": 1}}
    assert cache.observe(None, body) == ("a", "m")  # the initial listing has no event type
    assert cache.observe("MODIFIED", {**body, "spec": {"x": 2}}) == ("a", "m")
    assert cache.get(("a", "m")) == {**body, "spec": {"x": 2}}
    assert len(cache) == 1
    cache.observe("DELETED", body)
    assert cache.get(("a", "m")) is None
    assert list(cache.values()) == []


def test_key_of_tolerates_missing_metadata() -> None:
    assert key_of({}) == ("", "")


def test_parsing_is_memoised_per_resource_version() -> None:
    cache = ObjectCache()
    calls: list[str] = []

    def parse(body: dict[str, object]) -> str:
        calls.append("x")
        return str(body["metadata"])

    meta = {"namespace": "a", "name": "m", "resourceVersion": "1"}
    cache.observe(None, {"metadata": meta})
    first = cache.parsed(("a", "m"), parse)
    assert cache.parsed(("a", "m"), parse) == first
    assert len(calls) == 1
    cache.observe("MODIFIED", {"metadata": {**meta, "resourceVersion": "2"}})
    assert cache.parsed(("a", "m"), parse) != first
    assert len(calls) == 2
    assert list(cache) == [("a", "m")]
    assert cache.parsed(("a", "gone"), parse) is None


def test_replace_holds_exactly_the_fresh_list_and_names_what_changed() -> None:
    cache = ObjectCache()
    cache.observe("ADDED", {"metadata": {"namespace": "ns", "name": "kept", "resourceVersion": "1"}})
    cache.observe("ADDED", {"metadata": {"namespace": "ns", "name": "gone", "resourceVersion": "1"}})
    cache.observe("ADDED", {"metadata": {"namespace": "ns", "name": "edited", "resourceVersion": "1"}})
    touched = cache.replace(
        [
            {"metadata": {"namespace": "ns", "name": "kept", "resourceVersion": "1"}},
            {"metadata": {"namespace": "ns", "name": "edited", "resourceVersion": "2"}},
            {"metadata": {"namespace": "ns", "name": "new", "resourceVersion": "1"}},
        ]
    )
    assert touched == {("ns", "gone"), ("ns", "edited"), ("ns", "new")}
    assert sorted(cache) == [("ns", "edited"), ("ns", "kept"), ("ns", "new")]
    assert cache.get(("ns", "gone")) is None
