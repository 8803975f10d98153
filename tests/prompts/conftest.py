"""Shared helpers: small specs and sealed manifest files written to a temporary directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from inferflux.crds.prompt import PromptSpec
from inferflux.prompts.checksum import sealed


def make_spec(**fields: Any) -> PromptSpec:
    """A valid, sealed spec; ``fields`` override the defaults."""
    body: dict[str, Any] = {
        "id": "greeter",
        "version": "1.0.0",
        "slices": {"system": "You greet {{name}}.", "guardrails": "Be kind."},
        "variables": {
            "type": "object",
            "properties": {"name": {"type": "string", "maxLength": 20}},
            "required": ["name"],
        },
        "metadata": {"inferflux.io/slice-order": "system,guardrails"},
    }
    body.update(fields)
    return sealed(PromptSpec.model_validate(body))


def write_manifest(path: Path, spec: PromptSpec) -> Path:
    """Write ``spec`` (as sealed) to ``path`` as a YAML manifest."""
    path.write_text(yaml.safe_dump(spec.to_wire(), sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def spec_factory() -> Any:
    return make_spec


@pytest.fixture
def manifest_dir(tmp_path: Path) -> Path:
    """A directory holding one sealed manifest, ``greeter.yaml``."""
    root = tmp_path / "manifests"
    root.mkdir()
    write_manifest(root / "greeter.yaml", make_spec())
    return root
