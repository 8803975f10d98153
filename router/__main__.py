"""``python -m inferflux.router``: the public router and the admin API, configured from env, one process.

Two uvicorn servers share one event loop: the router on ``INFERFLUX_ROUTER_HOST:PORT`` and the admin
API on ``INFERFLUX_ADMIN_HOST:PORT`` (127.0.0.1:8001 by default). Both read one `PolicyHolder`, fed by
the operator's policy snapshot (file or ConfigMap) and the policy store (Redis when
``INFERFLUX_REDIS_URL`` is set, else memory). SIGTERM/SIGINT stop both gracefully. With
``INFERFLUX_ROUTER_WORKERS`` > 1 this process only supervises that many such processes, which
share both ports (router/workers.py).

A bad setting, keys file, hashing secret, key-encryption key file, pricing file, audit signing
key or secret, routing table or policy snapshot ends the process with one readable line and exit
code 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn

from inferflux.router import telemetry, workers
from inferflux.router.activation import ActivityReporter, ModelAnnotationWriter
from inferflux.router.admin.app import create_app
from inferflux.router.admin.auth import AdminAuth
from inferflux.router.admin.console import ConsoleSources
from inferflux.router.admin.service import AdminService
from inferflux.router.app import Router
from inferflux.router.audit.service import Audit, AuditConfigError
from inferflux.router.batch.admin import add_admin_routes
from inferflux.router.batch.factory import BatchSystem, batch_for
from inferflux.router.budgets.factory import Budgets, budgets_for
from inferflux.router.budgets.pricing import PricingError
from inferflux.router.discovery import ConfigMapSource, FileSource, RouteSource
from inferflux.router.documents import DocumentError
from inferflux.router.guardrails.judge import ModelJudge
from inferflux.router.guardrails.recent import RecentVerdicts
from inferflux.router.guardrails.redact import redact_all
from inferflux.router.guardrails.stage import GuardrailStage
from inferflux.router.guardrails.verdicts import GuardrailMetrics
from inferflux.router.heap import freeze_startup_heap
from inferflux.router.identity.api_keys import KeyHasher
from inferflux.router.identity.exposure import check_exposure
from inferflux.router.identity.mtls import uvicorn_options
from inferflux.router.pipeline import Stage
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.policy.secrets import KeyFileError, Keyring
from inferflux.router.policy.sources import PolicyConfigMapSource, PolicyFileSource, SnapshotSource
from inferflux.router.policy.store import MemoryPolicyStore, PolicyStore, RedisPolicyStore
from inferflux.router.providers import ClusterSecrets, install_redaction
from inferflux.router.realtime.service import websocket_options
from inferflux.router.recent_requests import RecentRequests
from inferflux.router.resume import KeyringError
from inferflux.router.settings import Settings, SettingsError, from_env
from inferflux.router.telemetry import TraceSettings, bridge, configure_logging
from inferflux.router.telemetry.settings import MetricsBridgeSettings, TraceSettingsError

log = logging.getLogger("inferflux.router.main")
FIRST_LOAD_SECONDS = 10.0


class StartupError(ValueError):
    """The process cannot start as configured; the message is the one line the user sees."""


def source_for(settings: Settings) -> RouteSource | None:
    """The routing-table source the settings name: a ConfigMap, a file, or none."""
    if settings.routes_configmap:
        namespace, name = settings.routes_configmap.split("/")
        return ConfigMapSource(namespace, name, settings.kubeconfig)
    if settings.routes_file:
        return FileSource(settings.routes_file, settings.file_poll_seconds)
    return None


def snapshot_source_for(settings: Settings) -> SnapshotSource | None:
    """The policy-snapshot source the settings name: a ConfigMap, a file, or none."""
    if settings.policy_configmap:
        namespace, name = settings.policy_configmap.split("/")
        return PolicyConfigMapSource(namespace, name, settings.kubeconfig)
    if settings.policy_file:
        return PolicyFileSource(settings.policy_file, settings.file_poll_seconds)
    return None


def store_for(settings: Settings, holder: PolicyHolder) -> PolicyStore:
    """Redis when ``INFERFLUX_REDIS_URL`` is set (shared by replicas), else memory (one router)."""
    if settings.redis_url:
        return RedisPolicyStore.from_url(
            settings.redis_url, holder, resync_seconds=settings.policy_resync_seconds
        )
    return MemoryPolicyStore(holder)


def hasher_for(settings: Settings) -> KeyHasher | None:
    """The API-key hasher from ``INFERFLUX_AUTH_SECRET_FILE``; required when auth is on."""
    if not settings.auth_secret_file:
        if settings.auth:
            raise StartupError(
                "auth is on, so INFERFLUX_AUTH_SECRET_FILE must name the API-key hashing secret "
                "(at least 32 bytes, e.g. head -c 48 /dev/urandom | base64)"
            )
        return None
    try:
        with open(settings.auth_secret_file, "rb") as handle:
            secret = handle.read().strip()
    except OSError as error:
        raise StartupError(
            f"INFERFLUX_AUTH_SECRET_FILE: cannot read {settings.auth_secret_file}: {error.strerror}"
        ) from None
    if len(secret) < 32:
        raise StartupError(
            f"INFERFLUX_AUTH_SECRET_FILE: {settings.auth_secret_file} holds fewer than 32 bytes"
        )
    return KeyHasher(secret)


def keyring_for(settings: Settings) -> Keyring | None:
    """The tenant-secret key-encryption keys from ``INFERFLUX_KEK_FILE``, if set."""
    if not settings.kek_file:
        return None
    try:
        return Keyring.from_file(settings.kek_file)
    except KeyFileError as error:
        raise StartupError(f"INFERFLUX_KEK_FILE: {error}") from None
    except OSError as error:
        raise StartupError(f"INFERFLUX_KEK_FILE: cannot read {settings.kek_file}: {error.strerror}") from None


def admin_token_for(settings: Settings) -> str | None:
    """The bootstrap admin token from ``INFERFLUX_ADMIN_TOKEN_FILE``, if set."""
    if not settings.admin_token_file:
        return None
    try:
        return AdminAuth.token_from_file(settings.admin_token_file)
    except (OSError, ValueError) as error:
        raise StartupError(f"INFERFLUX_ADMIN_TOKEN_FILE: {error}") from None


@dataclass
class Process:
    """Everything one router process runs."""

    settings: Settings
    router: Router
    holder: PolicyHolder
    store: PolicyStore
    snapshots: SnapshotSource | None
    admin: Any  # the FastAPI admin application
    budgets: Budgets
    audit: Audit | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    activity: ActivityReporter | None = None
    batch: BatchSystem | None = None  # the Batch API and this process's worker (docs/batch.md)


def activity_for(settings: Settings, router: Router) -> ActivityReporter | None:
    """In a cluster (routes from the ConfigMap), the reporter of activity and activations."""
    if not settings.routes_configmap:
        return None  # local mode: nothing scales the runtimes
    writer = ModelAnnotationWriter(settings.kubeconfig)
    activity = ActivityReporter(
        writer, router.dispatcher.load, socket.gethostname(), settings.activity_report_seconds
    )
    router.dispatcher.activity = activity
    router.dispatcher.activation_hold_seconds = settings.activation_hold_seconds
    return activity


def recent_requests_for(settings: Settings, router: Router) -> RecentRequests | None:
    """The admin console's recent requests, fed by the pipeline; None when kept off (0)."""
    if settings.console_recent_requests <= 0:
        return None
    requests = RecentRequests(settings.console_recent_requests)
    router.pipeline.observe(requests.record)
    return requests


def build() -> Process:
    """Settings, policy, router and admin app, failing early on bad input (files are read up front)."""
    settings = from_env()
    source = source_for(settings)
    secrets = ClusterSecrets(settings.kubeconfig) if settings.routes_configmap else None
    install_redaction()  # before any provider key is read
    table = source.load() if isinstance(source, FileSource) else None
    holder = PolicyHolder()
    snapshots = snapshot_source_for(settings)
    if isinstance(snapshots, PolicyFileSource) and os.path.exists(snapshots.path):
        holder.set_snapshot(snapshots.load())  # a missing file is waited for; a bad one stops here
    hasher = hasher_for(settings)
    router = Router(settings, source, secrets=secrets, policy=holder, hasher=hasher)
    budgets = budgets_for(settings, holder, router.metrics.registry)
    try:
        audit = Audit.from_settings(settings)
    except AuditConfigError as error:
        raise StartupError(str(error)) from None
    # Stage order: the audit record first (its finish runs last), then budgets, then guardrails.
    stages: list[Stage] = []
    if audit is not None:
        stages.append(audit.stage(holder, redact=redact_all))
    stages.append(budgets.stage)
    recent = RecentVerdicts() if settings.guardrails else None  # shown by the admin console
    if settings.guardrails:
        metrics = GuardrailMetrics(router.metrics.registry)
        stages.append(GuardrailStage(holder, metrics, ModelJudge(router.dispatcher), recent))
    router.pipeline.extend(stages)
    if table is not None:
        router.holder.swap(table)
    keyring = keyring_for(settings)
    token = admin_token_for(settings)
    store = store_for(settings, holder)
    admin = create_app(
        AdminService(holder, store, hasher, keyring, ledger=budgets.ledger, pricing=budgets.pricing),
        AdminAuth(holder, hasher, token),
        audit.directory if audit is not None else None,
        audit.log if audit is not None else None,
        ConsoleSources(
            lambda: router.holder.table,
            router.dispatcher.limiters,
            recent,
            recent_requests_for(settings, router),
            settings.console_trace_url,
        ),
    )
    process = Process(settings, router, holder, store, snapshots, admin, budgets, audit)
    process.activity = activity_for(settings, router)
    process.batch = batch_for(settings, router)
    if process.batch is not None:
        add_admin_routes(admin, process.batch.queue)
    return process


class SharedLoopServer(uvicorn.Server):
    """A uvicorn server that leaves signals to `serve`, which stops both servers of the process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _config(
    app: Any, host: str, port: int, settings: Settings, lifespan: Literal["on", "off"], **extra: Any
) -> uvicorn.Config:
    options: dict[str, Any] = {"http": "httptools", **extra}
    options.update(websocket_options(settings))  # realtime WebSockets (docs/realtime.md)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan=lifespan,
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
        **options,
    )


async def _first_load(process: Process) -> None:
    """Start following the store and the snapshot, and wait (bounded) for the store's first load."""
    if isinstance(process.store, MemoryPolicyStore):
        await process.store.load()
    process.tasks.append(asyncio.ensure_future(process.store.follow()))
    if process.snapshots is not None:
        process.tasks.append(asyncio.ensure_future(process.snapshots.run(process.holder.set_snapshot)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FIRST_LOAD_SECONDS
    while not process.holder.store_loaded and loop.time() < deadline:  # noqa: ASYNC110 - the holder has no event
        await asyncio.sleep(0.01)
    if not process.holder.store_loaded:
        log.warning("policy store not loaded yet; serving, and retrying in the background")


def listen(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A bound TCP socket (bound here, so a busy port is one readable line, not uvicorn's exit).

    ``reuse_port``: ``SO_REUSEPORT``, so that the supervisor's workers share the port.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return sock


async def serve(process: Process, public: socket.socket, admin: socket.socket) -> None:
    """Both listeners until SIGTERM/SIGINT, then a graceful stop of both and of the policy tasks."""
    settings = process.settings
    servers = [
        SharedLoopServer(
            _config(process.router, settings.host, settings.port, settings, "on", **uvicorn_options(settings))
        ),
        SharedLoopServer(_config(process.admin, settings.admin_host, settings.admin_port, settings, "off")),
    ]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    await _first_load(process)
    if process.activity is not None:
        process.tasks.append(asyncio.ensure_future(process.activity.run()))
    process.budgets.start()
    if process.audit is not None:
        process.audit.start(process.holder)
    if process.batch is not None:
        process.batch.start()
    log.info(
        "router on %s:%d, admin API on %s:%d",
        settings.host,
        settings.port,
        settings.admin_host,
        settings.admin_port,
    )
    frozen = freeze_startup_heap()  # keeps full GC passes off startup's objects (router/heap.py)
    log.debug("%d startup objects frozen out of garbage collection", frozen)
    running = [
        asyncio.ensure_future(server.serve(sockets=[sock]))
        for server, sock in zip(servers, (public, admin), strict=True)
    ]
    try:
        await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        stop()  # one listener ended (or failed to bind): end the other too
        await asyncio.gather(*running, return_exceptions=True)
    finally:
        for task in process.tasks:
            task.cancel()
        await asyncio.gather(*process.tasks, return_exceptions=True)
        if process.batch is not None:
            await process.batch.close()
        await process.budgets.close()
        if process.activity is not None:
            await process.activity.close()
        await process.store.close()
        if process.audit is not None:
            await process.audit.close()  # last: signs and fsyncs the head


def main() -> int:
    """Run until SIGTERM/SIGINT."""
    try:
        settings = from_env()
        workers.check(settings)
    except SettingsError as error:
        print(f"inferflux-router: {error}", file=sys.stderr)
        return 2
    if settings.workers > 1:
        return workers.supervise(settings)
    try:
        process = build()
        public = listen(process.settings.host, process.settings.port, settings.reuse_port)
        admin = listen(process.settings.admin_host, process.settings.admin_port, settings.reuse_port)
    except (SettingsError, StartupError, KeyringError, DocumentError, PricingError, OSError) as error:
        print(f"inferflux-router: {error}", file=sys.stderr)
        return 2
    configure_logging(process.settings.log_level, process.settings.log_format)
    try:  # off unless an OTLP endpoint is set (docs/observability.md)
        telemetry.install(TraceSettings.from_env("inferflux-router"))
        # The OTel metrics bridge: off unless INFERFLUX_OTEL_METRICS (docs/observability.md).
        genai_metrics = bridge.start(MetricsBridgeSettings.from_env(), "inferflux-router")
        process.router.openai.genai_metrics = genai_metrics
    except TraceSettingsError as error:
        print(f"inferflux-router: {error}", file=sys.stderr)
        return 2
    try:  # after logging is set up: serving open on loopback is allowed, and says so loudly
        check_exposure(process.settings)
    except SettingsError as error:
        print(f"inferflux-router: {error}", file=sys.stderr)
        return 2
    import uvloop

    try:
        uvloop.run(serve(process, public, admin))
    finally:
        telemetry.uninstall()  # exports the kept traces still queued
        if process.router.openai.genai_metrics is not None:
            process.router.openai.genai_metrics.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
