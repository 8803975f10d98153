"""Every router route has a scope or is deliberately open; the table matches docs/identity.md."""

from __future__ import annotations

from pathlib import Path

from inferflux.crds.tenant import Scope
from inferflux.router.app import Router
from inferflux.router.identity.scopes import METRICS_ROUTE, OPEN_ROUTES, ROUTE_SCOPES, route_scopes
from inferflux.router.settings import Settings

DOC = Path(__file__).resolve().parents[3] / "docs" / "identity.md"


def test_every_route_is_guarded_or_open() -> None:
    routes = set(Router(Settings(auth=False)).routes)
    routes |= {(method, "/mcp") for method in ("POST", "GET", "DELETE")}  # the gateway's, when on
    assert routes == set(ROUTE_SCOPES) | OPEN_ROUTES | {METRICS_ROUTE}


def test_metrics_scope_is_optional() -> None:
    assert METRICS_ROUTE not in route_scopes(False)
    assert route_scopes(True)[METRICS_ROUTE] is Scope.MODELS_READ


def test_the_documented_table_is_the_enforced_one() -> None:
    text = DOC.read_text()
    section = text[text.index("## Scopes") :]
    for (method, path), scope in ROUTE_SCOPES.items():
        assert f"| `{method} {path}` | `{scope.value}` |" in section


def test_batch_paths_need_the_batch_scope() -> None:
    from inferflux.router.identity.scopes import prefix_scope

    assert prefix_scope("/v1/batches") is Scope.BATCH
    assert prefix_scope("/v1/files/file-1/content") is Scope.BATCH
    assert prefix_scope("/v1/filesystem") is None
    assert prefix_scope("/v1/chat/completions") is None
    row = "| `/v1/files`, `/v1/files/*`, `/v1/batches`, `/v1/batches/*` (every method) | `batch`"
    assert row in DOC.read_text()
