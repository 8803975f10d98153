"""Terminal spec errors."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from inferflux.crds.inferencemodel import InferenceModel, SecretKeyRef
from inferflux.operator.settings import Settings
from inferflux.operator.validation import (
    AIR_GAPPED,
    INVALID_SOURCE,
    SECRET_NOT_FOUND,
    SIGNATURE_INVALID,
    UNSUPPORTED_ENGINE_OPTION,
    referenced_secrets,
    secret_stall,
    signature_stall,
    spec_stall,
)
from inferflux.runtime.integrity import manifest
from tests.operator.conftest import ModelFactory

SIGNATURE = {"value": "A" * 88, "publicKeySecretRef": {"name": "signing", "key": "ed25519.pub"}}


def test_samples_have_no_terminal_error(model: ModelFactory, settings: Settings) -> None:
    for name in ("llamacpp-model", "vllm-model", "provider-model"):
        assert spec_stall(model(name), settings) is None


def test_an_unknown_engine_flag_stalls(model: ModelFactory, settings: Settings) -> None:
    stall = spec_stall(model(spec={"engineArgs": {"extraArgs": ["--port", "1"]}}), settings)
    assert stall is not None
    assert stall.reason == UNSUPPORTED_ENGINE_OPTION
    assert "--port" in stall.message


def test_hf_sources_stall_when_the_install_is_air_gapped(model: ModelFactory) -> None:
    m = model(spec={"source": {"uri": "hf://org/repo/m.gguf"}})
    assert spec_stall(m, Settings(air_gapped=False)) is None
    stall = spec_stall(m, Settings(air_gapped=True))
    assert stall is not None
    assert stall.reason == AIR_GAPPED


def test_a_source_outside_its_volume_stalls(model: ModelFactory, settings: Settings) -> None:
    stall = spec_stall(model(spec={"source": {"uri": "pvc://claim"}}), settings)
    assert stall is not None
    assert stall.reason == INVALID_SOURCE


def test_referenced_secrets(model: ModelFactory) -> None:
    assert referenced_secrets(model("provider-model")) == [
        SecretKeyRef(name="openai-credentials", key="api-key")
    ]
    signed = model(spec={"source": {"signature": SIGNATURE}})
    assert referenced_secrets(signed) == [SecretKeyRef(name="signing", key="ed25519.pub")]
    assert referenced_secrets(model()) == []


def test_secret_checks_look_at_key_names_only() -> None:
    ref = SecretKeyRef(name="creds", key="api-key")
    missing = secret_stall(ref, "team-a", None)
    assert missing is not None
    assert missing.reason == SECRET_NOT_FOUND
    assert missing.message == "Secret team-a/creds not found"
    no_key = secret_stall(ref, "team-a", {"data": {"other": "c2VjcmV0"}})
    assert no_key is not None
    assert "no key 'api-key'" in no_key.message
    assert "c2VjcmV0" not in no_key.message
    assert secret_stall(ref, "team-a", {"data": {"api-key": "c2VjcmV0"}}) is None


def _signed_model(model: ModelFactory, digest: str, signature: bytes) -> InferenceModel:
    ref = {"name": "signing", "key": "ed25519.pub"}
    value = base64.b64encode(signature).decode()
    return model(
        spec={"source": {"sha256": digest, "signature": {"value": value, "publicKeySecretRef": ref}}}
    )


def test_a_signature_is_verified_against_the_key_in_its_secret(model: ModelFactory) -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    secret = {"data": {"ed25519.pub": base64.b64encode(base64.b64encode(raw)).decode()}}
    ref = SecretKeyRef(name="signing", key="ed25519.pub")
    digest = "ab" * 32
    good = _signed_model(model, digest, key.sign(manifest(digest)))
    assert signature_stall(good, ref, secret) is None
    assert signature_stall(good, SecretKeyRef(name="other", key="k"), {}) is None, "not its key Secret"

    forged = _signed_model(model, digest, key.sign(manifest("cd" * 32)))
    stall = signature_stall(forged, ref, secret)
    assert stall is not None
    assert stall.reason == SIGNATURE_INVALID
    assert "does not match sha256:abababababab" in stall.message

    other_key = {"stringData": {"ed25519.pub": base64.b64encode(raw[::-1]).decode()}}
    assert signature_stall(good, ref, other_key) is not None
    garbage = signature_stall(good, ref, {"data": {"ed25519.pub": "!!not base64"}})
    assert garbage is not None
    assert "not valid base64" in garbage.message
