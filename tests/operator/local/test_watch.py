"""Edits to watched YAML are applied while running; a broken edit is reported and changes nothing."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferflux.operator.local.launcher import Commands, Launcher
from inferflux.operator.local.watch import apply_files, fingerprint, follow

STANDIN = [sys.executable, str(Path(__file__).with_name("standin_runtime.py"))]
MODEL = """\
apiVersion: inferflux.io/v1alpha1
kind: InferenceModel
metadata: {{name: gemma}}
spec:
  engine: llamacpp
  source: {{uri: "file://{weights}", sha256: {digest}}}
  engineArgs: {{contextSize: {context}}}
  rollout: {{progressDeadlineSeconds: 20}}
"""


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Launcher, Path, list[str]]]:
    weights = tmp_path / "w.gguf"
    weights.write_bytes(b"w")
    folder = tmp_path / "models"
    folder.mkdir()
    said: list[str] = []
    launcher = Launcher(
        tmp_path / "run", tmp_path / "cache", "127.0.0.1", 0, said.append, Commands(runtime=STANDIN)
    )
    launcher.run_dir.mkdir()
    (folder / "gemma.yaml").write_text(
        MODEL.format(weights=weights, digest=hashlib.sha256(b"w").hexdigest(), context=512)
    )
    yield launcher, folder, said
    launcher.stop()


def edit_then_follow(launcher: Launcher, folder: Path, old: str, new: str) -> None:
    path = folder / "gemma.yaml"
    ticks = iter([True, True, False])
    seen = fingerprint([folder])
    path.write_text(path.read_text().replace(old, new))
    follow(launcher, [folder], seen, interval=0.05, keep_going=lambda: next(ticks))


def revision(launcher: Launcher) -> str:
    return str(json.loads(launcher.routes_file.read_text())["models"]["gemma"]["revision"])


def test_the_fingerprint_changes_with_any_file(setup: tuple[Launcher, Path, list[str]]) -> None:
    _, folder, _ = setup
    before = fingerprint([folder])
    (folder / "other.yaml").write_text("kind: Prompt\n")
    assert fingerprint([folder]) != before


def test_an_edit_is_rolled_out(setup: tuple[Launcher, Path, list[str]]) -> None:
    launcher, folder, said = setup
    assert apply_files(launcher, [folder])
    first = revision(launcher)
    edit_then_follow(launcher, folder, "contextSize: 512", "contextSize: 1024")
    assert revision(launcher) != first
    assert "change detected: applying" in said
    assert said[-1] == "applied"


def test_a_broken_edit_is_reported_and_the_old_revision_keeps_serving(
    setup: tuple[Launcher, Path, list[str]],
) -> None:
    launcher, folder, said = setup
    apply_files(launcher, [folder])
    first = revision(launcher)
    child = launcher.deployments["gemma"].children[0]
    edit_then_follow(launcher, folder, "contextSize: 512", "contextSize: 5")
    assert said[-1].startswith("not applied: ")
    assert "contextSize" in said[-1]
    assert revision(launcher) == first
    assert child.alive()


def test_a_tenant_added_while_running_reaches_the_policy_file(
    setup: tuple[Launcher, Path, list[str]],
) -> None:
    launcher, folder, said = setup
    assert apply_files(launcher, [folder])
    assert json.loads(launcher.policy_file.read_text())["tenants"] == {}
    seen = fingerprint([folder])
    (folder / "tenant.yaml").write_text("kind: Tenant\nmetadata: {name: team-a}\nspec: {suspended: true}\n")
    ticks = iter([True, True, False])
    follow(launcher, [folder], seen, interval=0.05, keep_going=lambda: next(ticks))
    assert json.loads(launcher.policy_file.read_text())["tenants"]["team-a"]["suspended"] is True
    assert "applied" in said
