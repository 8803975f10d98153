"""``inferctl pull`` against a real local HTTP server, through the installed ``inferctl`` script."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

INFERCTL = str(Path(sys.executable).parent / "inferctl")
PAYLOAD = os.urandom(3 * (1 << 20) + 12345)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


def inferctl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([INFERCTL, *map(str, args)], capture_output=True, text=True, timeout=60)


@pytest.fixture
def weights(http_files: Any) -> str:
    (http_files.root / "tiny.gguf").write_bytes(PAYLOAD)
    return f"{http_files.url}/tiny.gguf"


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The whole of stderr, which must be one ``inferctl: error:`` line and no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("inferctl")]
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_pull_with_good_digest_and_signature_writes_the_file_and_shows_progress(
    weights: str, signer: Any, tmp_path: Path
) -> None:
    dest = tmp_path / "models"
    result = inferctl(
        "pull", weights, "--sha256", DIGEST, "--signature", signer.sign(DIGEST),
        "--public-key", signer.public_key_file, "--dest", dest,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (dest / "tiny.gguf").read_bytes() == PAYLOAD
    assert "100% [" in result.stderr
    assert "MiB" in result.stderr
    assert "signature ok" in result.stdout
    assert sorted(p.name for p in dest.iterdir()) == ["tiny.gguf"]


def test_pull_with_wrong_digest_fails_in_one_line_and_leaves_nothing(weights: str, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    wrong = hashlib.sha256(b"something else").hexdigest()
    line = one_error_line(inferctl("pull", weights, "--sha256", wrong, "--dest", dest))
    assert f"sha256 mismatch for tiny.gguf: expected {wrong}, got {DIGEST}" in line
    assert list(dest.iterdir()) == []


def test_pull_with_wrong_signature_fails_in_one_line_and_leaves_nothing(
    weights: str, signer: Any, tmp_path: Path
) -> None:
    dest = tmp_path / "models"
    other_digest = hashlib.sha256(b"other weights").hexdigest()
    result = inferctl(
        "pull", weights, "--sha256", DIGEST, "--signature", signer.sign(other_digest),
        "--public-key", signer.public_key_file, "--dest", dest,
    )  # fmt: skip
    assert "Ed25519 signature does not match" in one_error_line(result)
    assert not dest.exists() or list(dest.iterdir()) == []


def test_a_truncated_download_is_refused_and_removed(http_files: Any, tmp_path: Path) -> None:
    # Content-Length promises more than arrives: the server hangs up mid-body.
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_half() -> None:
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
        conn.close()

    threading.Thread(target=serve_half, daemon=True).start()
    dest = tmp_path / "models"
    line = one_error_line(
        inferctl("pull", f"http://127.0.0.1:{port}/cut.gguf", "--sha256", DIGEST, "--dest", dest)
    )
    listener.close()
    assert "cut.gguf" not in {p.name for p in dest.iterdir()}
    assert list(dest.iterdir()) == []
    assert "1000" in line


def test_pull_from_an_inference_model_yaml_uses_its_source(weights: str, signer: Any, tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text(
        "apiVersion: inferflux.io/v1alpha1\nkind: InferenceModel\nmetadata: {name: tiny}\n"
        f"spec:\n  engine: llamacpp\n  source:\n    uri: {weights}\n    sha256: {DIGEST}\n"
        f"    signature:\n      value: {signer.sign(DIGEST)}\n"
        "      publicKeySecretRef: {name: publisher, key: ed25519.pub}\n"
    )
    out = tmp_path / "exact" / "weights.bin"
    result = inferctl("pull", "-f", model, "--public-key", signer.public_key_file, "-o", out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == PAYLOAD
    again = inferctl("pull", "-f", model, "--public-key", signer.public_key_file, "-o", out)
    assert again.returncode == 0
    assert again.stdout.startswith("already present")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["pull", "http://127.0.0.1:9/x.gguf", "--sha256", "abc"], "--sha256 of 64 hex digits"),
        (["pull", "ftp://host/x.gguf", "--sha256", DIGEST], "give a source URI"),
        (["pull", "http://127.0.0.1:9/x.gguf", "--sha256", DIGEST], "cannot reach http://127.0.0.1:9/x.gguf"),
        (
            ["pull", "http://127.0.0.1:9/x.gguf", "--sha256", DIGEST, "--signature", "AAAA"],
            "needs --public-key",
        ),
        (["pull", "-f", "/nonexistent.yaml"], "/nonexistent.yaml: no such file"),
    ],
)
def test_bad_input_is_one_readable_line(args: list[str], expected: str, tmp_path: Path) -> None:
    assert expected in one_error_line(inferctl(*args, "--dest", tmp_path))


def test_http_errors_are_reported_with_their_status(http_files: Any, tmp_path: Path) -> None:
    line = one_error_line(
        inferctl("pull", f"{http_files.url}/missing.gguf", "--sha256", DIGEST, "--dest", tmp_path)
    )
    assert "answered HTTP 404" in line
