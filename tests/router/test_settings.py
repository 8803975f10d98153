"""Settings from the environment, and the entry point's one-line failures."""

from __future__ import annotations

import subprocess
import sys

import pytest

from inferflux.router.settings import SettingsError, from_env


def test_defaults_and_overrides() -> None:
    settings = from_env({"INFERFLUX_ROUTER_PORT": "9000", "INFERFLUX_HEARTBEAT_SECONDS": "2.5"})
    assert (settings.port, settings.heartbeat_seconds, settings.host) == (9000, 2.5, "127.0.0.1")
    assert from_env({}).port == 8000


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"INFERFLUX_ROUTER_PORT": "eighty"}, "INFERFLUX_ROUTER_PORT"),
        ({"INFERFLUX_ROUTES_CONFIGMAP": "no-slash"}, "namespace/name"),
        ({"INFERFLUX_HEARTBEAT_SECONDS": "0"}, "positive"),
        ({"INFERFLUX_BUDGET_REDIS_TIMEOUT_SECONDS": "0"}, "INFERFLUX_BUDGET_REDIS_TIMEOUT_SECONDS"),
        ({"INFERFLUX_REALTIME_MAX_FRAME_BYTES": "0"}, "INFERFLUX_REALTIME_"),
        ({"INFERFLUX_REALTIME_PING_SECONDS": "0.5"}, "between 1 and 300"),
        ({"INFERFLUX_REALTIME_IDLE_RECOGNISERS": "-1"}, "INFERFLUX_REALTIME_IDLE_RECOGNISERS"),
        ({"INFERFLUX_CONSOLE_RECENT_REQUESTS": "-1"}, "INFERFLUX_CONSOLE_RECENT_REQUESTS"),
        ({"INFERFLUX_CONSOLE_TRACE_URL": "javascript:alert(1)//{trace_id}"}, "http"),
        ({"INFERFLUX_CONSOLE_TRACE_URL": "http://jaeger:16686/search"}, "trace_id"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_env(environ)


def test_entry_point_fails_with_one_readable_line(tmp_path) -> None:
    routes = tmp_path / "routes.json"
    routes.write_text("{broken")
    env = {"INFERFLUX_ROUTES_FILE": str(routes), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "inferflux.router"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "routing table is not JSON" in result.stderr


def test_every_setting_is_documented() -> None:
    from pathlib import Path

    from inferflux.router.settings import env_names

    text = (Path(__file__).resolve().parents[2] / "docs" / "router.md").read_text()
    missing = [name for name in env_names().values() if f"`{name}`" not in text]
    assert missing == []


def test_source_follows_the_settings() -> None:
    from inferflux.router.__main__ import source_for
    from inferflux.router.discovery import ConfigMapSource, FileSource

    both = from_env(
        {"INFERFLUX_ROUTES_FILE": "/r.json", "INFERFLUX_ROUTES_CONFIGMAP": "ops/inferflux-routing"}
    )
    configmap = source_for(both)
    assert isinstance(configmap, ConfigMapSource)
    assert (configmap.namespace, configmap.name) == ("ops", "inferflux-routing")
    assert isinstance(source_for(from_env({"INFERFLUX_ROUTES_FILE": "/r.json"})), FileSource)
    assert source_for(from_env({})) is None
