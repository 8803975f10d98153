"""Checks of manifest files, as the ``validate`` command runs them: one readable line per problem.

Each file must parse as a PromptSpec, have a valid JSON Schema for variables that declares every
``{{placeholder}}``, a sane slice order, and a checksum matching its content. With a base revision,
each prompt is also compared with the same id at that revision, for breaking changes and bumps.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from jsonschema.exceptions import SchemaError

from inferflux.crds.prompt import PromptSpec
from inferflux.prompts.breaking import version_problems
from inferflux.prompts.checksum import ChecksumError, verify
from inferflux.prompts.compiled import variables_validator
from inferflux.prompts.gitrev import GitError, files_at
from inferflux.prompts.manifest import ManifestError, load_manifest, parse_manifest
from inferflux.prompts.order import order_problems
from inferflux.prompts.semver import sort_key
from inferflux.prompts.template import compile_template


def content_problems(spec: PromptSpec) -> list[str]:
    """What is wrong inside a spec that pydantic accepted."""
    try:
        variables_validator(spec)
    except SchemaError as error:
        return [f"variables: not a valid JSON Schema: {error.message}"]
    declared = set(spec.variables.get("properties", {}) or {})
    texts = [(f"slice {n!r}", t) for n, t in spec.slices.items()]
    texts += [(f"variant {v.name!r} slice {n!r}", t) for v in spec.variants for n, t in v.slices.items()]
    problems = [
        f"{where} uses undeclared variable {{{{{name}}}}}"
        for where, text in texts
        for name in sorted(compile_template(text).names - declared)
    ]
    return problems + order_problems(spec)


def seal_hint(path: Path) -> str:
    """How to fix a checksum problem."""
    return f"(run: python -m inferflux.prompts seal {path})"


def file_problems(path: Path) -> tuple[PromptSpec | None, list[str]]:
    """The spec of one manifest (None when unreadable) and its problems."""
    try:
        spec = load_manifest(path)
    except ManifestError as error:
        return None, error.problems
    problems = content_problems(spec)
    try:
        verify(spec)
    except ChecksumError as error:
        problems.append(f"{error} {seal_hint(path)}")
    return spec, problems


def base_specs(revision: str, directories: Iterable[Path]) -> dict[str, PromptSpec]:
    """The latest spec of each id found in ``directories`` at ``revision`` (unparsable files skipped)."""
    found: dict[str, PromptSpec] = {}
    for directory in directories:
        for text in files_at(revision, directory).values():
            try:
                spec = parse_manifest(text)
            except ManifestError:
                continue
            current = found.get(spec.id)
            if current is None or sort_key(current.version) < sort_key(spec.version):
                found[spec.id] = spec
    return found


def validate_files(paths: list[Path], base_ref: str | None = None) -> list[str]:
    """Every problem of every file, as ``path: problem`` lines (empty: all valid)."""
    lines: list[str] = []
    specs: dict[Path, PromptSpec] = {}
    for path in paths:
        spec, problems = file_problems(path)
        lines += [f"{path}: {problem}" for problem in problems]
        if spec is not None:
            specs[path] = spec
    seen: dict[tuple[str, str], Path] = {}
    for path, spec in specs.items():
        other = seen.setdefault((spec.id, spec.version), path)
        if other != path:
            lines.append(f"{path}: {spec.id}@{spec.version} is also defined in {other}")
    if base_ref is None:
        return lines
    try:
        base = base_specs(base_ref, {path.parent for path in specs})
    except GitError as error:
        return [*lines, f"cannot compare with {base_ref}: {error}"]
    for path, spec in specs.items():
        old = base.get(spec.id)
        if old is not None:
            lines += [f"{path}: {problem} (against {base_ref})" for problem in version_problems(old, spec)]
    return lines
