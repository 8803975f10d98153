"""The router's Kubernetes API client: a kubeconfig's identity, or the pod's service account."""

from __future__ import annotations

from typing import Any


async def custom_objects_api(kubeconfig: str | None) -> Any:
    """A ``CustomObjectsApi`` for ``kubeconfig`` (empty or None: in-cluster); close its
    ``api_client`` when done. Imported lazily: local mode never loads the Kubernetes client."""
    from kubernetes_asyncio import client, config

    if kubeconfig:
        api_client = await config.new_client_from_config(config_file=kubeconfig)
    else:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        api_client = client.ApiClient()
    return client.CustomObjectsApi(api_client)
