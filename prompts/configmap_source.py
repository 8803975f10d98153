"""The in-cluster prompt source: ConfigMaps the operator writes, followed with a watch.

The operator reconciles each Prompt into a ConfigMap labelled ``inferflux.io/prompt: "true"``,
owned by the Prompt, whose key ``prompt.json`` is the spec in wire form, checksum included. This
source lists those ConfigMaps, then watches them from the list's resourceVersion, so an edited
Prompt reaches the resolver in well under a second. Content whose checksum does not match is
refused (and counted); the last good version of that ConfigMap stays served. When the watch
expires (410 Gone) or the connection drops, the source lists again and carries on.

Credentials come from a kubeconfig file, or from the pod's service account when none is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from inferflux.crds.prompt import PromptSpec
from inferflux.prompts.catalog import Catalog
from inferflux.prompts.manifest import ManifestError, parse_spec
from inferflux.prompts.metrics import REJECTED_TOTAL
from inferflux.prompts.sources import accepted

log = logging.getLogger(__name__)

PROMPT_LABEL = "inferflux.io/prompt"
LABEL_SELECTOR = f"{PROMPT_LABEL}=true"
DATA_KEY = "prompt.json"
WATCH_SECONDS = 240  # a watch is re-opened (from the last resourceVersion) this often
RETRY_SECONDS = 1.0


def spec_of(config_map: dict[str, Any]) -> PromptSpec | None:
    """The verified spec a ConfigMap carries, or None (logged and counted) when it carries none."""
    meta = config_map.get("metadata", {})
    where = f"configmap {meta.get('namespace')}/{meta.get('name')}"
    text = (config_map.get("data") or {}).get(DATA_KEY)
    try:
        if text is None:
            raise ManifestError([f"no {DATA_KEY} key"])
        spec = parse_spec(json.loads(text))
    except (ManifestError, ValueError) as error:
        REJECTED_TOTAL.labels(reason="invalid").inc()
        log.warning("refusing prompt from %s: %s", where, error)
        return None
    return spec if accepted(spec, where) else None


def key_of(config_map: dict[str, Any]) -> str:
    """``namespace/name`` of a ConfigMap."""
    meta = config_map["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


class ConfigMapSource:
    """Prompts from labelled ConfigMaps in ``namespace`` (all namespaces when None)."""

    def __init__(self, kubeconfig: Path | None = None, namespace: str | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self._catalog = Catalog()
        self._synced = asyncio.Event()
        self._changed: asyncio.Queue[str] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._api: client.ApiClient | None = None

    def _ensure_running(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="prompts-configmap-watch")

    async def fetch(self, prompt_id: str, version: str | None = None) -> PromptSpec | None:
        """Answer from the watched state (waiting for the first list; the resolver's budget applies)."""
        self._ensure_running()
        await self._synced.wait()
        return self._catalog.get(prompt_id, version)

    async def top(self, count: int) -> list[str]:
        """The first ``count`` prompt ids listed."""
        self._ensure_running()
        await self._synced.wait()
        return self._catalog.ids()[:count]

    async def changes(self) -> AsyncIterator[str]:
        """Ids whose ConfigMap was added, edited or deleted."""
        self._ensure_running()
        while True:
            yield await self._changed.get()

    async def close(self) -> None:
        """Stop watching and close the connection pool."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._api is not None:
            await self._api.close()
            self._api = None

    async def _client(self) -> client.CoreV1Api:
        if self._api is None:
            if self.kubeconfig is not None:
                self._api = await config.new_client_from_config(config_file=str(self.kubeconfig))
            else:
                configuration = client.Configuration()
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                self._api = client.ApiClient(configuration)
        return client.CoreV1Api(self._api)

    async def _run(self) -> None:
        """List, then watch, forever; list again after any failure."""
        while True:
            try:
                api = await self._client()
                version: str | None = await self._list(api)
                while version is not None:
                    version = await self._watch(api, version)
            except asyncio.CancelledError:
                raise
            except ApiException as error:
                log.warning("prompt configmaps: API error %s %s", error.status, error.reason)
            except Exception as error:  # connection drops, bad config: retry, never die
                log.warning("prompt configmaps: %s: %s", type(error).__name__, error)
            await asyncio.sleep(RETRY_SECONDS)

    async def _list(self, api: client.CoreV1Api) -> str:
        """Replace the state with a fresh list; returns its resourceVersion."""
        listed = await self._list_function(api)(label_selector=LABEL_SELECTOR, _preload_content=False)
        body = json.loads(await listed.read())
        items = {key_of(item): item for item in body.get("items", [])}
        changed: set[str] = set()
        for key in self._catalog.keys() - set(items):
            changed |= self._catalog.remove(key)
        for key, item in items.items():
            changed |= self._apply("MODIFIED", key, item)
        self._announce(changed)
        self._synced.set()
        version: str = body["metadata"]["resourceVersion"]
        return version

    async def _watch(self, api: client.CoreV1Api, version: str) -> str | None:
        """Follow events from ``version``; returns where to resume, or None to list again."""
        stream = watch.Watch().stream(
            self._list_function(api),
            label_selector=LABEL_SELECTOR,
            resource_version=version,
            timeout_seconds=WATCH_SECONDS,
            allow_watch_bookmarks=True,
        )
        async with stream:
            try:
                async for event in stream:
                    raw = event["raw_object"]
                    version = raw.get("metadata", {}).get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self._announce(self._apply(event["type"], key_of(raw), raw))
            except ApiException as error:
                if error.status == 410:  # our resourceVersion is too old: list again
                    return None
                raise
        return version

    def _list_function(self, api: client.CoreV1Api) -> Any:
        """The list call (with ``watch=True``, the watch call) for the namespace, or all of them."""
        if self.namespace is None:
            return api.list_config_map_for_all_namespaces
        namespace = self.namespace

        async def namespaced(**kw: Any) -> Any:
            return await api.list_namespaced_config_map(namespace, **kw)

        namespaced.__doc__ = api.list_namespaced_config_map.__doc__  # the watch reads the return type here
        return namespaced

    def _apply(self, kind: str, key: str, item: dict[str, Any]) -> set[str]:
        if kind == "DELETED":
            return self._catalog.remove(key)
        spec = spec_of(item)
        if spec is None or self._catalog.held(key) == spec:
            return set()
        return self._catalog.put(key, spec)

    def _announce(self, changed: set[str]) -> None:
        for prompt_id in sorted(changed):
            self._changed.put_nowait(prompt_id)
