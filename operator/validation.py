"""Terminal spec errors: what the operator refuses to roll out, and why, as ``Stall`` values.

The API server already enforces the CRD schema and its CEL rules; these checks cover what only the
operator knows: which flags an engine accepts, the install-wide air-gapped default, whether a
source URI maps to a volume, and whether referenced Secrets exist (the one check with I/O,
done by the caller with ``referenced_secrets``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from inferflux.crds.inferencemodel import Engine, InferenceModel, SecretKeyRef
from inferflux.operator.render.engine import EngineOptionError, check_extra_args
from inferflux.operator.render.volume import SourceError, model_volume
from inferflux.operator.settings import Settings
from inferflux.operator.status import Stall
from inferflux.runtime.integrity import IntegrityError, load_public_key, verify_signature

UNSUPPORTED_ENGINE_OPTION = "UnsupportedEngineOption"
INVALID_SOURCE = "InvalidSource"
AIR_GAPPED = "AirGappedSource"
SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105 - a condition reason
INVALID_SPEC = "InvalidSpec"
SIGNATURE_INVALID = "SignatureInvalid"
# Stalls that a change elsewhere (a Secret created or corrected) can lift: checked again now and then.
RECHECKED = frozenset({SECRET_NOT_FOUND, SIGNATURE_INVALID})


def spec_stall(model: InferenceModel, settings: Settings) -> Stall | None:
    """The first terminal error in ``model``'s spec that needs no API call, or None."""
    try:
        check_extra_args(model)
    except EngineOptionError as error:
        return Stall(UNSUPPORTED_ENGINE_OPTION, str(error))
    source = model.spec.source
    if source is None:
        return None
    if (model.spec.air_gapped or settings.air_gapped) and source.uri.startswith("hf://"):
        return Stall(AIR_GAPPED, "hf:// sources need the internet; this install is air-gapped")
    try:
        model_volume(source, settings.runtime_image)
    except SourceError as error:
        return Stall(INVALID_SOURCE, str(error))
    return None


def referenced_secrets(model: InferenceModel) -> list[SecretKeyRef]:
    """Secret keys the spec refers to, all in the model's namespace."""
    refs = []
    spec = model.spec
    if spec.engine == Engine.PROVIDER and spec.provider and spec.provider.api_key_secret_ref:
        refs.append(spec.provider.api_key_secret_ref)
    if spec.source and spec.source.signature:
        refs.append(spec.source.signature.public_key_secret_ref)
    return refs


def secret_value(secret: Mapping[str, Any], key: str) -> bytes | None:
    """The bytes of one Secret key (``data`` is base64, ``stringData`` plain), or None if unreadable."""
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key]).encode()
    try:
        return base64.b64decode((secret.get("data") or {}).get(key, ""), validate=True)
    except (binascii.Error, ValueError):
        return None


def signature_stall(model: InferenceModel, ref: SecretKeyRef, secret: Mapping[str, Any]) -> Stall | None:
    """A stall when ``ref`` holds the model's signing key and the signature does not verify with it.

    The signature covers ``sha256:<spec.source.sha256>``; the pods check the file against that
    digest, so a signature that verifies here means only the signed weights can be served.
    """
    source = model.spec.source
    if source is None or source.signature is None or source.signature.public_key_secret_ref != ref:
        return None
    material = secret_value(secret, ref.key)
    try:
        if material is None:
            raise IntegrityError(f"key {ref.key!r} of Secret {ref.name} is not valid base64")
        verify_signature(source.sha256, source.signature.value, load_public_key(material))
    except IntegrityError as error:
        return Stall(SIGNATURE_INVALID, f"spec.source.signature: {error}")
    return None


def secret_stall(ref: SecretKeyRef, namespace: str, secret: Mapping[str, Any] | None) -> Stall | None:
    """A stall when the Secret (or its key) is missing. Only key names are looked at, never values."""
    if secret is None:
        return Stall(SECRET_NOT_FOUND, f"Secret {namespace}/{ref.name} not found")
    keys = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
    if ref.key not in keys:
        return Stall(SECRET_NOT_FOUND, f"Secret {namespace}/{ref.name} has no key {ref.key!r}")
    return None
