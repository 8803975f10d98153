"""The published JSON Schema of prompt manifests, generated from ``PromptSpec``.

Editors and CI read ``prompt-manifest.schema.json``; the pydantic model stays the single source of
truth. ``python -m inferflux.prompts schema --check`` (and a unit test) fail when the file drifts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inferflux.crds.prompt import PromptSpec

SCHEMA_PATH = Path(__file__).resolve().parent / "prompt-manifest.schema.json"
SCHEMA_ID = "https://inferflux.io/schemas/prompt-manifest.schema.json"


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a manifest: PromptSpec with its camelCase wire names."""
    body = PromptSpec.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **body,
        "title": "InferFlux prompt manifest",
    }


def render_schema() -> str:
    """The schema file's exact text."""
    return json.dumps(manifest_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def schema_drifted(path: Path = SCHEMA_PATH) -> bool:
    """Whether the file on disk differs from what PromptSpec says."""
    try:
        return path.read_text(encoding="utf-8") != render_schema()
    except OSError:
        return True


def write_schema(path: Path = SCHEMA_PATH) -> None:
    """Regenerate the published schema file."""
    path.write_text(render_schema(), encoding="utf-8")
