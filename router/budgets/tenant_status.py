"""Writes ``status.budget`` of a ``Tenant`` resource: the one Kubernetes write the router makes.

A JSON merge patch on the status subresource touches ``status.budget`` only; the operator owns the
rest of the status (conditions, observedGeneration) and leaves ``budget`` alone. The router's
service account needs ``patch`` on ``tenants/status`` in the operator's namespace, nothing more.
"""

from __future__ import annotations

from typing import Any

from inferflux.crds.budget import BudgetStatus
from inferflux.crds.meta import API_VERSION
from inferflux.crds.tenant import PLURAL
from inferflux.router.kube_client import CustomObjects

MERGE_PATCH = "application/merge-patch+json"


def budget_patch(status: BudgetStatus) -> dict[str, Any]:
    """The merge patch that sets ``status.budget`` and nothing else."""
    return {"status": {"budget": status.model_dump(by_alias=True, mode="json")}}


class TenantStatusWriter:
    """Patches Tenants of one namespace, with a kubeconfig or the pod's service account."""

    def __init__(self, namespace: str, kubeconfig: str | None = None) -> None:
        self.namespace = namespace
        self._client = CustomObjects(kubeconfig)

    async def __call__(self, name: str, status: BudgetStatus) -> None:
        """Set ``status.budget`` of Tenant ``name``."""
        group, version = API_VERSION.split("/")
        api = await self._client.api()
        await api.patch_namespaced_custom_object_status(
            group, version, self.namespace, PLURAL, name, budget_patch(status), _content_type=MERGE_PATCH
        )

    async def close(self) -> None:
        """Close the API client's connections."""
        await self._client.close()
