"""API keys for providers: read from Kubernetes Secrets (or, locally, env vars and files), never logged.

A route names a Secret key (``apiKeySecretRef``), never the key itself. In a cluster the router
reads the Secret with its service account through ``kubernetes_asyncio``, caches the value, and
re-reads it after ``ttl_seconds`` or as soon as the provider rejects the key (``invalidate``), so a
rotated key is picked up without a restart. In local mode the same reference resolves to the env
var ``INFERFLUX_PROVIDER_KEY_<NAME>_<KEY>`` (upper case, every other character ``_``), or to the file
``<INFERFLUX_PROVIDER_KEYS_DIR>/<name>/<key>`` (the layout of a mounted Secret volume).

Every value handed out is registered with the log redactor, which replaces it with ``***`` in every
log record of the process (the SDKs' and httpx's included).
"""

from __future__ import annotations

import base64
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from inferflux.crds.inferencemodel import SecretKeyRef
from inferflux.router.errors import ErrorCode, UpstreamError

ENV_PREFIX = "INFERFLUX_PROVIDER_KEY_"
KEYS_DIR_ENV = "INFERFLUX_PROVIDER_KEYS_DIR"
REDACTED = "***"
_MIN_SECRET_LENGTH = 4  # shorter "secrets" would redact ordinary words


class SecretSource(Protocol):
    """Where API keys come from."""

    async def get(self, namespace: str, ref: SecretKeyRef) -> str:
        """The value of ``ref`` in ``namespace``; raises `UpstreamError` (unavailable) when missing."""
        ...

    def invalidate(self, namespace: str, ref: SecretKeyRef) -> None:
        """Forget a cached value (the provider rejected it; it may have been rotated)."""
        ...


def env_name(ref: SecretKeyRef) -> str:
    """The env var holding ``ref`` in local mode: ``INFERFLUX_PROVIDER_KEY_<NAME>_<KEY>``."""
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", f"{ref.name}_{ref.key}".upper())


def missing(namespace: str, ref: SecretKeyRef, why: str) -> UpstreamError:
    """The error for a key that cannot be read; it names the reference, never a value."""
    where = f"{namespace}/{ref.name}" if namespace else ref.name
    return UpstreamError(ErrorCode.UNAVAILABLE, f"provider API key {where}[{ref.key}] is unavailable: {why}")


class LocalSecrets:
    """Keys from env vars or a directory of files, for local mode and tests."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    async def get(self, namespace: str, ref: SecretKeyRef) -> str:
        """The env var first, then the keys directory."""
        value = self._environ.get(env_name(ref), "")
        keys_dir = self._environ.get(KEYS_DIR_ENV, "")
        if not value and keys_dir:
            path = Path(keys_dir) / ref.name / ref.key
            value = path.read_text().strip() if path.is_file() else ""
        if not value:
            raise missing(namespace, ref, f"set {env_name(ref)} or {KEYS_DIR_ENV}")
        return register(value)

    def invalidate(self, namespace: str, ref: SecretKeyRef) -> None:
        """Nothing is cached: env and files are read on every call."""


class KubeSecrets:
    """Keys read from Kubernetes Secrets with the router's service account, cached for ``ttl_seconds``."""

    def __init__(
        self, core_v1: Any, ttl_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._api = core_v1  # a kubernetes_asyncio CoreV1Api
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}

    async def _data(self, namespace: str, name: str) -> dict[str, str]:
        """The decoded data of one Secret, from the cache while fresh."""
        cached = self._cache.get((namespace, name))
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        secret = await self._api.read_namespaced_secret(name, namespace)
        raw: dict[str, str] = secret.data or {}
        data = {key: base64.b64decode(value).decode().strip() for key, value in raw.items()}
        self._cache[(namespace, name)] = (self._clock(), data)
        return data

    async def get(self, namespace: str, ref: SecretKeyRef) -> str:
        """The value of ``ref``; API failures become `UpstreamError` without the Secret's content."""
        try:
            data = await self._data(namespace, ref.name)
        except Exception as error:
            why = getattr(error, "status", None) or type(error).__name__
            raise missing(namespace, ref, f"reading the Secret failed ({why})") from None
        value = data.get(ref.key, "")
        if not value:
            raise missing(namespace, ref, "no such key in the Secret")
        return register(value)

    def invalidate(self, namespace: str, ref: SecretKeyRef) -> None:
        """Drop the cached Secret so the next call reads it again."""
        self._cache.pop((namespace, ref.name), None)


class ClusterSecrets:
    """`KubeSecrets` over a client made on first use: loading a kubeconfig is async, startup is not."""

    def __init__(self, kubeconfig: str = "", ttl_seconds: float = 60.0) -> None:
        self._kubeconfig = kubeconfig
        self._ttl = ttl_seconds
        self._inner: KubeSecrets | None = None

    async def _secrets(self) -> KubeSecrets:
        if self._inner is None:
            from kubernetes_asyncio import client, config

            if self._kubeconfig:
                await config.load_kube_config(config_file=self._kubeconfig)
            else:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            self._inner = KubeSecrets(client.CoreV1Api(client.ApiClient()), self._ttl)
        return self._inner

    async def get(self, namespace: str, ref: SecretKeyRef) -> str:
        """The value of ``ref`` in ``namespace``, read with the router's service account."""
        return await (await self._secrets()).get(namespace, ref)

    def invalidate(self, namespace: str, ref: SecretKeyRef) -> None:
        """Drop the cached Secret so the next call reads it again."""
        if self._inner is not None:
            self._inner.invalidate(namespace, ref)


# --- redaction -------------------------------------------------------------------------------

_SECRETS: set[str] = set()
_installed = False


def register(value: str) -> str:
    """Remember ``value`` as secret (it will be redacted from every log record) and return it."""
    if len(value) >= _MIN_SECRET_LENGTH:
        _SECRETS.add(value)
    return value


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_record(record: logging.LogRecord) -> None:
    """Render the record's message now and scrub it, so no handler ever formats a secret."""
    if not _SECRETS:
        return
    message = record.getMessage()
    scrubbed = redact(message)
    if scrubbed != message:
        record.msg, record.args = scrubbed, None


def install_redaction() -> None:
    """Scrub registered secrets from every log record created in this process (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
