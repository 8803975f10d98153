"""Ed25519 keys in every accepted encoding, and signatures over the ``sha256:<digest>`` manifest."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from inferflux.runtime.integrity import (
    IntegrityError,
    load_public_key,
    manifest,
    signature_problem,
    verify_signature,
)

DIGEST = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
KEY = Ed25519PrivateKey.generate()
RAW = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
PEM = KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
SIGNATURE = base64.b64encode(KEY.sign(manifest(DIGEST))).decode()


@pytest.mark.parametrize("material", [RAW, base64.b64encode(RAW), base64.b64encode(RAW) + b"\n", PEM])
def test_a_public_key_loads_from_raw_base64_or_pem(material: bytes) -> None:
    verify_signature(DIGEST, SIGNATURE, load_public_key(material))


def test_the_manifest_is_the_prefixed_digest() -> None:
    assert manifest(DIGEST) == b"sha256:" + DIGEST.encode()


def test_a_signature_over_another_digest_is_refused() -> None:
    with pytest.raises(IntegrityError, match="does not match sha256:a5fd3b62230a"):
        verify_signature(
            DIGEST, base64.b64encode(KEY.sign(manifest("0" * 64))).decode(), load_public_key(RAW)
        )


def test_another_publishers_key_is_refused() -> None:
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(IntegrityError):
        verify_signature(DIGEST, SIGNATURE, other)


@pytest.mark.parametrize(
    ("material", "message"),
    [
        (b"not base64 !!", "not valid base64"),
        (base64.b64encode(b"short"), "has 32 bytes, this one 5"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "cannot be parsed"),
    ],
)
def test_bad_key_material_is_named(material: bytes, message: str) -> None:
    with pytest.raises(IntegrityError, match=message):
        load_public_key(material)


def test_a_malformed_signature_is_named() -> None:
    with pytest.raises(IntegrityError, match="signature is not valid base64"):
        verify_signature(DIGEST, "***", load_public_key(RAW))


def test_signature_problem_names_what_is_wrong(tmp_path: Path) -> None:
    key_file = tmp_path / "ed25519.pub"
    key_file.write_bytes(base64.b64encode(RAW))
    assert signature_problem(DIGEST, "", "") is None, "an unsigned source has nothing to check"
    assert signature_problem(DIGEST, SIGNATURE, str(key_file)) is None
    assert "no public key file" in (signature_problem(DIGEST, SIGNATURE, "") or "")
    assert "cannot read" in (signature_problem(DIGEST, SIGNATURE, str(tmp_path / "absent")) or "")
    tampered = signature_problem("0" * 64, SIGNATURE, str(key_file)) or ""
    assert "does not match" in tampered
    assert "refusing to serve" in tampered


WEIGHTS = b"weights"
WEIGHTS_DIGEST = hashlib.sha256(WEIGHTS).hexdigest()
SIGNED = base64.b64encode(KEY.sign(manifest(WEIGHTS_DIGEST))).decode()


@pytest.fixture
def signed_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment the operator renders for signed weights: digest, key file, a good signature."""
    key_file = tmp_path / "ed25519.pub"
    key_file.write_bytes(RAW)
    monkeypatch.setenv("INFERFLUX_MODEL_SHA256", WEIGHTS_DIGEST)
    monkeypatch.setenv("INFERFLUX_MODEL_PUBLIC_KEY_FILE", str(key_file))
    monkeypatch.setenv("INFERFLUX_MODEL_SIGNATURE", SIGNED)
    return monkeypatch


def test_the_verify_entry_point_refuses_a_bad_signature_before_reading_the_file(
    tmp_path: Path, signed_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from inferflux.runtime import verify

    weights = tmp_path / "model.gguf"
    weights.write_bytes(WEIGHTS)
    signed_env.setenv("INFERFLUX_MODEL_PATH", str(weights))
    assert verify.main() == 0
    signed_env.setenv("INFERFLUX_MODEL_SIGNATURE", SIGNATURE)  # signs another digest
    assert verify.main() == 1
    assert "does not match" in capsys.readouterr().out
    signed_env.setenv("INFERFLUX_MODEL_SIGNATURE", SIGNED)
    weights.write_bytes(b"swapped weights")  # the signature holds, the file is not the signed one
    assert verify.main() == 1
    assert "expected" in capsys.readouterr().out


def test_the_fetch_init_container_checks_the_signature_before_downloading(
    tmp_path: Path, signed_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from inferflux.runtime import fetch

    source = tmp_path / "published.gguf"
    source.write_bytes(WEIGHTS)
    target = tmp_path / "volume" / "model.gguf"
    signed_env.setenv("INFERFLUX_MODEL_URI", source.as_uri())
    signed_env.setenv("INFERFLUX_MODEL_PATH", str(target))
    signed_env.setenv("INFERFLUX_MODEL_SIGNATURE", SIGNATURE)
    assert fetch.main() == 1
    assert "does not match" in capsys.readouterr().out
    assert not target.exists(), "nothing is downloaded under a bad signature"
    signed_env.setenv("INFERFLUX_MODEL_SIGNATURE", SIGNED)
    assert fetch.main() == 0
    assert target.read_bytes() == WEIGHTS


def test_the_runtime_will_not_start_on_a_bad_signature(tmp_path: Path) -> None:
    import subprocess
    import sys

    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"weights")
    key_file = tmp_path / "ed25519.pub"
    key_file.write_bytes(RAW)
    digest = hashlib.sha256(b"weights").hexdigest()
    run = subprocess.run(
        [sys.executable, "-m", "inferflux.runtime", "--model-path", str(weights), "--model-sha256", digest],
        env={"INFERFLUX_MODEL_SIGNATURE": SIGNATURE, "INFERFLUX_MODEL_PUBLIC_KEY_FILE": str(key_file)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert "signature does not match" in run.stderr
    assert "Traceback" not in run.stderr
