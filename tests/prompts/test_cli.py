"""The validate/seal/schema commands, on real files and a real git repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inferflux.prompts.cli import main, with_checksum
from inferflux.prompts.manifest import load_manifest
from inferflux.prompts.sources import EMBEDDED_DIR

from .conftest import make_spec, write_manifest


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True, capture_output=True
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one committed, sealed manifest at prompts/greeter.yaml."""
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "prompts").mkdir()
    write_manifest(tmp_path / "prompts" / "greeter.yaml", make_spec())
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "base")
    return tmp_path


def edit(path: Path, **fields: object) -> None:
    """Rewrite the manifest with ``fields`` changed, and re-seal it."""
    spec = load_manifest(path)
    write_manifest(path, make_spec(**{**spec.to_wire(), **fields}))


def test_valid_manifests_exit_zero(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(repo / "prompts"), "--base-ref", "HEAD"]) == 0
    assert "ok: 1 manifest(s) valid" in capsys.readouterr().out


def test_content_change_without_bump_fails_against_base(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(
        repo / "prompts" / "greeter.yaml",
        slices={"system": "You welcome {{name}}.", "guardrails": "Be kind."},
    )
    assert main(["validate", str(repo / "prompts"), "--base-ref", "HEAD"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    problem = "content changed without a version bump (still 1.0.0) (against HEAD)"
    assert err == [f"{repo / 'prompts' / 'greeter.yaml'}: {problem}"]


def test_breaking_change_with_minor_bump_fails_and_major_passes(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = repo / "prompts" / "greeter.yaml"
    edit(path, version="1.1.0", slices={"system": "You greet {{name}}."}, metadata={})
    assert main(["validate", str(path), "--base-ref", "HEAD"]) == 1
    assert "slice 'guardrails' removed" in capsys.readouterr().err
    edit(path, version="2.0.0", slices={"system": "You greet {{name}}."}, metadata={})
    assert main(["validate", str(path), "--base-ref", "HEAD"]) == 0


def test_renamed_file_is_compared_by_id(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = repo / "prompts" / "greeter.yaml"
    new = repo / "prompts" / "hello.yaml"
    old.rename(new)
    edit(new, variables={"type": "object", "properties": {"name": {"type": "integer"}}, "required": ["name"]})
    assert main(["validate", str(new), "--base-ref", "HEAD"]) == 1
    assert "variable 'name' changed type" in capsys.readouterr().err


def test_unknown_revision_is_one_readable_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(repo / "prompts"), "--base-ref", "no-such-ref"]) == 1
    assert (
        capsys.readouterr().err.strip() == "cannot compare with no-such-ref: unknown revision 'no-such-ref'"
    )


def test_tampered_manifest_fails_with_seal_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_manifest(tmp_path / "greeter.yaml", make_spec())
    path.write_text(path.read_text().replace("Be kind.", "Be rude."))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err
    assert f"seal {path}" in err


def test_undeclared_placeholder_and_bad_order_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = make_spec(slices={"system": "Hi {{nmae}}"}, metadata={"inferflux.io/slice-order": "system,nope"})
    assert main(["validate", str(write_manifest(tmp_path / "a.yaml", spec))]) == 1
    err = capsys.readouterr().err.splitlines()
    assert any("slice 'system' uses undeclared variable {{nmae}}" in line for line in err)
    assert any("unknown slice 'nope'" in line for line in err)


def test_invalid_variables_schema_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = make_spec(variables={"type": "objekt"}, slices={"system": "x"})
    assert main(["validate", str(write_manifest(tmp_path / "a.yaml", spec))]) == 1
    assert "variables: not a valid JSON Schema" in capsys.readouterr().err


def test_duplicate_id_and_version_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_manifest(tmp_path / "a.yaml", make_spec())
    write_manifest(tmp_path / "b.yaml", make_spec())
    assert main(["validate", str(tmp_path)]) == 1
    assert "greeter@1.0.0 is also defined in" in capsys.readouterr().err


def test_seal_writes_the_checksum_and_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("# keep me\nid: m\nversion: 1.0.0\nslices:\n  system: hello\n")
    assert main(["seal", str(path)]) == 0
    text = path.read_text()
    assert text.startswith("# keep me\n")
    assert main(["validate", str(path)]) == 0
    path.write_text(text.replace("hello", "hi"))
    assert main(["seal", str(path)]) == 0
    assert path.read_text().count("checksum:") == 1
    assert main(["validate", str(path)]) == 0


def test_with_checksum_replaces_only_the_top_level_line() -> None:
    text = "id: a\nmetadata:\n  checksum: keep\nchecksum: old\n"
    assert with_checksum(text, "sha256:new") == "id: a\nmetadata:\n  checksum: keep\nchecksum: sha256:new\n"


def test_seal_of_an_invalid_manifest_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: a\n")
    assert main(["seal", str(path)]) == 1
    assert f"{path}: version: Field required" in capsys.readouterr().err


def test_schema_check_passes_on_the_repository() -> None:
    assert main(["schema", "--check"]) == 0


def test_module_entry_point_runs(tmp_path: Path) -> None:
    shutil.copytree(EMBEDDED_DIR, tmp_path / "m")
    (tmp_path / "m" / "voice.yaml").write_text(
        (tmp_path / "m" / "voice.yaml").read_text().replace("plain", "fancy")
    )
    done = subprocess.run(
        [sys.executable, "-m", "inferflux.prompts", "validate", "m"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("m/voice.yaml: checksum mismatch")
    assert "Traceback" not in done.stderr
