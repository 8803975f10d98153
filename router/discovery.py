"""Where the routing table comes from: a local file, or the ConfigMap the operator writes.

A `RouteSource` produces whole tables; the router swaps its reference to the current table in one
assignment (`TableHolder.swap`), so a request sees either the old table or the new one, never a mix.
A table that fails to parse is logged and ignored: the router keeps serving the last good one
(router/documents.py follows files and ConfigMaps for both the routing table and the policy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from inferflux.crds.routing import CONFIGMAP_KEY, RoutingTable
from inferflux.router.documents import (
    ConfigMapDocumentSource,
    DocumentError,
    FileDocumentSource,
    parse_document,
)

Apply = Callable[[RoutingTable], None]


class TableError(DocumentError):
    """The routing document is not a valid RoutingTable."""


def parse_table(document: bytes | str) -> RoutingTable:
    """A RoutingTable from its JSON form; anything else raises `TableError` with a one-line reason."""
    return parse_document(RoutingTable, document, "routing table", TableError)


class TableHolder:
    """The current table; replaced whole, read without locks."""

    def __init__(self, table: RoutingTable | None = None) -> None:
        self.table = table or RoutingTable()
        self.loaded = table is not None
        self.generation = 0
        self._listeners: list[Apply] = []
        self._swapped: asyncio.Event | None = None

    def swap(self, table: RoutingTable) -> None:
        """Make ``table`` current for every request that starts from now on."""
        self.table = table
        self.loaded = True
        self.generation += 1
        for listener in self._listeners:
            listener(table)
        if self._swapped is not None:  # wake everyone waiting for this change, then start afresh
            self._swapped.set()
            self._swapped = None

    async def changed(self) -> None:
        """Return at the next swap."""
        if self._swapped is None:
            self._swapped = asyncio.Event()
        await self._swapped.wait()

    def on_swap(self, listener: Apply) -> None:
        """Call ``listener`` with every new table (balancers prune state for gone endpoints)."""
        self._listeners.append(listener)


class RouteSource(Protocol):
    """Something that delivers routing tables until cancelled."""

    async def run(self, apply: Apply) -> None:
        """Call ``apply`` with the first table as soon as it is known, then with every change."""


class FileSource(FileDocumentSource[RoutingTable]):
    """The routing table from a JSON file (local mode), polled for changes."""

    def __init__(self, path: str, poll_seconds: float = 0.2) -> None:
        super().__init__(path, parse_table, "routing table", poll_seconds)


class ConfigMapSource(ConfigMapDocumentSource[RoutingTable]):
    """The operator's routing ConfigMap (key ``routes.json``), followed with a Kubernetes watch."""

    def __init__(self, namespace: str, name: str, kubeconfig: str = "") -> None:
        super().__init__(namespace, name, CONFIGMAP_KEY, parse_table, "routing table", kubeconfig)
