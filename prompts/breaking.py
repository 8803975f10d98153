"""Breaking-change detection between two versions of a manifest.

A change is *breaking* when a caller that worked with the old prompt can fail or get something it
did not ask for with the new one: a slice it relies on is gone, a variable it passes is gone, a
variable now takes another type, or a variable becomes required. Breaking changes need a major
version bump (minor in 0.x, as semver allows). Any other change of content needs at least a patch
bump, because ``id@version`` must always mean the same text.
"""

from __future__ import annotations

from typing import Any

from inferflux.crds.prompt import PromptSpec
from inferflux.prompts.checksum import compute_checksum
from inferflux.prompts.semver import Bump, bump


def _properties(spec: PromptSpec) -> dict[str, Any]:
    properties = spec.variables.get("properties", {})
    return properties if isinstance(properties, dict) else {}


def _required(spec: PromptSpec) -> set[str]:
    required = spec.variables.get("required", [])
    return set(required) if isinstance(required, list) else set()


def _type_of(schema: Any) -> Any:
    """The declared type of a variable (``type`` or, lacking it, ``enum``/``const``)."""
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    return sorted(kind) if isinstance(kind, list) else kind


def breaking_changes(old: PromptSpec, new: PromptSpec) -> list[str]:
    """What in ``new`` breaks callers of ``old`` (empty: compatible)."""
    problems = [f"slice {name!r} removed" for name in sorted(set(old.slices) - set(new.slices))]
    old_vars, new_vars = _properties(old), _properties(new)
    problems += [f"variable {name!r} removed" for name in sorted(set(old_vars) - set(new_vars))]
    for name in sorted(set(old_vars) & set(new_vars)):
        before, after = _type_of(old_vars[name]), _type_of(new_vars[name])
        if before != after:
            problems.append(f"variable {name!r} changed type from {before!r} to {after!r}")
    problems += [f"variable {name!r} became required" for name in sorted(_required(new) - _required(old))]
    return problems


def version_problems(old: PromptSpec, new: PromptSpec) -> list[str]:
    """Why ``new`` may not replace ``old`` as it is versioned (empty: it may)."""
    if old.id != new.id:
        return []
    step = bump(old.version, new.version)
    if step is Bump.DOWNGRADE:
        return [f"version went down from {old.version} to {new.version}"]
    breaking = breaking_changes(old, new)
    if breaking and step < Bump.MAJOR:
        need = "minor (0.x)" if old.version.startswith("0.") else "major"
        return [
            f"breaking change without a {need} version bump ({old.version} -> {new.version}): {b}"
            for b in breaking
        ]
    if step is Bump.NONE and compute_checksum(old) != compute_checksum(new):
        return [f"content changed without a version bump (still {new.version})"]
    return []
