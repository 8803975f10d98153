"""The catalog: latest live version by id, snapshots by id@version, deletion drops them all."""

from __future__ import annotations

from inferflux.prompts.catalog import Catalog

from .conftest import make_spec


def test_latest_version_wins_and_snapshots_stay() -> None:
    catalog = Catalog()
    catalog.put("a.yaml", make_spec(version="1.0.0"))
    catalog.put("a.yaml", make_spec(version="1.10.0", description="new"))
    assert catalog.get("greeter").version == "1.10.0"  # type: ignore[union-attr]
    assert catalog.get("greeter", "1.0.0").description == ""  # type: ignore[union-attr]


def test_highest_version_across_items() -> None:
    catalog = Catalog()
    catalog.put("new.yaml", make_spec(version="2.0.0"))
    catalog.put("old.yaml", make_spec(version="1.5.0"))
    assert catalog.get("greeter").version == "2.0.0"  # type: ignore[union-attr]
    catalog.remove("new.yaml")
    assert catalog.get("greeter").version == "1.5.0"  # type: ignore[union-attr]


def test_deleting_the_last_item_drops_snapshots() -> None:
    catalog = Catalog()
    catalog.put("a.yaml", make_spec(version="1.0.0"))
    catalog.put("a.yaml", make_spec(version="1.1.0"))
    assert catalog.remove("a.yaml") == {"greeter"}
    assert catalog.get("greeter") is None
    assert catalog.get("greeter", "1.0.0") is None
    assert len(catalog) == 0


def test_changing_the_id_of_an_item_reports_both() -> None:
    catalog = Catalog()
    catalog.put("a.yaml", make_spec())
    assert catalog.put("a.yaml", make_spec(id="other")) == {"other", "greeter"}
    assert catalog.ids() == ["other"]
