"""Operator settings from the environment."""

from __future__ import annotations

import pytest

from inferflux.operator.factory import kopf_settings
from inferflux.operator.settings import (
    DEFAULT_VLLM_IMAGE,
    Settings,
    SettingsError,
    parse_namespaces,
    settings_from_env,
)


def test_defaults_watch_every_namespace_with_versioned_images() -> None:
    settings = settings_from_env({})
    assert settings.clusterwide
    assert settings.operator_namespace == "inferflux-system"
    assert settings.runtime_image.startswith("ghcr.io/inferflux/runtime:")
    assert settings.vllm_image == DEFAULT_VLLM_IMAGE
    assert settings.routing_configmap == "inferflux-routing"
    assert not settings.air_gapped


def test_every_variable_is_read() -> None:
    settings = settings_from_env(
        {
            "INFERFLUX_NAMESPACES": "a, b,,a",
            "INFERFLUX_OPERATOR_NAMESPACE": "ops",
            "INFERFLUX_RUNTIME_IMAGE": "r:1",
            "INFERFLUX_VLLM_IMAGE": "v:2",
            "INFERFLUX_AIR_GAPPED": "TRUE",
            "INFERFLUX_ROUTING_CONFIGMAP": "routes",
            "INFERFLUX_HEALTH_PORT": "9000",
        }
    )
    assert settings.namespaces == ("a", "b")
    assert not settings.clusterwide
    assert (settings.operator_namespace, settings.runtime_image, settings.vllm_image) == ("ops", "r:1", "v:2")
    assert settings.air_gapped
    assert settings.network.air_gapped
    assert settings.network.router.namespace == "ops"
    assert (settings.routing_configmap, settings.health_port) == ("routes", 9000)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"INFERFLUX_AIR_GAPPED": "maybe"}, "INFERFLUX_AIR_GAPPED"),
        ({"INFERFLUX_HEALTH_PORT": "http"}, "INFERFLUX_HEALTH_PORT"),
        ({"INFERFLUX_HEALTH_PORT": "70000"}, "INFERFLUX_HEALTH_PORT"),
        ({"INFERFLUX_IDLE_SECONDS_CAP": "soon"}, "INFERFLUX_IDLE_SECONDS_CAP"),
        ({"INFERFLUX_IDLE_SECONDS_CAP": "0"}, "INFERFLUX_IDLE_SECONDS_CAP"),
        ({"INFERFLUX_IDLE_SECONDS_CAP": "nan"}, "INFERFLUX_IDLE_SECONDS_CAP"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        settings_from_env(env)


def test_the_idle_cap_is_off_unless_set() -> None:
    assert settings_from_env({}).idle_cap_seconds is None
    assert settings_from_env({"INFERFLUX_IDLE_SECONDS_CAP": "2.5"}).idle_cap_seconds == 2.5


def test_namespace_list_keeps_order_and_drops_blanks() -> None:
    assert parse_namespaces(" x ,y,, x") == ("x", "y")
    assert parse_namespaces("") == ()
    assert parse_namespaces(["team-a", "team-a", "b"]) == ("team-a", "b")
    for bad in ("team-*", "Team", "-a", "a" * 64):
        with pytest.raises(SettingsError, match="not a namespace name"):
            parse_namespaces(f"ok,{bad}")


def test_kopf_scans_namespaces_only_when_it_watches_them_all() -> None:
    # the namespaced RBAC grants no list of namespaces: kopf must serve the named ones directly
    assert kopf_settings(Settings(namespaces=("team-a",))).scanning.disabled is True
    assert kopf_settings(Settings()).scanning.disabled is False
