"""``inferctl up``: bad YAML is refused before anything starts; the banner has paste-ready snippets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inferflux.cli.up import banner
from inferflux.crds import InferenceModel

INFERCTL = str(Path(sys.executable).parent / "inferctl")


def up(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INFERCTL, "up", *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "kind: InferenceModel\nmetadata: {name: x}\nspec: {engine: tpu}\n",
            "InferenceModel 'x' is invalid: spec.engine",
        ),
        (
            "kind: InferenceModel\nmetadata: {name: x}\nspec: {engine: llamacpp}\n",
            "engines llamacpp and vllm need spec.source and no spec.provider",
        ),
        ("kind: [unclosed\n", "model.yaml: line 2 is not valid YAML"),
        (
            "kind: Prompt\nmetadata: {name: p}\nspec: {id: p, version: 1.0.0, slices: {a: b}}\n",
            "no InferenceModel in",
        ),
    ],
)
def test_bad_yaml_is_one_line_and_starts_nothing(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "model.yaml").write_text(content)
    result = up(tmp_path / "model.yaml", "--run-dir", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("inferctl: error: ")
    assert message in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    result = up(cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "inferctl: error: docs/examples/local: no such file or folder\n"


def test_the_banner_shows_the_endpoint_and_paste_ready_snippets() -> None:
    model = InferenceModel.model_validate(
        {"metadata": {"name": "g"}, "spec": {"engine": "provider", "servedName": "gemma3-270m",
                                             "provider": {"name": "openai", "model": "m"}}}
    )  # fmt: skip
    text = banner("http://127.0.0.1:8000", [model], [Path("docs/examples/local")])
    assert text.startswith("InferFlux is up: http://127.0.0.1:8000/v1  (models: gemma3-270m)")
    curl = next(line for line in text.splitlines() if line.strip().startswith("-d '"))
    body = json.loads(curl.strip()[4:-1])
    assert body["model"] == "gemma3-270m"
    assert body["stream"] is True
    assert 'OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="local")' in text
    assert "inferctl chat --interactive --url http://127.0.0.1:8000/v1" in text
    assert text.endswith("Watching docs/examples/local for changes. Ctrl-C stops everything.")
