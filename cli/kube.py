"""The API server, read through kubernetes_asyncio with the user's kubeconfig (as kubectl would).

``get`` returns decoded JSON, asking for the server-side Table rendering when told, so that columns
are exactly the CRD's printer columns. Every failure becomes a one-line `CliError`.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import config
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from inferflux.cli.errors import CliError
from inferflux.crds.meta import GROUP, VERSION

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
JSON = "application/json"


def resource_path(plural: str, namespace: str | None, name: str | None = None) -> str:
    """The REST path of a collection (all namespaces when ``namespace`` is None) or of one object."""
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"/apis/{GROUP}/{VERSION}{where}/{plural}" + (f"/{name}" if name else "")


def kubeconfig_file(given: str | None) -> str:
    """The kubeconfig to read: ``--kubeconfig``, else the first of $KUBECONFIG, else ~/.kube/config."""
    path = (
        given
        or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
        or str(Path.home() / ".kube/config")
    )
    if not Path(path).is_file():
        raise CliError(f"no kubeconfig at {path}; pass --kubeconfig or set KUBECONFIG")
    return path


def default_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the kubeconfig's context, or ``default``."""
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig_file(kubeconfig))
    except (ConfigException, OSError, CliError):
        return "default"
    chosen = next((c for c in contexts if c["name"] == context), active) if context else active
    namespace = (chosen or {}).get("context", {}).get("namespace")
    return str(namespace) if namespace else "default"


async def _get(path: str, accept: str, kubeconfig: str | None, context: str | None) -> Any:
    configuration = Configuration()
    try:
        await config.load_kube_config(
            config_file=kubeconfig_file(kubeconfig),
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (ConfigException, OSError, TypeError) as error:
        raise CliError(f"the kubeconfig cannot be used: {error}") from None
    async with ApiClient(configuration) as api:
        try:
            response = await api.call_api(
                path, "GET", header_params={"Accept": accept}, auth_settings=["BearerToken"],
                _preload_content=False, _request_timeout=30,
            )  # fmt: skip
            answer = response[0] if isinstance(response, tuple) else response
            raw = await answer.read()
        except ApiException as error:
            raise CliError(_api_message(error.status, error.body, error.reason)) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise CliError(f"cannot reach the API server at {configuration.host}: {error}") from None
    if answer.status >= 400:
        raise CliError(_api_message(answer.status, raw, answer.reason))
    return json.loads(raw)


def get(path: str, *, table: bool, kubeconfig: str | None = None, context: str | None = None) -> Any:
    """GET ``path`` from the API server; with ``table`` the server renders the printer columns."""
    return asyncio.run(_get(path, TABLE if table else JSON, kubeconfig, context))


def _api_message(status: int, body: str | bytes | None, reason: str | None) -> str:
    """An API server error (a ``Status`` object) as one line."""
    try:
        message = json.loads(body or "{}").get("message") or reason
    except ValueError:
        message = reason
    return f"the API server answered {status}: {message}"
