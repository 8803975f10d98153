"""Which scope each public route requires (docs/identity.md, "Scopes", shows the same table).

A route absent from the table is open: the health probes, and ``/metrics`` unless
``INFERFLUX_METRICS_AUTH`` puts it behind ``models:read``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from inferflux.crds.tenant import Scope

Route = tuple[str, str]  # (method, path)

ROUTE_SCOPES: Mapping[Route, Scope] = MappingProxyType(
    {
        ("POST", "/v1/chat/completions"): Scope.INFERENCE,
        ("POST", "/v1/completions"): Scope.INFERENCE,
        ("POST", "/v1/embeddings"): Scope.INFERENCE,
        ("POST", "/v1/messages"): Scope.INFERENCE,
        ("POST", "/api/v1/inference"): Scope.INFERENCE,
        ("POST", "/api/v1/inference:stream"): Scope.INFERENCE,
        ("GET", "/v1/models"): Scope.MODELS_READ,
        # Realtime (docs/realtime.md): the WebSockets are admitted by the ticket these issue.
        ("POST", "/api/v1/voice/session"): Scope.INFERENCE,
        ("POST", "/api/v1/xr/session"): Scope.INFERENCE,
        ("POST", "/api/v1/voice:stream"): Scope.INFERENCE,
        ("POST", "/api/v1/xr:stream"): Scope.INFERENCE,
        # The MCP gateway, when it is on (docs/realtime.md).
        ("POST", "/mcp"): Scope.INFERENCE,
        ("GET", "/mcp"): Scope.INFERENCE,
        ("DELETE", "/mcp"): Scope.INFERENCE,
    }
)
# Path families with ids in them (the Batch API): every method under the prefix needs the scope.
PREFIX_SCOPES: Mapping[str, Scope] = MappingProxyType({"/v1/files": Scope.BATCH, "/v1/batches": Scope.BATCH})
OPEN_ROUTES = frozenset({("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/livez")})
METRICS_ROUTE: Route = ("GET", "/metrics")


def route_scopes(metrics_auth: bool) -> dict[Route, Scope]:
    """The table the router enforces: `ROUTE_SCOPES`, plus ``/metrics`` when ``metrics_auth``."""
    table = dict(ROUTE_SCOPES)
    if metrics_auth:
        table[METRICS_ROUTE] = Scope.MODELS_READ
    return table


def prefix_scope(path: str) -> Scope | None:
    """The scope a path under one of `PREFIX_SCOPES` needs; None for any other path."""
    for prefix, scope in PREFIX_SCOPES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return scope
    return None
