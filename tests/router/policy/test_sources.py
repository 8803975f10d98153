"""Policy snapshots from a file: applied when they change, a broken one ignored (last good kept)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from inferflux.crds.policy import PolicySnapshot
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.policy.sources import (
    PolicyConfigMapSource,
    PolicyFileSource,
    SnapshotError,
    parse_snapshot,
)


def snapshot(**tenants: dict) -> str:
    return json.dumps(
        {"version": 1, "tenants": {name: {"name": name, **spec} for name, spec in tenants.items()}}
    )


def write(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(path)


async def eventually(condition, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_parse_names_the_problem() -> None:
    assert parse_snapshot(snapshot(a={"scopes": ["admin"]})).tenants["a"].scopes == ["admin"]
    with pytest.raises(SnapshotError, match="not JSON"):
        parse_snapshot("{")
    with pytest.raises(SnapshotError, match=r"invalid at tenants\.a\.scopes\.0"):
        parse_snapshot(snapshot(a={"scopes": ["root"]}))


async def test_file_changes_reach_the_holder_and_a_broken_file_is_ignored(tmp_path: Path, caplog) -> None:
    path = tmp_path / "policy.json"
    holder = PolicyHolder()
    source = PolicyFileSource(str(path), poll_seconds=0.02)
    task = asyncio.ensure_future(source.run(holder.set_snapshot))
    try:
        write(path, snapshot(**{"team-a": {"models": ["gemma"]}}))
        await eventually(lambda: "team-a" in holder.current.tenants)
        assert holder.current.tenants["team-a"].source == "resource"
        with caplog.at_level(logging.ERROR):
            write(path, "{broken")
            await eventually(lambda: "keeping the previous policy snapshot" in caplog.text)
        assert "team-a" in holder.current.tenants, "last good snapshot kept"
        write(path, snapshot(**{"team-b": {}}))
        await eventually(lambda: set(holder.current.tenants) == {"team-b"})
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_configmap_objects_apply_their_policy_key_only_when_valid(caplog) -> None:
    source = PolicyConfigMapSource("inferflux", "inferflux-policy")
    applied: list[PolicySnapshot] = []
    source._apply_object({"data": {"policy.json": snapshot(a={})}}, applied.append)
    with caplog.at_level(logging.ERROR):
        source._apply_object({"data": {"policy.json": "nope"}}, applied.append)
        source._apply_object({"data": {"routes.json": snapshot(b={})}}, applied.append)
    assert [set(s.tenants) for s in applied] == [{"a"}]
    assert "has no key policy.json" in caplog.text
