"""Whole JSON documents the operator publishes, followed from a local file or a ConfigMap key.

The routing table (router/discovery.py) and the policy snapshot (router/policy/sources.py) arrive
the same way: the operator writes one JSON document into a ConfigMap key (local mode: a file), and
the router applies every new valid version as a whole. A version that fails to parse is logged and
ignored, so the router keeps the last good one.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

log = logging.getLogger("inferflux.router.documents")

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class DocumentError(ValueError):
    """The document does not parse into its model; the message is one line."""


def parse_document(model: type[M], document: bytes | str, what: str, error: type[DocumentError]) -> M:
    """``document`` (JSON) validated as ``model``, or ``error`` naming ``what`` and the first problem."""
    try:
        return model.model_validate(orjson.loads(document))
    except orjson.JSONDecodeError as problem:
        raise error(f"{what} is not JSON: {problem}") from None
    except ValidationError as problem:
        first = problem.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise error(f"{what} invalid at {where}: {first['msg']}") from None


class FileDocumentSource(Generic[T]):
    """A JSON file, re-read when its size, mtime or inode change (polled: cheap and portable)."""

    def __init__(self, path: str, parse: Callable[[bytes], T], what: str, poll_seconds: float = 0.2) -> None:
        self.path = path
        self.parse = parse
        self.what = what
        self.poll_seconds = poll_seconds

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def load(self) -> T:
        """Read and parse the file now."""
        with open(self.path, "rb") as handle:
            return self.parse(handle.read())

    async def run(self, apply: Callable[[T], None]) -> None:
        """Poll the file and apply each valid new version."""
        seen: tuple[int, int, int] | None = None
        while True:
            stamp = self._stamp()
            if stamp is not None and stamp != seen:
                seen = stamp
                try:
                    apply(self.load())
                except (DocumentError, OSError) as error:
                    log.error("keeping the previous %s: %s", self.what, error)
            await asyncio.sleep(self.poll_seconds)


class ConfigMapDocumentSource(Generic[T]):
    """One key of a ConfigMap, followed with a Kubernetes watch (list, then watch from its version)."""

    def __init__(
        self,
        namespace: str,
        name: str,
        key: str,
        parse: Callable[[str], T],
        what: str,
        kubeconfig: str = "",
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.key = key
        self.parse = parse
        self.what = what
        self.kubeconfig = kubeconfig

    async def _client(self) -> Any:
        from kubernetes_asyncio import client, config

        if self.kubeconfig:
            await config.load_kube_config(config_file=self.kubeconfig)
        else:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()

    def _apply_object(self, configmap: Any, apply: Callable[[T], None]) -> None:
        data = (configmap.data or {}) if not isinstance(configmap, dict) else configmap.get("data") or {}
        document = data.get(self.key)
        if document is None:
            log.error("ConfigMap %s/%s has no key %s", self.namespace, self.name, self.key)
            return
        try:
            apply(self.parse(document))
        except DocumentError as error:
            log.error("keeping the previous %s: %s", self.what, error)

    async def run(self, apply: Callable[[T], None]) -> None:
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
                    log.warning(
                        "%s ConfigMap watch interrupted (%s); re-listing", self.what, type(error).__name__
                    )
                    await asyncio.sleep(1)
        finally:
            await api_client.close()
