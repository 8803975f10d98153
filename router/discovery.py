"""Where the routing table comes from: a local file, or the ConfigMap the operator writes.

A `RouteSource` produces whole tables; the router swaps its reference to the current table in one
assignment (`TableHolder.swap`), so a request sees either the old table or the new one, never a mix.
A table that fails to parse is logged and ignored: the router keeps serving the last good one.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from inferflux.crds.routing import CONFIGMAP_KEY, RoutingTable

log = logging.getLogger("inferflux.router.discovery")

Apply = Callable[[RoutingTable], None]


class TableError(ValueError):
    """The routing document is not a valid RoutingTable."""


def parse_table(document: bytes | str) -> RoutingTable:
    """A RoutingTable from its JSON form; anything else raises `TableError` with a one-line reason."""
    try:
        return RoutingTable.model_validate(orjson.loads(document))
    except orjson.JSONDecodeError as error:
        raise TableError(f"routing table is not JSON: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise TableError(f"routing table invalid at {where}: {first['msg']}") from None


class TableHolder:
    """The current table; replaced whole, read without locks."""

    def __init__(self, table: RoutingTable | None = None) -> None:
        self.table = table or RoutingTable()
        self.loaded = table is not None
        self.generation = 0
        self._listeners: list[Apply] = []

    def swap(self, table: RoutingTable) -> None:
        """Make ``table`` current for every request that starts from now on."""
        self.table = table
        self.loaded = True
        self.generation += 1
        for listener in self._listeners:
            listener(table)

    def on_swap(self, listener: Apply) -> None:
        """Call ``listener`` with every new table (balancers prune state for gone endpoints)."""
        self._listeners.append(listener)


class RouteSource(Protocol):
    """Something that delivers routing tables until cancelled."""

    async def run(self, apply: Apply) -> None:
        """Call ``apply`` with the first table as soon as it is known, then with every change."""


class FileSource:
    """A JSON file, re-read when its size, mtime or inode change (polled: cheap and portable)."""

    def __init__(self, path: str, poll_seconds: float = 0.2) -> None:
        self.path = path
        self.poll_seconds = poll_seconds

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def load(self) -> RoutingTable:
        """Read and parse the file now."""
        with open(self.path, "rb") as handle:
            return parse_table(handle.read())

    async def run(self, apply: Apply) -> None:
        """Poll the file and apply each valid new version."""
        seen: tuple[int, int, int] | None = None
        while True:
            stamp = self._stamp()
            if stamp is not None and stamp != seen:
                seen = stamp
                try:
                    apply(self.load())
                except (TableError, OSError) as error:
                    log.error("keeping the previous routing table: %s", error)
            await asyncio.sleep(self.poll_seconds)


class ConfigMapSource:
    """The operator's ConfigMap, followed with a Kubernetes watch (list, then watch from its version)."""

    def __init__(self, namespace: str, name: str, kubeconfig: str = "") -> None:
        self.namespace = namespace
        self.name = name
        self.kubeconfig = kubeconfig

    async def _client(self) -> Any:
        from kubernetes_asyncio import client, config

        if self.kubeconfig:
            await config.load_kube_config(config_file=self.kubeconfig)
        else:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()

    def _apply_object(self, configmap: Any, apply: Apply) -> None:
        data = (configmap.data or {}) if not isinstance(configmap, dict) else configmap.get("data") or {}
        document = data.get(CONFIGMAP_KEY)
        if document is None:
            log.error("ConfigMap %s/%s has no key %s", self.namespace, self.name, CONFIGMAP_KEY)
            return
        try:
            apply(parse_table(document))
        except TableError as error:
            log.error("keeping the previous routing table: %s", error)

    async def run(self, apply: Apply) -> None:
        """List and watch forever, re-listing after any watch error."""
        from kubernetes_asyncio import client, watch

        api_client = await self._client()
        core = client.CoreV1Api(api_client)
        selector = f"metadata.name={self.name}"
        try:
            while True:
                try:
                    listing = await core.list_namespaced_config_map(self.namespace, field_selector=selector)
                    for item in listing.items:
                        self._apply_object(item, apply)
                    stream = watch.Watch().stream(
                        core.list_namespaced_config_map,
                        self.namespace,
                        field_selector=selector,
                        resource_version=listing.metadata.resource_version,
                        timeout_seconds=300,
                    )
                    async for event in stream:
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._apply_object(event["object"], apply)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # the API server restarts, the watch expires: list again
                    log.warning("routing ConfigMap watch interrupted (%s); re-listing", type(error).__name__)
                    await asyncio.sleep(1)
        finally:
            await api_client.close()
