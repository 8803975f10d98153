"""``inferctl prompts validate|diff`` on manifests in a real git repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from inferflux.crds.prompt import PromptSpec
from inferflux.prompts.checksum import compute_checksum

INFERCTL = str(Path(sys.executable).parent / "inferctl")
BASE = {
    "id": "greeter",
    "version": "1.0.0",
    "slices": {"system": "Greet the user.\nBe brief."},
    "variables": {"type": "object", "properties": {"name": {"type": "string"}}},
}


def write_sealed(path: Path, doc: dict[str, object]) -> None:
    spec = PromptSpec.model_validate(doc)
    path.write_text(yaml.safe_dump({**doc, "checksum": compute_checksum(spec)}))


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True, capture_output=True
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "prompts").mkdir()
    git(tmp_path, "init", "-q")
    write_sealed(tmp_path / "prompts/greeter.yaml", BASE)
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    return tmp_path


def inferctl(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([INFERCTL, "prompts", *args], capture_output=True, text=True, timeout=60, cwd=repo)


def test_diff_shows_the_version_step_and_the_changed_slice(repo: Path) -> None:
    write_sealed(
        repo / "prompts/greeter.yaml",
        {**BASE, "version": "1.0.1", "slices": {"system": "Greet the user.\nBe warm."}},
    )
    result = inferctl(repo, "diff", "prompts")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "greeter: 1.0.0 -> 1.0.1"
    assert "  -Be brief." in lines
    assert "  +Be warm." in lines
    assert not any("breaking" in line for line in lines)


def test_diff_flags_a_breaking_change_without_a_major_bump(repo: Path) -> None:
    write_sealed(repo / "prompts/greeter.yaml", {**BASE, "version": "1.1.0", "variables": {"type": "object"}})
    result = inferctl(repo, "diff", "prompts")
    assert result.returncode == 1
    assert "  breaking: variable 'name' removed" in result.stdout
    assert "  problem: breaking change without a major version bump (1.0.0 -> 1.1.0)" in result.stdout


def test_diff_of_an_unchanged_and_a_new_prompt(repo: Path) -> None:
    write_sealed(repo / "prompts/other.yaml", {**BASE, "id": "other"})
    result = inferctl(repo, "diff", "prompts")
    assert result.stdout.splitlines() == ["greeter: unchanged (1.0.0)", "other: new at 1.0.0"]


def test_diff_against_an_unknown_revision_is_one_line(repo: Path) -> None:
    result = inferctl(repo, "diff", "prompts", "--base-ref", "nope")
    assert result.returncode == 1
    assert result.stderr == "inferctl: error: cannot read prompts at nope: unknown revision 'nope'\n"


def test_validate_runs_the_prompt_checks(repo: Path) -> None:
    assert inferctl(repo, "validate", "prompts").stdout == "ok: 1 manifest(s) valid\n"
    text = (repo / "prompts/greeter.yaml").read_text().replace("Be brief.", "Be curt.")
    (repo / "prompts/greeter.yaml").write_text(text)
    result = inferctl(repo, "validate", "prompts")
    assert result.returncode == 1
    assert "checksum" in result.stderr
