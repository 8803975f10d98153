"""Semantic versions (semver.org 2.0.0): ordering and the kind of bump between two versions."""

from __future__ import annotations

import re
from enum import IntEnum

from inferflux.crds.prompt import SEMVER

_SEMVER = re.compile(SEMVER)


class Bump(IntEnum):
    """How far apart two versions are, in the order of what each may change."""

    NONE = 0
    PATCH = 1
    MINOR = 2
    MAJOR = 3
    DOWNGRADE = -1


def parse(version: str) -> tuple[int, int, int, tuple[str, ...]]:
    """Major, minor, patch and pre-release identifiers; raises ValueError for a non-semver string."""
    match = _SEMVER.match(version)
    if not match:
        raise ValueError(f"not a semantic version: {version!r}")
    major, minor, patch, pre = match.group(1, 2, 3, 4)
    return int(major), int(minor), int(patch), tuple(pre.split(".")) if pre else ()


def sort_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """A key that orders versions by semver precedence (a pre-release sorts before its release)."""
    major, minor, patch, pre = parse(version)
    identifiers = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre)
    return major, minor, patch, 0 if pre else 1, identifiers


def bump(old: str, new: str) -> Bump:
    """The kind of bump from ``old`` to ``new``. In 0.x, a minor bump counts as major (semver §4)."""
    if sort_key(new) == sort_key(old):
        return Bump.NONE
    if sort_key(new) < sort_key(old):
        return Bump.DOWNGRADE
    (o_major, o_minor, _, _), (n_major, n_minor, _, _) = parse(old), parse(new)
    if n_major != o_major or (o_major == 0 and n_minor != o_minor):
        return Bump.MAJOR
    return Bump.MINOR if n_minor != o_minor else Bump.PATCH


def latest(versions: list[str]) -> str:
    """The highest of ``versions`` by semver precedence."""
    return max(versions, key=sort_key)
