"""Read InferenceModel, Prompt and Tenant YAML from files and folders, validated as the API server would.

The objects are parsed with the same pydantic API types (and so the same cross-field rules) that the
operator uses, so a file that ``kubectl apply`` would reject is rejected here with the same message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from inferflux.crds import InferenceModel, Prompt, Tenant

YAML_SUFFIXES = (".yaml", ".yml")
T = TypeVar("T", InferenceModel, Prompt, Tenant)


class ResourceError(ValueError):
    """A file cannot be read or holds an invalid resource; the message names the file and the field."""


@dataclass
class Resources:
    """The InferenceModels, Prompts and Tenants of a set of files, in file order."""

    models: list[InferenceModel] = field(default_factory=list)
    prompts: list[Prompt] = field(default_factory=list)
    tenants: list[Tenant] = field(default_factory=list)


def yaml_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files named, with folders expanded to their (non-recursive) YAML files, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise ResourceError(f"{path}: no such file or folder")
    return files


def load(paths: Iterable[Path]) -> Resources:
    """Parse every InferenceModel, Prompt and Tenant; other kinds are skipped, invalid ones raise."""
    found = Resources()
    for path, doc in _documents(yaml_files(paths)):
        kind = doc.get("kind")
        if kind == "InferenceModel":
            found.models.append(_parse(InferenceModel, doc, path))
        elif kind == "Prompt":
            found.prompts.append(_parse(Prompt, doc, path))
        elif kind == "Tenant":
            found.tenants.append(_parse(Tenant, doc, path))
    _refuse_duplicates(found)
    return found


def _documents(files: list[Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in files:
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except OSError as error:
            raise ResourceError(f"{path}: {error.strerror}") from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ResourceError(f"{path}:{where} is not valid YAML") from None
        for doc in docs:
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise ResourceError(f"{path}: a document is not a mapping")
            yield path, doc


def _parse(kind: type[T], doc: dict[str, Any], path: Path) -> T:
    try:
        parsed = kind.model_validate(doc)
    except ValidationError as error:
        raise ResourceError(f"{path}: {kind.__name__} {_name(doc)} is invalid: {describe(error)}") from None
    if not parsed.metadata.name:
        raise ResourceError(f"{path}: {kind.__name__} has no metadata.name")
    return parsed


def describe(error: ValidationError) -> str:
    """A pydantic error as one line: ``field.path: message`` for each problem, joined by ``; ``."""
    parts = []
    for problem in error.errors():
        where = ".".join(str(p) for p in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _name(doc: dict[str, Any]) -> str:
    metadata = doc.get("metadata")
    return repr(metadata.get("name", "")) if isinstance(metadata, dict) else "''"


def _refuse_duplicates(found: Resources) -> None:
    """Two models with one name or one servedName would fight over the same process and route; two
    Tenants with one name over the same policy."""
    tenants: set[str] = set()
    for tenant in found.tenants:
        if tenant.metadata.name in tenants:
            raise ResourceError(f"two Tenants are named {tenant.metadata.name!r}")
        tenants.add(tenant.metadata.name)
    names: set[str] = set()
    served: dict[str, str] = {}
    for model in found.models:
        if model.metadata.name in names:
            raise ResourceError(f"two InferenceModels are named {model.metadata.name!r}")
        names.add(model.metadata.name)
        owner = served.setdefault(model.served_name, model.metadata.name)
        if owner != model.metadata.name:
            raise ResourceError(
                f"servedName {model.served_name!r} is used by {owner} and {model.metadata.name}"
            )
