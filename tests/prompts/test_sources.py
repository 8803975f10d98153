"""The directory source: real files, checksums enforced, changes noticed by polling."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import REGISTRY

from inferflux.prompts.sources import DirectorySource

from .conftest import make_spec, write_manifest


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("inferflux_prompts_rejected_total", {"reason": reason}) or 0.0


async def test_fetch_reads_manifests(manifest_dir: Path) -> None:
    source = DirectorySource(manifest_dir)
    spec = await source.fetch("greeter")
    assert spec is not None
    assert spec.version == "1.0.0"
    assert await source.fetch("greeter", "9.9.9") is None
    assert await source.fetch("nobody") is None
    assert await source.top(5) == ["greeter"]


async def test_tampered_and_invalid_manifests_are_refused(manifest_dir: Path) -> None:
    path = manifest_dir / "greeter.yaml"
    path.write_text(path.read_text().replace("Be kind.", "Be evil."))
    (manifest_dir / "broken.yaml").write_text("id: [\n")
    before_checksum, before_invalid = rejected("checksum"), rejected("invalid")
    assert await DirectorySource(manifest_dir).fetch("greeter") is None
    assert rejected("checksum") == before_checksum + 1
    assert rejected("invalid") == before_invalid + 1


async def test_changes_yield_edited_ids(manifest_dir: Path) -> None:
    source = DirectorySource(manifest_dir, poll_interval=0.02)
    stream = source.changes()
    assert await asyncio.wait_for(anext(stream), 1) == "greeter"  # the initial load
    write_manifest(manifest_dir / "greeter.yaml", make_spec(version="1.1.0"))
    assert await asyncio.wait_for(anext(stream), 2) == "greeter"
    assert (await source.fetch("greeter")).version == "1.1.0"  # type: ignore[union-attr]
    assert (await source.fetch("greeter", "1.0.0")) is not None  # the snapshot
    await stream.aclose()


async def test_a_change_seen_by_fetch_is_still_reported(manifest_dir: Path) -> None:
    source = DirectorySource(manifest_dir, poll_interval=0.02)
    stream = source.changes()
    await asyncio.wait_for(anext(stream), 1)
    write_manifest(manifest_dir / "second.yaml", make_spec(id="second"))
    assert await source.fetch("second") is not None  # noticed here first
    assert await asyncio.wait_for(anext(stream), 1) == "second"
    await stream.aclose()


async def test_missing_directory_is_empty(tmp_path: Path) -> None:
    assert await DirectorySource(tmp_path / "none").fetch("greeter") is None
