"""The environment the chart renders is what the operator and router read, value for value.

The chart and the programs meet only through ``INFERFLUX_*`` variables and ports; these tests feed
the rendered Deployments' env to the programs' own settings parsers, so a renamed variable or a
value the program rejects fails here instead of in a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from inferflux.operator.networkpolicy import NetworkPolicySettings, Peer
from inferflux.operator.settings import settings_from_env
from inferflux.router.settings import from_env as router_settings_from_env

Render = Callable[..., list[dict[str, Any]]]


def container(objs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (deployment,) = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == name]
    first: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return first


SECRET_VALUE = "secret-value"


def env_of(c: dict[str, Any], namespace: str = "inferflux-system") -> dict[str, str]:
    """The container's env as the kubelet resolves it: the namespace fieldRef, Secret keys (as
    ``SECRET_VALUE``) and ``$(NAME)`` references to variables defined before."""
    env: dict[str, str] = {}
    for item in c["env"]:
        if "value" in item:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), item["value"])
        elif "secretKeyRef" in item["valueFrom"]:
            env[item["name"]] = SECRET_VALUE
        elif item["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace":
            env[item["name"]] = namespace
    return env


VALUES = {
    "airGapped": True,
    "watchNamespaces": ["team-a", "team-b"],
    "runtimeImage": {"registry": "registry.corp", "repository": "ml/runtime", "tag": "9.9.9"},
    "networkPolicy": {
        "scraper": {"namespace": "observability", "podLabels": {"app": "vmagent", "tier": "metrics"}},
        "dns": {"namespace": "dns", "podLabels": {"app": "coredns"}},
        "providerCIDRs": ["203.0.113.0/24"],
    },
}


def test_operator_reads_the_chart_values(render_chart: Render) -> None:
    operator = container(render_chart(VALUES), "inferflux-operator")
    settings = settings_from_env(env_of(operator))
    assert settings.air_gapped
    assert settings.namespaces == ("team-a", "team-b")
    assert settings.operator_namespace == "inferflux-system"
    assert settings.runtime_image == "registry.corp/ml/runtime:9.9.9"
    assert settings.vllm_image == "docker.io/vllm/vllm-openai:v0.8.5"
    assert settings.routing_configmap == "inferflux-routing"
    assert settings.network.air_gapped
    assert settings.network.scraper == Peer("observability", {"app": "vmagent", "tier": "metrics"})
    assert settings.network.dns == Peer("dns", {"app": "coredns"})
    assert settings.network.provider_cidrs == ("203.0.113.0/24",)
    assert operator["ports"][0]["containerPort"] == settings.health_port
    assert operator["args"] == ["--log-level", "INFO"]


def test_operator_defaults_match_the_chart_defaults(render_chart: Render) -> None:
    settings = settings_from_env(env_of(container(render_chart({}), "inferflux-operator")))
    assert not settings.air_gapped
    assert settings.clusterwide
    assert settings.network == NetworkPolicySettings()


def test_router_reads_the_chart_values(render_chart: Render) -> None:
    router = container(
        render_chart({"router": {"port": 8443, "env": {"INFERFLUX_ROUTER_RETRIES": 3}}}), "inferflux-router"
    )
    settings = router_settings_from_env(env_of(router))
    assert settings.port == router["ports"][0]["containerPort"] == 8443
    assert settings.host == "0.0.0.0"
    assert settings.routes_configmap == "inferflux-system/inferflux-routing"
    assert settings.retries == 3
    assert router["command"] == ["python", "-m", "inferflux.router"]


def test_router_reads_the_identity_settings(render_chart: Render) -> None:
    router = container(render_chart({"router": {"admin": {"port": 9001}}}), "inferflux-router")
    settings = router_settings_from_env(env_of(router))
    assert settings.auth is True
    assert settings.auth_allow_open is False
    assert settings.admin_host == "0.0.0.0"
    assert settings.admin_port == 9001 == {p["name"]: p["containerPort"] for p in router["ports"]}["admin"]
    assert settings.policy_configmap == "inferflux-system/inferflux-policy"
    assert settings.redis_url == f"redis://:{SECRET_VALUE}@inferflux-redis.inferflux-system.svc:6379/0"
    assert settings.auth_secret_file.startswith("/var/run/secrets/inferflux/auth/")
    assert settings.admin_token_file.startswith("/var/run/secrets/inferflux/auth/")
    open_router = container(render_chart({"auth": {"enabled": False}}), "inferflux-router")
    open_settings = router_settings_from_env(env_of(open_router))
    assert (open_settings.auth, open_settings.auth_allow_open) == (False, True)


def test_network_policies_and_operator_agree_on_who_the_router_is(render_chart: Render) -> None:
    """The operator's runtime policies admit the router by labels the chart's router pods carry."""
    objs = render_chart({})
    (router,) = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "inferflux-router"]
    (operator,) = [
        o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "inferflux-operator"
    ]
    settings = settings_from_env(env_of(container(objs, "inferflux-operator"))).network
    for peer, deployment in ((settings.router, router), (settings.operator, operator)):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert dict(peer.pod_labels).items() <= labels.items()
        assert peer.namespace == deployment["metadata"]["namespace"]
