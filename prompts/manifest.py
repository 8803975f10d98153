"""Reading prompt manifests: YAML files whose top-level mapping is a ``PromptSpec``.

Errors come out as ``ManifestError`` with one readable line per problem (``field: message``), so a
CLI or an operator can show them without a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from inferflux.crds.prompt import PromptSpec

MANIFEST_SUFFIXES = (".yaml", ".yml")


class ManifestError(ValueError):
    """A manifest that cannot be read or does not validate; ``problems`` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def validation_problems(error: ValidationError) -> list[str]:
    """Pydantic's errors as ``field.path: message`` lines."""
    lines = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "spec"
        lines.append(f"{where}: {item['msg']}")
    return lines


def parse_spec(document: Any) -> PromptSpec:
    """Validate a decoded manifest (a mapping) as a PromptSpec."""
    if not isinstance(document, dict):
        raise ManifestError([f"expected a mapping at the top level, got {type(document).__name__}"])
    try:
        return PromptSpec.model_validate(document)
    except ValidationError as error:
        raise ManifestError(validation_problems(error)) from None


def parse_manifest(text: str) -> PromptSpec:
    """Parse the YAML (or JSON) text of one manifest."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        reason = getattr(error, "problem", None) or "invalid YAML"
        raise ManifestError([f"{where}{reason}"]) from None
    return parse_spec(document)


def load_manifest(path: Path) -> PromptSpec:
    """Read and validate one manifest file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError([f"cannot read: {error}"]) from None
    return parse_manifest(text)


def manifest_files(paths: list[Path]) -> list[Path]:
    """The manifest files named by ``paths``: files as given, directories expanded (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES))
        else:
            found.append(path)
    return found
