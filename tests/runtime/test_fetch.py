"""The fetch init container: a verified model file in the volume, or one readable line and no file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inferflux.runtime.fetch import FetchError, hub_url


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferflux.runtime.fetch"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )


@pytest.fixture
def weights(tmp_path: Path) -> tuple[Path, str]:
    source = tmp_path / "source" / "model.gguf"
    source.parent.mkdir()
    source.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    return source, hashlib.sha256(source.read_bytes()).hexdigest()


def test_verified_file_lands_in_the_volume(tmp_path: Path, weights: tuple[Path, str]) -> None:
    source, digest = weights
    target = tmp_path / "models" / "model.gguf"
    env = {"INFERFLUX_MODEL_URI": source.as_uri(), "INFERFLUX_MODEL_SHA256": digest}
    done = _run({**env, "INFERFLUX_MODEL_PATH": str(target)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert target.read_bytes() == source.read_bytes()
    again = _run({**env, "INFERFLUX_MODEL_PATH": str(target)})  # a restarted pod reuses the file
    assert "reused" in again.stdout


def test_wrong_digest_leaves_nothing_and_says_why(tmp_path: Path, weights: tuple[Path, str]) -> None:
    source, _ = weights
    target = tmp_path / "models" / "model.gguf"
    done = _run(
        {
            "INFERFLUX_MODEL_URI": source.as_uri(),
            "INFERFLUX_MODEL_SHA256": "0" * 64,
            "INFERFLUX_MODEL_PATH": str(target),
        }
    )
    assert done.returncode == 1
    assert done.stdout.count("\n") == 1
    assert "sha256 mismatch" in done.stdout
    assert "Traceback" not in done.stderr
    assert list(target.parent.iterdir()) == []


def test_missing_settings_exit_2() -> None:
    done = _run({})
    assert done.returncode == 2
    assert "INFERFLUX_MODEL_URI" in done.stdout


def test_hub_url() -> None:
    assert hub_url("hf://google/gemma/m.gguf") == "https://huggingface.co/google/gemma/resolve/main/m.gguf"
    with pytest.raises(FetchError, match="hf://<org>/<repo>/<file>"):
        hub_url("hf://google")
