"""Terminal spec errors: what the operator refuses to roll out, and why, as ``Stall`` values.

The API server already enforces the CRD schema and its CEL rules; these checks cover what only the
operator knows: which flags an engine accepts, the install-wide air-gapped default, whether a
source URI maps to a volume, and whether referenced Secrets exist (the one check with I/O,
done by the caller with ``referenced_secrets``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inferflux.crds.inferencemodel import Engine, InferenceModel, SecretKeyRef
from inferflux.operator.render.engine import EngineOptionError, check_extra_args
from inferflux.operator.render.volume import SourceError, model_volume
from inferflux.operator.settings import Settings
from inferflux.operator.status import Stall

UNSUPPORTED_ENGINE_OPTION = "UnsupportedEngineOption"
INVALID_SOURCE = "InvalidSource"
AIR_GAPPED = "AirGappedSource"
SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105 - a condition reason
INVALID_SPEC = "InvalidSpec"


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


def secret_stall(ref: SecretKeyRef, namespace: str, secret: Mapping[str, Any] | None) -> Stall | None:
    """A stall when the Secret (or its key) is missing. Only key names are looked at, never values."""
    if secret is None:
        return Stall(SECRET_NOT_FOUND, f"Secret {namespace}/{ref.name} not found")
    keys = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
    if ref.key not in keys:
        return Stall(SECRET_NOT_FOUND, f"Secret {namespace}/{ref.name} has no key {ref.key!r}")
    return None
