"""The admin API's OpenAPI document (docs/admin-openapi.yaml), generated from the FastAPI app.

``python -m inferflux.router.admin.openapi`` rewrites it; ``--check`` exits 1 when the file drifted
from the code, which a unit test also asserts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from inferflux.crds.routing import RoutingTable
from inferflux.router.admin.app import create_app
from inferflux.router.admin.auth import AdminAuth
from inferflux.router.admin.console import ConsoleSources
from inferflux.router.admin.service import AdminService
from inferflux.router.openapi import to_yaml, write_or_check
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.policy.store import MemoryPolicyStore

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "admin-openapi.yaml"


def build() -> dict[str, Any]:
    """The OpenAPI document of an admin app (its routes do not depend on configuration)."""
    holder = PolicyHolder()
    app = create_app(
        AdminService(holder, MemoryPolicyStore(holder), None, None),
        AdminAuth(holder, None, None),
        console=ConsoleSources(RoutingTable, {}),
    )
    return app.openapi()


def render() -> str:
    """The document as YAML text."""
    return to_yaml(build())


def main(argv: list[str]) -> int:
    """Write docs/admin-openapi.yaml, or with ``--check`` report drift."""
    return write_or_check(DOCUMENT, render(), "inferflux.router.admin.openapi", argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
