"""Operator settings: what to watch, which images to run, and install-wide defaults.

Read once at start-up from the environment (``INFERFLUX_*``), with the CLI able to override the
namespaces. Everything else in the operator receives a ``Settings`` value instead of reading the
environment itself, so render functions stay pure and tests pass settings explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata

from inferflux.operator.networkpolicy import NetworkPolicySettings

DEFAULT_OPERATOR_NAMESPACE = "inferflux-system"
DEFAULT_VLLM_IMAGE = "vllm/vllm-openai:v0.8.5"
DEFAULT_ROUTING_CONFIGMAP = "inferflux-routing"
HEALTH_PORT = 8081
TRUTHY = frozenset({"1", "true", "yes", "on"})
FALSY = frozenset({"", "0", "false", "no", "off"})


def _version() -> str:
    try:
        return metadata.version("inferflux")
    except metadata.PackageNotFoundError:  # pragma: no cover - only outside an install
        return "dev"


def default_runtime_image() -> str:
    """The runtime image that matches this operator's own version."""
    return f"ghcr.io/inferflux/runtime:{_version()}"


@dataclass(frozen=True)
class Settings:
    """Install-wide operator configuration."""

    namespaces: tuple[str, ...] = ()
    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE
    runtime_image: str = field(default_factory=default_runtime_image)
    vllm_image: str = DEFAULT_VLLM_IMAGE
    air_gapped: bool = False
    routing_configmap: str = DEFAULT_ROUTING_CONFIGMAP
    health_port: int = HEALTH_PORT
    network: NetworkPolicySettings = field(default_factory=NetworkPolicySettings)
    idle_cap_seconds: float | None = None  # tests only: scale to zero sooner than idleSeconds

    @property
    def clusterwide(self) -> bool:
        """An empty namespace list means every namespace."""
        return not self.namespaces


class SettingsError(ValueError):
    """A setting has a value the operator cannot use; the message names the variable."""


def parse_bool(name: str, value: str) -> bool:
    """A boolean environment variable, accepting the usual spellings and rejecting the rest."""
    text = value.strip().lower()
    if text in TRUTHY:
        return True
    if text in FALSY:
        return False
    raise SettingsError(f"{name}={value!r} is not a boolean (use true or false)")


_NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def parse_namespaces(value: str | Iterable[str]) -> tuple[str, ...]:
    """A comma-separated namespace list (or the names); blanks and duplicates dropped, order kept.

    Raises ``SettingsError`` for anything but exact namespace names: the namespaced RBAC grants
    Roles in named namespaces, so a pattern could never be served.
    """
    parts = value.split(",") if isinstance(value, str) else value
    names = tuple(dict.fromkeys(name for name in (part.strip() for part in parts) if name))
    for name in names:
        if not _NAMESPACE_NAME.fullmatch(name):
            raise SettingsError(f"{name!r} is not a namespace name (no patterns: list each namespace)")
    return names


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Settings from ``INFERFLUX_*`` variables, defaults for the ones not set."""
    health_port = env.get("INFERFLUX_HEALTH_PORT", str(HEALTH_PORT))
    if not health_port.isdigit() or not 0 < int(health_port) < 65536:
        raise SettingsError(f"INFERFLUX_HEALTH_PORT={health_port!r} is not a TCP port")
    idle_cap = env.get("INFERFLUX_IDLE_SECONDS_CAP", "")
    try:
        idle_cap_seconds = float(idle_cap) if idle_cap else None
    except ValueError:
        idle_cap_seconds = -1.0
    if idle_cap_seconds is not None and not idle_cap_seconds > 0:
        raise SettingsError(f"INFERFLUX_IDLE_SECONDS_CAP={idle_cap!r} is not a positive number of seconds")
    return Settings(
        namespaces=parse_namespaces(env.get("INFERFLUX_NAMESPACES", "")),
        operator_namespace=env.get("INFERFLUX_OPERATOR_NAMESPACE") or DEFAULT_OPERATOR_NAMESPACE,
        runtime_image=env.get("INFERFLUX_RUNTIME_IMAGE") or default_runtime_image(),
        vllm_image=env.get("INFERFLUX_VLLM_IMAGE") or DEFAULT_VLLM_IMAGE,
        air_gapped=parse_bool("INFERFLUX_AIR_GAPPED", env.get("INFERFLUX_AIR_GAPPED", "false")),
        routing_configmap=env.get("INFERFLUX_ROUTING_CONFIGMAP") or DEFAULT_ROUTING_CONFIGMAP,
        health_port=int(health_port),
        network=NetworkPolicySettings.from_env(env),
        idle_cap_seconds=idle_cap_seconds,
    )
