"""The Pod Security "restricted" profile, applied to every pod the operator renders.

Pods run as a fixed non-root user (the runtime image's ``inferflux`` user, 10001) with the default
seccomp profile; containers drop every capability, cannot escalate, and get a read-only root
filesystem with writable scratch space mounted where engines expect it.
"""

from __future__ import annotations

from typing import Any

NONROOT_UID = 10001


def pod_security_context() -> dict[str, Any]:
    """Pod-level settings required by the restricted profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": NONROOT_UID,
        "runAsGroup": NONROOT_UID,
        "fsGroup": NONROOT_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Container-level settings required by the restricted profile, plus a read-only root."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


# A per-pod emptyDir under the read-only root filesystem, not a shared host directory.
SCRATCH_DIR = "/tmp"  # noqa: S108
SHM_DIR = "/dev/shm"  # noqa: S108
