"""Reading Tenants from local YAML: parsed with the API types, duplicates refused, other kinds kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferflux.operator.local.resources import ResourceError, load

TENANT = "kind: Tenant\nmetadata: {{name: {name}}}\nspec: {{scopes: [inference, batch]}}\n"


def test_tenants_are_read_beside_the_other_kinds(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        TENANT.format(name="team-a") + "---\nkind: ConfigMap\nmetadata: {name: x}\n"
    )
    (tmp_path / "b.yml").write_text(TENANT.format(name="team-b"))
    found = load([tmp_path])
    assert [t.metadata.name for t in found.tenants] == ["team-a", "team-b"]
    assert found.tenants[0].spec.scopes == ["inference", "batch"]
    assert found.models == []


def test_two_tenants_with_one_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(TENANT.format(name="team-a"))
    (tmp_path / "b.yaml").write_text(TENANT.format(name="team-a"))
    with pytest.raises(ResourceError, match="two Tenants are named 'team-a'"):
        load([tmp_path])


def test_an_unknown_scope_names_the_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("kind: Tenant\nmetadata: {name: t}\nspec: {scopes: [root]}\n")
    with pytest.raises(
        ResourceError, match=r"t\.yaml: Tenant 't' is invalid: spec\.scopes\.0: Input should be"
    ):
        load([tmp_path])
