"""The router's settings, all read from the environment (``INFERFLUX_*``), documented in docs/router.md."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields


class SettingsError(ValueError):
    """A setting is malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults a local run wants."""

    host: str = "127.0.0.1"
    port: int = 8000
    routes_file: str = ""
    routes_configmap: str = ""  # "namespace/name"
    kubeconfig: str = ""  # empty: in-cluster service account
    resume_keys_file: str = ""
    heartbeat_seconds: float = 15.0
    resume_ttl_seconds: float = 300.0
    replay_max_streams: int = 1024
    replay_max_chunks: int = 8192
    replay_linger_seconds: float = 300.0
    connect_timeout_seconds: float = 5.0
    first_byte_timeout_seconds: float = 60.0
    total_timeout_seconds: float = 600.0
    retries: int = 1
    hold_seconds: float = 10.0  # how long a request waits for a loading model's first ready replica
    prefix_chars: int = 256
    prefix_load_factor: float = 1.25
    file_poll_seconds: float = 0.2
    log_level: str = "info"
    log_format: str = "json"  # json: one object per line with request_id, trace_id, span_id; or text
    prompts_dir: str = ""  # a folder of prompt manifests (local mode)
    prompts_namespace: str = ""  # watch Prompt ConfigMaps here ("*": every namespace)
    prompts_ttl_seconds: float = 900.0
    prompts_budget_seconds: float = 0.015
    # Identity and policy (docs/identity.md). Auth is on unless turned off; off is allowed only on
    # a loopback address unless auth_allow_open says the operator means it.
    auth: bool = True
    auth_allow_open: bool = False
    auth_secret_file: str = ""  # the API-key hashing secret (>= 32 bytes), from a mounted Secret
    metrics_auth: bool = False  # /metrics needs a credential with models:read
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_jwks_url: str = ""  # empty: discovered from the issuer's openid-configuration
    oidc_algorithms: str = "RS256,ES256"
    oidc_tenant_claim: str = "tenant"
    oidc_scopes_claim: str = "scope"
    oidc_leeway_seconds: float = 30.0
    oidc_jwks_refresh_seconds: float = 10.0  # at most one JWKS fetch per this many seconds
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""  # set: client certificates are required and mapped to tenants
    upstream_ca_file: str = ""  # set: router-to-runtime https is verified against this CA
    admin_host: str = "127.0.0.1"
    admin_port: int = 8001
    admin_token_file: str = ""  # a bootstrap admin bearer token, from a mounted Secret
    redis_url: str = ""  # the policy store shared by router replicas; empty: in memory
    policy_file: str = ""  # a PolicySnapshot JSON file (local mode)
    policy_configmap: str = ""  # "namespace/name" of the operator's policy snapshot
    kek_file: str = ""  # AES-GCM key-encryption keys for tenant secrets, from a mounted Secret
    policy_resync_seconds: float = 30.0  # full reload of the Redis policy store (pub/sub may drop)
    # The audit log (docs/audit.md): on when audit_dir is set.
    audit_dir: str = ""
    audit_chain: str = ""  # this replica's chain name; empty: the host name (the pod name)
    audit_signing_key_file: str = ""  # Ed25519 private key (PEM) for checkpoints and anchors
    audit_secret_file: str = ""  # the secret per-tenant prompt HMAC keys derive from (>= 32 bytes)
    audit_commit_seconds: float = 0.002
    audit_checkpoint_records: int = 1000
    audit_checkpoint_seconds: float = 10.0
    audit_segment_bytes: int = 64 * 1024 * 1024
    audit_segment_seconds: float = 3600.0
    audit_prune_seconds: float = 3600.0
    # Budgets and rate limits (docs/budgets.md): kept in the Redis at redis_url.
    pricing_file: str = ""  # pricing.yaml, sealed with its checksum; empty: every model costs 0
    budget_idempotency_seconds: float = 600.0  # a request id is remembered this long
    # How long the ledger waits for a Redis answer before the request gets 503: event-loop time, so
    # well above the loop's lag under load (docs/budgets.md).
    budget_redis_timeout_seconds: float = 0.5
    # A reservation lives the total timeout plus this margin; then it is released (its router died).
    budget_reservation_margin_seconds: float = 60.0
    budget_report_seconds: float = 30.0  # spend written to Tenant status and gauges this often
    budget_thresholds: str = "0.5,0.8,1.0"  # shares of a budget that trigger the webhook
    budget_webhook_url: str = ""
    budget_webhook_secret_file: str = ""  # HMAC-SHA-256 key of the webhook's signature
    # Guardrails (docs/guardrails.md): each tenant's PII filter, injection rules, size and topic limits.
    guardrails: bool = True
    # Mid-stream failover (router/failover.py): bytes of a /v1 stream kept to continue it elsewhere.
    failover_buffer_bytes: int = 1 << 20
    # Realtime voice and XR sessions (docs/realtime.md).
    realtime: bool = True
    realtime_ticket_seconds: float = 30.0  # a WebSocket ticket is good this long, once
    realtime_session_linger_seconds: float = 120.0  # a session with no connection lives this long
    realtime_max_sessions: int = 1000
    realtime_outbox_frames: int = 1024  # server frames kept per session for reconnects
    realtime_max_frame_bytes: int = 65536
    realtime_max_frames_per_second: float = 100.0
    realtime_send_timeout_seconds: float = 10.0  # a client that takes no frame this long is closed
    realtime_ping_seconds: float = 20.0  # WebSocket protocol pings
    realtime_heartbeat_seconds: float = 1.0  # SSE heartbeats of voice:stream and xr:stream
    realtime_idle_recognisers: int = 2  # speech recognisers kept loaded between utterances
    # The MCP gateway (docs/realtime.md): off unless a servers file is given and the flag is on.
    mcp_gateway: bool = False
    mcp_servers_file: str = ""
    # Scale to zero and the operator's scaler (docs/scaling.md): what the router reports, and how
    # long a request for a model scaled to zero waits for its activation.
    activity_report_seconds: float = 10.0
    activation_hold_seconds: float = 120.0
    # Worker processes on one port (docs/router.md "Workers and replicas"); > 1 needs Redis.
    workers: int = 1
    reuse_port: bool = False  # bind with SO_REUSEPORT (set by the supervisor for its workers)
    # Fair queueing per model (docs/scheduling.md): priority bands, tenants' weighted token shares.
    fairness: bool = True  # off: one FIFO per model, whoever asks
    fairness_sheddable_share: float = 0.5  # share of a model's queue sheddable requests may fill
    fairness_retry_after_seconds: float = 1.0  # retry-after of a request the queue refuses
    fairness_default_max_tokens: int = 256  # the completion estimated when a request sets no max
    fairness_sheddable_slots: float = 1.0  # share of a model's slots sheddable requests may hold
    fairness_runtime_preemption: bool = True  # llama.cpp models: sheddable work yields in the runtime
    # The Batch API (docs/batch.md): on when batch_dir is set; batches and tasks in the Redis at redis_url.
    batch_dir: str = ""  # the files volume (inputs and outputs), shared by every router and worker
    batch_workers: int = 4  # tasks this process runs at once; 0: this process runs no batch worker
    batch_max_bytes: int = 100 * 1024 * 1024
    batch_max_lines: int = 50_000
    batch_visibility_seconds: float = 300.0  # a task silent this long is taken over by another worker
    batch_max_attempts: int = 3  # tries of a retryable failure before the task is dead-lettered
    batch_backoff_seconds: float = 2.0  # before the second try; doubled for each further one
    batch_tenant_concurrency: int = 16  # a tenant's tasks running at once, fleet-wide (0: no limit)
    batch_tenant_queued: int = 200_000  # a tenant's tasks queued and not yet finished (0: no limit)
    batch_retention_seconds: int = 30 * 86400  # files and finished batches are kept this long
    # The admin console's Traces page (docs/console.md): this router's recent requests in memory
    # (0: none kept), and a link to each exported trace in the trace backend's UI.
    console_recent_requests: int = 200
    console_trace_url: str = ""  # e.g. http://jaeger:16686/trace/{trace_id}


_ENV = {
    "host": "INFERFLUX_ROUTER_HOST",
    "port": "INFERFLUX_ROUTER_PORT",
    "routes_file": "INFERFLUX_ROUTES_FILE",
    "routes_configmap": "INFERFLUX_ROUTES_CONFIGMAP",
    "kubeconfig": "INFERFLUX_KUBECONFIG",
    "resume_keys_file": "INFERFLUX_RESUME_KEYS_FILE",
    "heartbeat_seconds": "INFERFLUX_HEARTBEAT_SECONDS",
    "resume_ttl_seconds": "INFERFLUX_RESUME_TTL_SECONDS",
    "replay_max_streams": "INFERFLUX_REPLAY_MAX_STREAMS",
    "replay_max_chunks": "INFERFLUX_REPLAY_MAX_CHUNKS",
    "replay_linger_seconds": "INFERFLUX_REPLAY_LINGER_SECONDS",
    "connect_timeout_seconds": "INFERFLUX_CONNECT_TIMEOUT_SECONDS",
    "first_byte_timeout_seconds": "INFERFLUX_FIRST_BYTE_TIMEOUT_SECONDS",
    "total_timeout_seconds": "INFERFLUX_TOTAL_TIMEOUT_SECONDS",
    "retries": "INFERFLUX_ROUTER_RETRIES",
    "hold_seconds": "INFERFLUX_HOLD_SECONDS",
    "prefix_chars": "INFERFLUX_PREFIX_CHARS",
    "prefix_load_factor": "INFERFLUX_PREFIX_LOAD_FACTOR",
    "file_poll_seconds": "INFERFLUX_ROUTES_POLL_SECONDS",
    "log_level": "INFERFLUX_LOG_LEVEL",
    "log_format": "INFERFLUX_LOG_FORMAT",
    "prompts_dir": "INFERFLUX_PROMPTS_DIR",
    "prompts_namespace": "INFERFLUX_PROMPTS_NAMESPACE",
    "prompts_ttl_seconds": "INFERFLUX_PROMPTS_TTL_SECONDS",
    "prompts_budget_seconds": "INFERFLUX_PROMPTS_BUDGET_SECONDS",
    "auth": "INFERFLUX_AUTH",
    "auth_allow_open": "INFERFLUX_AUTH_ALLOW_OPEN",
    "auth_secret_file": "INFERFLUX_AUTH_SECRET_FILE",
    "metrics_auth": "INFERFLUX_METRICS_AUTH",
    "oidc_issuer": "INFERFLUX_OIDC_ISSUER",
    "oidc_audience": "INFERFLUX_OIDC_AUDIENCE",
    "oidc_jwks_url": "INFERFLUX_OIDC_JWKS_URL",
    "oidc_algorithms": "INFERFLUX_OIDC_ALGORITHMS",
    "oidc_tenant_claim": "INFERFLUX_OIDC_TENANT_CLAIM",
    "oidc_scopes_claim": "INFERFLUX_OIDC_SCOPES_CLAIM",
    "oidc_leeway_seconds": "INFERFLUX_OIDC_LEEWAY_SECONDS",
    "oidc_jwks_refresh_seconds": "INFERFLUX_OIDC_JWKS_REFRESH_SECONDS",
    "tls_cert_file": "INFERFLUX_TLS_CERT_FILE",
    "tls_key_file": "INFERFLUX_TLS_KEY_FILE",
    "tls_client_ca_file": "INFERFLUX_TLS_CLIENT_CA_FILE",
    "upstream_ca_file": "INFERFLUX_UPSTREAM_CA_FILE",
    "admin_host": "INFERFLUX_ADMIN_HOST",
    "admin_port": "INFERFLUX_ADMIN_PORT",
    "admin_token_file": "INFERFLUX_ADMIN_TOKEN_FILE",
    "redis_url": "INFERFLUX_REDIS_URL",
    "policy_file": "INFERFLUX_POLICY_FILE",
    "policy_configmap": "INFERFLUX_POLICY_CONFIGMAP",
    "kek_file": "INFERFLUX_KEK_FILE",
    "policy_resync_seconds": "INFERFLUX_POLICY_RESYNC_SECONDS",
    "audit_dir": "INFERFLUX_AUDIT_DIR",
    "audit_chain": "INFERFLUX_AUDIT_CHAIN",
    "audit_signing_key_file": "INFERFLUX_AUDIT_SIGNING_KEY_FILE",
    "audit_secret_file": "INFERFLUX_AUDIT_SECRET_FILE",
    "audit_commit_seconds": "INFERFLUX_AUDIT_COMMIT_SECONDS",
    "audit_checkpoint_records": "INFERFLUX_AUDIT_CHECKPOINT_RECORDS",
    "audit_checkpoint_seconds": "INFERFLUX_AUDIT_CHECKPOINT_SECONDS",
    "audit_segment_bytes": "INFERFLUX_AUDIT_SEGMENT_BYTES",
    "audit_segment_seconds": "INFERFLUX_AUDIT_SEGMENT_SECONDS",
    "audit_prune_seconds": "INFERFLUX_AUDIT_PRUNE_SECONDS",
    "pricing_file": "INFERFLUX_PRICING_FILE",
    "budget_idempotency_seconds": "INFERFLUX_BUDGET_IDEMPOTENCY_SECONDS",
    "budget_redis_timeout_seconds": "INFERFLUX_BUDGET_REDIS_TIMEOUT_SECONDS",
    "budget_reservation_margin_seconds": "INFERFLUX_BUDGET_RESERVATION_MARGIN_SECONDS",
    "budget_report_seconds": "INFERFLUX_BUDGET_REPORT_SECONDS",
    "budget_thresholds": "INFERFLUX_BUDGET_THRESHOLDS",
    "budget_webhook_url": "INFERFLUX_BUDGET_WEBHOOK_URL",
    "budget_webhook_secret_file": "INFERFLUX_BUDGET_WEBHOOK_SECRET_FILE",
    "guardrails": "INFERFLUX_GUARDRAILS",
    "failover_buffer_bytes": "INFERFLUX_FAILOVER_BUFFER_BYTES",
    "realtime": "INFERFLUX_REALTIME",
    "realtime_ticket_seconds": "INFERFLUX_REALTIME_TICKET_SECONDS",
    "realtime_session_linger_seconds": "INFERFLUX_REALTIME_SESSION_LINGER_SECONDS",
    "realtime_max_sessions": "INFERFLUX_REALTIME_MAX_SESSIONS",
    "realtime_outbox_frames": "INFERFLUX_REALTIME_OUTBOX_FRAMES",
    "realtime_max_frame_bytes": "INFERFLUX_REALTIME_MAX_FRAME_BYTES",
    "realtime_max_frames_per_second": "INFERFLUX_REALTIME_MAX_FRAMES_PER_SECOND",
    "realtime_send_timeout_seconds": "INFERFLUX_REALTIME_SEND_TIMEOUT_SECONDS",
    "realtime_ping_seconds": "INFERFLUX_REALTIME_PING_SECONDS",
    "realtime_heartbeat_seconds": "INFERFLUX_REALTIME_HEARTBEAT_SECONDS",
    "realtime_idle_recognisers": "INFERFLUX_REALTIME_IDLE_RECOGNISERS",
    "mcp_gateway": "INFERFLUX_MCP_GATEWAY",
    "mcp_servers_file": "INFERFLUX_MCP_SERVERS_FILE",
    "activity_report_seconds": "INFERFLUX_ACTIVITY_REPORT_SECONDS",
    "activation_hold_seconds": "INFERFLUX_ACTIVATION_HOLD_SECONDS",
    "workers": "INFERFLUX_ROUTER_WORKERS",
    "reuse_port": "INFERFLUX_ROUTER_REUSE_PORT",
    "fairness": "INFERFLUX_FAIRNESS",
    "fairness_sheddable_share": "INFERFLUX_FAIRNESS_SHEDDABLE_SHARE",
    "fairness_retry_after_seconds": "INFERFLUX_FAIRNESS_RETRY_AFTER_SECONDS",
    "fairness_default_max_tokens": "INFERFLUX_FAIRNESS_DEFAULT_MAX_TOKENS",
    "fairness_sheddable_slots": "INFERFLUX_FAIRNESS_SHEDDABLE_SLOTS",
    "fairness_runtime_preemption": "INFERFLUX_FAIRNESS_RUNTIME_PREEMPTION",
    "batch_dir": "INFERFLUX_BATCH_DIR",
    "batch_workers": "INFERFLUX_BATCH_WORKERS",
    "batch_max_bytes": "INFERFLUX_BATCH_MAX_BYTES",
    "batch_max_lines": "INFERFLUX_BATCH_MAX_LINES",
    "batch_visibility_seconds": "INFERFLUX_BATCH_VISIBILITY_SECONDS",
    "batch_max_attempts": "INFERFLUX_BATCH_MAX_ATTEMPTS",
    "batch_backoff_seconds": "INFERFLUX_BATCH_BACKOFF_SECONDS",
    "batch_tenant_concurrency": "INFERFLUX_BATCH_TENANT_CONCURRENCY",
    "batch_tenant_queued": "INFERFLUX_BATCH_TENANT_QUEUED",
    "batch_retention_seconds": "INFERFLUX_BATCH_RETENTION_SECONDS",
    "console_recent_requests": "INFERFLUX_CONSOLE_RECENT_REQUESTS",
    "console_trace_url": "INFERFLUX_CONSOLE_TRACE_URL",
}

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _parse(kind: type, raw: str) -> object:
    """``raw`` as ``kind``; booleans take the usual spellings and nothing else."""
    if kind is bool:
        text = raw.strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError(raw)
    return kind(raw)


def env_names() -> dict[str, str]:
    """Setting name to environment variable, for the docs and their drift test."""
    return dict(_ENV)


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``environ`` (default ``os.environ``); a malformed value raises `SettingsError`."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field in fields(Settings):
        raw = environ.get(_ENV[field.name])
        if raw is None or raw == "":
            continue
        kind = type(getattr(Settings(), field.name))
        try:
            values[field.name] = _parse(kind, raw)
        except ValueError:
            raise SettingsError(f"{_ENV[field.name]}={raw!r} is not a valid {kind.__name__}") from None
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.routes_configmap and settings.routes_configmap.count("/") != 1:
        raise SettingsError("INFERFLUX_ROUTES_CONFIGMAP must be namespace/name")
    if settings.heartbeat_seconds <= 0 or settings.resume_ttl_seconds <= 0:
        raise SettingsError("INFERFLUX_HEARTBEAT_SECONDS and INFERFLUX_RESUME_TTL_SECONDS must be positive")
    if settings.policy_resync_seconds <= 0:
        raise SettingsError("INFERFLUX_POLICY_RESYNC_SECONDS must be positive")
    if settings.budget_redis_timeout_seconds <= 0:
        raise SettingsError("INFERFLUX_BUDGET_REDIS_TIMEOUT_SECONDS must be positive")
    if settings.policy_configmap and settings.policy_configmap.count("/") != 1:
        raise SettingsError("INFERFLUX_POLICY_CONFIGMAP must be namespace/name")
    if (
        min(
            settings.audit_commit_seconds,
            settings.audit_checkpoint_records,
            settings.audit_checkpoint_seconds,
            settings.audit_segment_bytes,
            settings.audit_segment_seconds,
            settings.audit_prune_seconds,
        )
        <= 0
    ):
        raise SettingsError("INFERFLUX_AUDIT_* intervals, counts and sizes must be positive")
    if settings.log_format not in ("json", "text"):
        raise SettingsError("INFERFLUX_LOG_FORMAT must be json or text")
    thresholds(settings)
    if not 0 < settings.activity_report_seconds <= 30 or settings.activation_hold_seconds < 0:
        raise SettingsError(
            "INFERFLUX_ACTIVITY_REPORT_SECONDS must be in (0, 30] (the operator ignores in-flight "
            "reports older than 60 s) and INFERFLUX_ACTIVATION_HOLD_SECONDS must not be negative"
        )
    if not 0 <= settings.fairness_sheddable_share <= 1 or not 0 <= settings.fairness_sheddable_slots <= 1:
        raise SettingsError(
            "INFERFLUX_FAIRNESS_SHEDDABLE_SHARE and INFERFLUX_FAIRNESS_SHEDDABLE_SLOTS "
            "must be between 0 and 1"
        )
    if settings.fairness_retry_after_seconds <= 0 or settings.fairness_default_max_tokens <= 0:
        raise SettingsError(
            "INFERFLUX_FAIRNESS_RETRY_AFTER_SECONDS and INFERFLUX_FAIRNESS_DEFAULT_MAX_TOKENS "
            "must be positive"
        )
    if settings.budget_webhook_url and not settings.budget_webhook_secret_file:
        raise SettingsError(
            "INFERFLUX_BUDGET_WEBHOOK_URL needs INFERFLUX_BUDGET_WEBHOOK_SECRET_FILE (its signing key)"
        )
    realtime_checks(settings)
    batch_settings(settings)
    console_settings(settings)
    return settings


def realtime_checks(settings: Settings) -> None:
    """`SettingsError` unless the realtime limits are positive and pings fall in 1-300 s."""
    if (
        min(
            settings.realtime_ticket_seconds,
            settings.realtime_session_linger_seconds,
            settings.realtime_max_sessions,
            settings.realtime_outbox_frames,
            settings.realtime_max_frame_bytes,
            settings.realtime_max_frames_per_second,
            settings.realtime_send_timeout_seconds,
            settings.realtime_heartbeat_seconds,
        )
        <= 0
    ):
        raise SettingsError("INFERFLUX_REALTIME_* limits, sizes and intervals must be positive")
    if settings.realtime_idle_recognisers < 0:
        raise SettingsError("INFERFLUX_REALTIME_IDLE_RECOGNISERS must be 0 or more")
    if not 1 <= settings.realtime_ping_seconds <= 300:
        raise SettingsError("INFERFLUX_REALTIME_PING_SECONDS must be between 1 and 300")


def batch_settings(settings: Settings) -> None:
    """`SettingsError` when the Batch API's settings do not fit together."""
    if not settings.batch_dir:
        return
    if not settings.redis_url:
        raise SettingsError("INFERFLUX_BATCH_DIR needs INFERFLUX_REDIS_URL (the batch queue)")
    positive = (
        settings.batch_max_bytes,
        settings.batch_max_lines,
        settings.batch_visibility_seconds,
        settings.batch_max_attempts,
        settings.batch_backoff_seconds,
        settings.batch_retention_seconds,
    )
    if min(positive) <= 0 or min(settings.batch_workers, settings.batch_tenant_concurrency) < 0:
        raise SettingsError("INFERFLUX_BATCH_* sizes, counts and intervals must be positive")


def thresholds(settings: Settings) -> tuple[float, ...]:
    """The budget alert thresholds, shares in (0, 10]; `SettingsError` when malformed."""
    try:
        shares = tuple(float(part) for part in settings.budget_thresholds.split(",") if part.strip())
    except ValueError:
        shares = ()
    if not shares or not all(0 < share <= 10 for share in shares):
        raise SettingsError(
            f"INFERFLUX_BUDGET_THRESHOLDS={settings.budget_thresholds!r}: shares like 0.5,0.8,1.0"
        )
    return shares


def console_settings(settings: Settings) -> None:
    """`SettingsError` unless the console keeps a sane number of requests and its trace link is an
    http(s) URL template naming ``{trace_id}``."""
    if not 0 <= settings.console_recent_requests <= 100_000:
        raise SettingsError("INFERFLUX_CONSOLE_RECENT_REQUESTS must be between 0 and 100000")
    url = settings.console_trace_url
    if url and (not url.startswith(("http://", "https://")) or "{trace_id}" not in url):
        raise SettingsError(
            "INFERFLUX_CONSOLE_TRACE_URL must be an http(s) URL containing {trace_id}, "
            "e.g. http://jaeger:16686/trace/{trace_id}"
        )
