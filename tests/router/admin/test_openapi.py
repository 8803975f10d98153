"""docs/admin-openapi.yaml: current with the code, and covering every admin route."""

from __future__ import annotations

import yaml

from inferflux.router.admin import openapi


def test_document_has_not_drifted_from_the_code() -> None:
    assert openapi.DOCUMENT.read_text() == openapi.render(), "run: python -m inferflux.router.admin.openapi"
    assert openapi.main(["--check"]) == 0


def test_every_route_is_under_admin_v1_and_key_views_carry_no_digest() -> None:
    document = yaml.safe_load(openapi.DOCUMENT.read_text())
    assert document["paths"]
    assert all(path.startswith("/admin/v1/") for path in document["paths"])
    assert "digest" not in document["components"]["schemas"]["KeyView"]["properties"]
    assert "value" not in document["components"]["schemas"]["SecretView"]["properties"]
