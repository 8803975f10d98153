"""Canonical checksums of prompt manifests.

A manifest's checksum is ``sha256:<hex>`` of the RFC 8785 (JCS) canonical JSON of its spec in wire
form (camelCase keys, unset optionals left out), *without* the ``checksum`` field itself. JCS fixes
key order (UTF-16 code units), number formatting (ECMAScript) and string escaping, so the same
manifest hashes the same whether it was written as YAML by hand, stored by the API server, or
re-serialised by another language.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

from inferflux.crds.prompt import PromptSpec

PREFIX = "sha256:"


class ChecksumError(ValueError):
    """A manifest's checksum is missing or does not match its content."""


def jcs_checksum(document: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the RFC 8785 canonical JSON of ``document`` without its ``checksum`` key.

    Any JSON document sealed the same way (prompt manifests, pricing files) uses this; it raises
    ``rfc8785.CanonicalizationError`` (a ValueError) for what JSON cannot represent exactly.
    """
    unsealed = {name: value for name, value in document.items() if name != "checksum"}
    canonical: bytes = rfc8785.dumps(unsealed)
    return PREFIX + hashlib.sha256(canonical).hexdigest()


def canonical_form(spec: PromptSpec | dict[str, Any]) -> bytes:
    """The RFC 8785 canonical JSON of ``spec`` without its checksum field."""
    wire = spec.to_wire() if isinstance(spec, PromptSpec) else dict(spec)
    wire.pop("checksum", None)
    canonical: bytes = rfc8785.dumps(wire)
    return canonical


def compute_checksum(spec: PromptSpec | dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical form: what ``spec.checksum`` must say."""
    return jcs_checksum(spec.to_wire() if isinstance(spec, PromptSpec) else spec)


def verify(spec: PromptSpec) -> None:
    """Return when ``spec`` carries the checksum of its own content; raise ChecksumError otherwise."""
    if spec.checksum is None:
        raise ChecksumError("no checksum: the manifest is not sealed")
    actual = compute_checksum(spec)
    if spec.checksum != actual:
        raise ChecksumError(f"checksum mismatch: manifest says {spec.checksum}, content is {actual}")


def sealed(spec: PromptSpec) -> PromptSpec:
    """A copy of ``spec`` carrying the checksum of its content."""
    return spec.model_copy(update={"checksum": compute_checksum(spec)})
