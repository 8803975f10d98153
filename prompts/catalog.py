"""What a prompt source holds: the live prompts, and the snapshots of versions they had.

Each source item (a file, a ConfigMap) has a key and holds one spec. ``id`` resolves to the highest
version held by a live item; ``id@version`` also resolves versions that an item held before it was
edited, so a client pinned to a version keeps getting exactly it. Deleting the last item of an id
drops its snapshots too: a deleted prompt is not served.
"""

from __future__ import annotations

from inferflux.crds.prompt import PromptSpec
from inferflux.prompts.semver import sort_key


class Catalog:
    """Prompts by source key, and every (id, version) seen while the id stays live."""

    def __init__(self) -> None:
        self._live: dict[str, PromptSpec] = {}
        self._versions: dict[tuple[str, str], PromptSpec] = {}

    def put(self, key: str, spec: PromptSpec) -> set[str]:
        """Record that item ``key`` now holds ``spec``; returns the ids whose answer may change."""
        previous = self._live.get(key)
        self._live[key] = spec
        self._versions[(spec.id, spec.version)] = spec
        touched = {spec.id}
        if previous is not None and previous.id != spec.id:
            touched |= self._forget_if_dead(previous.id)
        return touched

    def remove(self, key: str) -> set[str]:
        """Record that item ``key`` is gone; returns the ids whose answer may change."""
        previous = self._live.pop(key, None)
        return self._forget_if_dead(previous.id) if previous else set()

    def _forget_if_dead(self, prompt_id: str) -> set[str]:
        if any(spec.id == prompt_id for spec in self._live.values()):
            return {prompt_id}
        self._versions = {k: v for k, v in self._versions.items() if k[0] != prompt_id}
        return {prompt_id}

    def held(self, key: str) -> PromptSpec | None:
        """The spec item ``key`` holds now."""
        return self._live.get(key)

    def keys(self) -> set[str]:
        """The keys of the live items."""
        return set(self._live)

    def get(self, prompt_id: str, version: str | None = None) -> PromptSpec | None:
        """The spec of ``id`` (its latest live version) or of ``id@version``; None when unknown."""
        if version is not None:
            return self._versions.get((prompt_id, version))
        live = [spec for spec in self._live.values() if spec.id == prompt_id]
        return max(live, key=lambda s: sort_key(s.version)) if live else None

    def ids(self) -> list[str]:
        """Live prompt ids, in the order their items were first added."""
        return list(dict.fromkeys(spec.id for spec in self._live.values()))

    def __len__(self) -> int:
        return len(self.ids())
