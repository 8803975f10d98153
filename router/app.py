"""The router as one plain ASGI application: a path table, a request-id layer, and the lifespan.

No framework sits on the hot path: a request is one dict lookup away from its handler. Handlers
raise `UpstreamError` for anything the client should hear about; this module turns it into the
OpenAI error shape, and turns anything unexpected into a 500 without leaking a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from inferflux.crds.routing import RoutingTable
from inferflux.prompts.resolver import PromptResolver
from inferflux.prompts.sources import DirectorySource, PromptSource
from inferflux.router import telemetry
from inferflux.router.asgi import (
    ClientGone,
    Message,
    Receive,
    Scope,
    Send,
    header,
    send_bytes,
    send_error,
    send_json,
)
from inferflux.router.balancer import Balancer
from inferflux.router.discovery import Apply, RouteSource, TableHolder
from inferflux.router.dispatch import Dispatcher, Fairness
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.health import Readiness
from inferflux.router.identity import authenticate
from inferflux.router.identity.api_keys import KeyHasher
from inferflux.router.inference_api import InferenceRoutes
from inferflux.router.metrics import Metrics
from inferflux.router.openai_api import ROUTES, OpenAIRoutes
from inferflux.router.pipeline import Pipeline, Stage
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.providers import (
    ChainHandler,
    FallbackChain,
    LocalSecrets,
    Pool,
    PoolSettings,
    ProviderMetrics,
    SecretSource,
)
from inferflux.router.providers.handler import send_error_in_dialect
from inferflux.router.realtime.close_codes import CloseCode
from inferflux.router.realtime.service import Realtime
from inferflux.router.replay import MemoryReplayStore, ReplayStore
from inferflux.router.replay_redis import RedisReplayStore
from inferflux.router.resume import KeyHolder, KeyringFile, ephemeral_keyring
from inferflux.router.scheduling.demand import Demands
from inferflux.router.server_protocol import HEAD_LINES, head_lines
from inferflux.router.settings import Settings, SettingsError
from inferflux.router.telemetry import request_id_var
from inferflux.router.telemetry.exemplars import accept_header, exposition
from inferflux.router.telemetry.http import record_status, request_span
from inferflux.router.upstream import Timeouts, UpstreamClient

if TYPE_CHECKING:
    from inferflux.router.mcp.gateway import Gateway

log = logging.getLogger("inferflux.router")
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


def prompt_resolver(settings: Settings) -> PromptResolver | None:
    """The prompt resolver the settings ask for: a manifests folder and/or Prompt ConfigMaps."""
    sources: list[PromptSource] = []
    if settings.prompts_dir:
        sources.append(DirectorySource(Path(settings.prompts_dir)))
    if settings.prompts_namespace:
        namespace = None if settings.prompts_namespace == "*" else settings.prompts_namespace
        kubeconfig = Path(settings.kubeconfig) if settings.kubeconfig else None
        # Imported here: the Kubernetes client weighs ~60 MB, and local mode never needs it.
        from inferflux.prompts.configmap_source import ConfigMapSource

        sources.append(ConfigMapSource(kubeconfig=kubeconfig, namespace=namespace))
    if not sources:
        return None
    return PromptResolver(sources, ttl=settings.prompts_ttl_seconds, budget=settings.prompts_budget_seconds)


def replay_store_for(settings: Settings) -> ReplayStore:
    """Redis Streams when ``INFERFLUX_REDIS_URL`` is set (any replica resumes), else memory."""
    memory = MemoryReplayStore(
        settings.replay_max_streams, settings.replay_max_chunks, settings.replay_linger_seconds
    )
    if settings.redis_url:
        # The memory store holds the streams begun while Redis is unreachable.
        return RedisReplayStore.from_url(
            settings.redis_url, settings.resume_ttl_seconds, settings.replay_max_chunks, memory
        )
    return memory


def prompts_readiness(resolver: PromptResolver) -> tuple[bool, str]:
    """``prompts_loaded``: ready once the resolver's preload has finished, not before."""
    if resolver.preloaded:
        return True, f"{resolver.loaded} prompts loaded"
    return False, f"preload not finished ({resolver.loaded} prompts loaded so far)"


def request_id(scope: Scope) -> str:
    """The client's ``x-request-id`` when it is sane (printable, at most 128 bytes), else a new one."""
    given = header(scope, b"x-request-id")
    if given and len(given) <= 128 and given.isascii() and given.decode().isprintable():
        return given.decode()
    return secrets.token_hex(16)


def mcp_gateway(settings: Settings) -> Gateway | None:
    """The MCP gateway when the flag is on (its servers file is then required), else None."""
    if not settings.mcp_gateway:
        return None
    if not settings.mcp_servers_file:
        raise SettingsError(
            "INFERFLUX_MCP_GATEWAY is on, so INFERFLUX_MCP_SERVERS_FILE must name its servers"
        )
    from inferflux.router.mcp import config

    try:
        from inferflux.router.mcp.gateway import Gateway  # the optional `mcp` extra
    except ImportError:
        raise SettingsError(
            "INFERFLUX_MCP_GATEWAY needs the mcp extra (pip install 'inferflux[mcp]'), not installed here"
        ) from None
    try:
        return Gateway(config.load(settings.mcp_servers_file))
    except config.ConfigError as error:
        raise SettingsError(f"INFERFLUX_MCP_SERVERS_FILE: {error}") from None


class Router:
    """The whole gateway; ``await router(scope, receive, send)`` is the ASGI entry point."""

    def __init__(
        self,
        settings: Settings,
        source: RouteSource | None = None,
        store: ReplayStore | None = None,
        keys: KeyHolder | None = None,
        secrets: SecretSource | None = None,
        prompts: PromptResolver | None = None,
        policy: PolicyHolder | None = None,
        hasher: KeyHasher | None = None,
        stages: Sequence[Stage] = (),
    ) -> None:
        self.settings = settings
        self.source = source
        self.metrics = Metrics()
        self.holder = TableHolder()
        # Tenants and keys; the policy sources and the store write into it (router/policy).
        self.policy = policy or PolicyHolder()
        self.auth = authenticate.build(settings, self.policy, self.metrics.registry, hasher)
        self.client = UpstreamClient(
            Timeouts(
                settings.connect_timeout_seconds,
                settings.first_byte_timeout_seconds,
                settings.total_timeout_seconds,
            ),
            ca_file=settings.upstream_ca_file or None,
        )
        self.dispatcher = Dispatcher(
            self.holder,
            self.client,
            Balancer(settings.prefix_load_factor),
            self.metrics,
            settings.retries,
            settings.hold_seconds,
            settings.failover_buffer_bytes,
            fairness=Fairness(
                settings.fairness,
                settings.fairness_sheddable_share,
                settings.fairness_retry_after_seconds,
                settings.fairness_sheddable_slots,
                settings.fairness_runtime_preemption,
            ),
            demands=Demands(self.policy, settings.fairness_default_max_tokens),
        )
        self.keys = keys or (
            KeyringFile(settings.resume_keys_file)
            if settings.resume_keys_file
            else KeyHolder(ephemeral_keyring())
        )
        self.store = store or replay_store_for(settings)
        # Routes that name a provider or a fallback go through the chain (router/providers).
        self.chain = FallbackChain(
            RoutingTable(),
            Pool(
                secrets or LocalSecrets(),
                PoolSettings(
                    settings.first_byte_timeout_seconds, runtime_ca_file=settings.upstream_ca_file or None
                ),
            ),
            deadline_seconds=settings.total_timeout_seconds,
            metrics=ProviderMetrics(self.metrics.registry),
        )
        self.holder.on_swap(self.chain.update)
        # The stages every inference request passes (router/pipeline.py), in order.
        self.pipeline = Pipeline(stages)
        self.providers = ChainHandler(self.chain, self.pipeline)
        self.openai = OpenAIRoutes(
            self.dispatcher, self.metrics, settings.prefix_chars, self.providers, self.pipeline
        )
        self.inference = InferenceRoutes(
            self.dispatcher,
            self.store,
            self.keys,
            self.metrics,
            settings.heartbeat_seconds,
            settings.resume_ttl_seconds,
            prompts if prompts is not None else prompt_resolver(settings),
            self.pipeline,
        )
        self.readiness = Readiness()
        self.readiness.add(
            "routes_loaded", lambda: (self.holder.loaded, f"generation {self.holder.generation}")
        )
        resolver = self.inference.prompts
        if resolver is not None:
            self.readiness.add("prompts_loaded", lambda: prompts_readiness(resolver))
        self.routes: dict[tuple[str, str], Handler] = {("GET", "/v1/models"): self.openai.models}
        for path in ROUTES:
            self.routes[("POST", path)] = self.openai.proxy
        self.routes[("POST", "/v1/messages")] = self.providers  # Anthropic-shaped clients
        self.routes[("POST", "/api/v1/inference")] = self.inference.infer
        self.routes[("POST", "/api/v1/inference:stream")] = self.inference.stream
        for path, handler in (
            ("/healthz", self.healthz),
            ("/livez", self.healthz),
            ("/readyz", self.readyz),
            ("/metrics", self.metrics_page),
        ):
            self.routes[("GET", path)] = handler
        # Realtime voice and XR sessions (router/realtime): session POSTs, SSE and the WebSockets.
        self.realtime = Realtime(settings, self.inference) if settings.realtime else None
        if self.realtime is not None:
            self.routes.update(self.realtime.routes())
        # The MCP gateway (router/mcp), off unless INFERFLUX_MCP_GATEWAY: then /mcp does not exist.
        self.mcp = mcp_gateway(settings)
        if self.mcp is not None:
            for method in ("POST", "GET", "DELETE"):
                self.routes[(method, "/mcp")] = self.mcp
        self._paths = {path for _, path in self.routes}
        self._tasks: list[asyncio.Task[None]] = []
        # Handlers for whole path families (ids in the path), asked after the exact table misses.
        self.mounted: list[tuple[Callable[[str], bool], Handler]] = []

    def mount(self, matches: Callable[[str], bool], handler: Handler) -> None:
        """Serve every path ``matches`` accepts with ``handler`` (the Batch API's files and batches)."""
        self.mounted.append((matches, handler))

    def _mounted(self, path: str) -> Handler | None:
        for matches, handler in self.mounted:
            if matches(path):
                return handler
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)
        elif kind == "websocket":
            await self.websocket(scope, receive, send)

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A realtime WebSocket; refused (HTTP 403 at the handshake) when realtime is off."""
        if self.realtime is not None:
            await self.realtime.websocket(scope, receive, send)
            return
        if (await receive())["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": int(CloseCode.SESSION_GONE)})

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one request, adding ``x-request-id`` to whatever response goes out.

        The request id is also the log lines' ``request_id`` while the request is served, and the
        request runs inside the router's server span when tracing is on (router/telemetry).
        """
        rid = scope["inferflux.request_id"] = request_id(scope)
        request_id_var.set(rid)
        if telemetry.current_tracing() is None:
            status = await self._http(scope, receive, send, rid)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s answered %d", scope["method"], scope["path"], status)
            return
        with request_span(scope, rid) as span:
            status = await self._http(scope, receive, send, rid)
            record_status(span, status)
            if log.isEnabledFor(logging.DEBUG):  # an access log, off below debug: the hot path
                log.debug("%s %s answered %d", scope["method"], scope["path"], status)

    async def _http(self, scope: Scope, receive: Receive, send: Send, rid: str) -> int:
        """Serve the request; the status sent (0 when the client left before any answer)."""
        # Stages add to this list until the response starts (rate-limit headers, receipts).
        extra = scope["inferflux.headers"] = [(b"x-request-id", rid.encode())]
        started = False
        status = 0

        async def send_stamped(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                # Up to two lines, the server's own checks cost about what joining them does.
                lines = head_lines(extra) if len(extra) > 2 and HEAD_LINES in scope else None
                if lines is not None:  # the server puts them in the head as they are
                    scope[HEAD_LINES] = lines
                else:
                    message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        handler = self.routes.get((scope["method"], scope["path"])) or self._mounted(scope["path"])
        try:
            if handler is None:
                raise self._no_route(scope)
            if self.auth is not None:
                await self.auth.admit(scope)
            await handler(scope, receive, send_stamped)
        except ClientGone:
            return status
        except UpstreamError as error:
            if not started:
                await send_error_in_dialect(scope, send_stamped, error)
        except Exception as error:
            log.exception("unexpected %s on %s", type(error).__name__, scope["path"])
            if not started:
                await send_error(
                    send_stamped, UpstreamError(ErrorCode.UPSTREAM_ERROR, "internal error", status=500)
                )
        return status

    def _no_route(self, scope: Scope) -> UpstreamError:
        if scope["path"] in self._paths:
            return UpstreamError(ErrorCode.BAD_REQUEST, f"method {scope['method']} not allowed", status=405)
        return UpstreamError(ErrorCode.NOT_FOUND, f"no route {scope['path']}")

    async def healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The process is up and its event loop answers."""
        await send_json(send, 200, {"status": "ok"})

    async def readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        """200 when every readiness check passes, else 503; the body lists each check."""
        ready, checks = await self.readiness.evaluate()
        await send_json(
            send, 200 if ready else 503, {"status": "ready" if ready else "not ready", "checks": checks}
        )

    async def metrics_page(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every ``inferflux_router_`` metric: OpenMetrics with exemplars when the scraper asks
        for it (``Accept: application/openmetrics-text``), else the Prometheus text format."""
        body, content_type = exposition(self.metrics.registry, accept_header(scope["headers"]))
        await send_bytes(send, 200, body, [(b"content-type", content_type.encode())])

    def apply(self) -> Apply:
        """The callback a `RouteSource` feeds tables into."""
        return self.holder.swap

    async def start(self) -> None:
        """Load the first table (a file loads synchronously), then follow changes in the background."""
        if self.source is not None:
            self._tasks.append(asyncio.ensure_future(self.source.run(self.holder.swap)))
        if self.inference.prompts is not None:
            await self.inference.prompts.start()  # bounded by its start_timeout
        if isinstance(self.keys, KeyringFile):
            self._tasks.append(asyncio.ensure_future(self._follow_keys(self.keys)))
        if self.mcp is not None:
            await self.mcp.start()

    async def _follow_keys(self, keys: KeyringFile) -> None:
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(OSError):
                if keys.reload() is not None:
                    log.info("resume keys reloaded; signing with %s", keys.keyring.signing[0])

    async def stop(self) -> None:
        """Stop background work and close upstream connections."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.realtime is not None:
            self.realtime.close()
        if self.mcp is not None:
            await self.mcp.stop()
        await self.inference.close()
        await self.store.close()
        if self.inference.prompts is not None:
            await self.inference.prompts.close()
        await self.chain.aclose()
        await self.client.close()
        if self.auth is not None:
            await self.auth.close()

    async def lifespan(self, receive: Receive, send: Send) -> None:
        """ASGI lifespan: start on startup, stop on shutdown."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
