"""Where the operator's half of the policy comes from: a snapshot file, or the ConfigMap it writes.

The operator compiles the Tenant resources into one `PolicySnapshot` (crds/policy.py) and publishes
it as JSON in the ConfigMap ``inferflux-policy``, key ``policy.json`` (local mode: a file). Each new
valid version goes to ``PolicyHolder.set_snapshot``; one that does not parse is logged and ignored,
so the router keeps enforcing the last good snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from inferflux.crds.policy import CONFIGMAP_KEY, PolicySnapshot
from inferflux.router.documents import (
    ConfigMapDocumentSource,
    DocumentError,
    FileDocumentSource,
    parse_document,
)

ApplySnapshot = Callable[[PolicySnapshot], None]
WHAT = "policy snapshot"


class SnapshotError(DocumentError):
    """The policy document is not a valid PolicySnapshot."""


def parse_snapshot(document: bytes | str) -> PolicySnapshot:
    """A PolicySnapshot from its JSON form; anything else raises `SnapshotError` with a one-line reason."""
    return parse_document(PolicySnapshot, document, WHAT, SnapshotError)


class SnapshotSource(Protocol):
    """Something that delivers policy snapshots until cancelled."""

    async def run(self, apply: ApplySnapshot) -> None:
        """Call ``apply`` with the first snapshot as soon as it is known, then with every change."""


class PolicyFileSource(FileDocumentSource[PolicySnapshot]):
    """The snapshot from a JSON file (``INFERFLUX_POLICY_FILE``), polled for changes."""

    def __init__(self, path: str, poll_seconds: float = 0.2) -> None:
        super().__init__(path, parse_snapshot, WHAT, poll_seconds)


class PolicyConfigMapSource(ConfigMapDocumentSource[PolicySnapshot]):
    """The operator's policy ConfigMap (``INFERFLUX_POLICY_CONFIGMAP``), followed with a watch."""

    def __init__(self, namespace: str, name: str, kubeconfig: str = "") -> None:
        super().__init__(namespace, name, CONFIGMAP_KEY, parse_snapshot, WHAT, kubeconfig)
