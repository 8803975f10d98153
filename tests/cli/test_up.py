"""``inferctl up``: bad YAML is refused before anything starts; the banner has paste-ready snippets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from inferflux.cli.up import banner
from inferflux.crds import InferenceModel
from inferflux.operator.local.auth import LocalAuth

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
    assert "InferFlux is up: http://127.0.0.1:8000/v1  (models: gemma3-270m)" in text.splitlines()
    curl = next(line for line in text.splitlines() if line.strip().startswith("-d '"))
    body = json.loads(curl.strip()[4:-1])
    assert body["model"] == "gemma3-270m"
    assert body["stream"] is True
    assert 'OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="local")' in text
    assert "inferctl chat --interactive --url http://127.0.0.1:8000/v1" in text
    assert text.endswith("Watching docs/examples/local for changes. Ctrl-C stops everything.")


PROVIDER_YAML = (
    "kind: InferenceModel\nmetadata: {name: g}\n"
    "spec: {engine: provider, servedName: gemma3-270m, provider: {name: openai, model: m}}\n"
)


def test_open_on_a_network_address_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text(PROVIDER_YAML)
    result = up(tmp_path / "model.yaml", "--host", "0.0.0.0", "--run-dir", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("inferctl: error: refusing to serve 0.0.0.0 with auth off")
    assert "--allow-open" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_bad_tenant_is_refused_before_anything_starts(tmp_path: Path) -> None:
    tenant = "kind: Tenant\nmetadata: {name: t}\nspec: {models: ['*', x]}\n"
    (tmp_path / "all.yaml").write_text(PROVIDER_YAML + "---\n" + tenant)
    result = up(tmp_path / "all.yaml", "--run-dir", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 1
    assert "Tenant 't' is invalid: spec: models: '*' (every model) stands alone" in result.stderr
    assert not (tmp_path / "run").exists()


def _model() -> InferenceModel:
    return InferenceModel.model_validate(yaml.safe_load(PROVIDER_YAML))


def test_the_banner_says_loudly_that_auth_is_off() -> None:
    text = banner("http://127.0.0.1:8000", [_model()], None)
    first = text.splitlines()[0]
    assert "AUTH IS OFF" in first
    assert "anyone who can reach http://127.0.0.1:8000 may use every model" in first
    assert "inferctl up --auth" in text
    assert "Authorization" not in text


def test_the_banner_with_auth_points_at_the_admin_token() -> None:
    token = Path("/run/x/auth/admin-token")
    text = banner("http://127.0.0.1:8000", [_model()], None, LocalAuth(enabled=True, admin_port=8101), token)
    assert "AUTH IS OFF" not in text
    assert "Auth is on" in text
    assert f"admin API: http://127.0.0.1:8101  (bearer token in {token}" in text
    assert '-H "Authorization: Bearer $INFERFLUX_API_KEY"' in text
    assert 'api_key=os.environ["INFERFLUX_API_KEY"]' in text
