"""Model file integrity: the runtime refuses to serve a file whose SHA-256 is not the expected one."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks so memory stays flat for big models."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def integrity_problem(path: Path, expected_sha256: str) -> str | None:
    """One readable line explaining why ``path`` must not be served, or None when it may be."""
    if not path.is_file():
        return f"model file not found: {path}"
    if not expected_sha256:
        return None
    actual = file_sha256(path)
    if actual != expected_sha256.strip().lower():
        return f"model file {path} has sha256 {actual}, expected {expected_sha256}; refusing to serve"
    return None
