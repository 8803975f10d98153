"""The router's Kubernetes API client: a kubeconfig's identity, or the pod's service account."""

from __future__ import annotations

from typing import Any


class CustomObjects:
    """A ``CustomObjectsApi``, made on first use (local mode never loads the Kubernetes client)."""

    def __init__(self, kubeconfig: str | None = None) -> None:
        self.kubeconfig = kubeconfig  # empty or None: in-cluster
        self._api: Any = None

    async def api(self) -> Any:
        """The client, connected on the first call."""
        if self._api is None:
            from kubernetes_asyncio import client, config

            if self.kubeconfig:
                api_client = await config.new_client_from_config(config_file=self.kubeconfig)
            else:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
                api_client = client.ApiClient()
            self._api = client.CustomObjectsApi(api_client)
        return self._api

    async def close(self) -> None:
        """Close the client's connections, if it was ever made."""
        if self._api is not None:
            await self._api.api_client.close()
