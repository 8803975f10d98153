"""The NetworkPolicies rendered from InferenceModels (their meaning is checked in tests/delivery)."""

from __future__ import annotations

from typing import Any

import pytest

from inferflux.crds.inferencemodel import InferenceModel
from inferflux.operator.networkpolicy import (
    NetworkPolicySettings,
    Peer,
    render_network_policies,
    render_router_provider_egress,
)

SHA = "a" * 64
POD_LABELS = {"inferflux.io/model": "gemma"}


def local_model(name: str = "gemma", *, air_gapped: bool = False) -> InferenceModel:
    return InferenceModel.from_body(
        {
            "metadata": {"name": name, "namespace": "team-a"},
            "spec": {
                "engine": "llamacpp",
                "airGapped": air_gapped,
                "source": {"uri": "pvc://models/gemma.gguf", "sha256": SHA},
            },
        }
    )


def provider_model(name: str, base_url: str | None = None, *, air_gapped: bool = False) -> InferenceModel:
    provider: dict[str, Any] = {"name": "openai-compatible" if base_url else "openai", "model": "m"}
    if base_url:
        provider["baseURL"] = base_url
    return InferenceModel.from_body(
        {
            "metadata": {"name": name, "namespace": "team-a"},
            "spec": {"engine": "provider", "airGapped": air_gapped, "provider": provider},
        }
    )


def only(policies: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(policies) == 1
    return policies[0]


def test_runtime_policy_selects_the_model_pods_in_its_namespace() -> None:
    policy = only(render_network_policies(local_model(), POD_LABELS, NetworkPolicySettings()))
    assert policy["metadata"]["name"] == "gemma-runtime"
    assert policy["metadata"]["namespace"] == "team-a"
    assert policy["spec"]["podSelector"] == {"matchLabels": POD_LABELS}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_ingress_only_from_router_operator_and_scraper_on_the_runtime_port() -> None:
    (rule,) = only(render_network_policies(local_model(), POD_LABELS, NetworkPolicySettings()))["spec"][
        "ingress"
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    callers = {
        (
            p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            p["podSelector"]["matchLabels"].get(
                "app.kubernetes.io/component", p["podSelector"]["matchLabels"].get("app.kubernetes.io/name")
            ),
        )
        for p in rule["from"]
    }
    assert callers == {
        ("inferflux-system", "router"),
        ("inferflux-system", "operator"),
        ("monitoring", "prometheus"),
    }


@pytest.mark.parametrize(
    ("model_flag", "install_flag"),
    [(True, False), (False, True), (True, True)],
    ids=["model", "install", "both"],
)
def test_air_gapped_egress_is_cluster_dns_only(model_flag: bool, install_flag: bool) -> None:
    settings = NetworkPolicySettings(air_gapped=install_flag)
    policy = only(render_network_policies(local_model(air_gapped=model_flag), POD_LABELS, settings))
    (rule,) = policy["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert rule["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]


def test_not_air_gapped_runtime_may_fetch_weights() -> None:
    policy = only(render_network_policies(local_model(), POD_LABELS, NetworkPolicySettings()))
    assert policy["spec"]["egress"] == [{}]


def test_provider_models_have_no_runtime_policy() -> None:
    assert render_network_policies(provider_model("gpt"), POD_LABELS, NetworkPolicySettings()) == []


def test_an_empty_pod_selector_is_refused() -> None:
    with pytest.raises(ValueError, match="selects every pod"):
        render_network_policies(local_model(), {}, NetworkPolicySettings())


def test_without_a_scraper_only_router_and_operator_may_call() -> None:
    settings = NetworkPolicySettings(scraper=None)
    (rule,) = only(render_network_policies(local_model(), POD_LABELS, settings))["spec"]["ingress"]
    assert len(rule["from"]) == 2


def test_router_egress_allows_ip_literal_providers_exactly() -> None:
    models = [provider_model("a", "http://10.9.8.7:8001/v1"), provider_model("b", "https://[2001:db8::1]/v1")]
    policy = render_router_provider_egress(models, NetworkPolicySettings())
    assert policy["metadata"] == {
        "name": "inferflux-router-providers",
        "namespace": "inferflux-system",
        "labels": {
            "app.kubernetes.io/part-of": "inferflux",
            "app.kubernetes.io/managed-by": "inferflux-operator",
        },
    }
    assert policy["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.9.8.7/32"}}], "ports": [{"protocol": "TCP", "port": 8001}]},
        {"to": [{"ipBlock": {"cidr": "2001:db8::1/128"}}], "ports": [{"protocol": "TCP", "port": 443}]},
    ]


def test_router_egress_uses_the_allow_list_for_named_providers() -> None:
    settings = NetworkPolicySettings(provider_cidrs=("203.0.113.0/24",))
    policy = render_router_provider_egress([provider_model("gpt")], settings)
    assert policy["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    ]


@pytest.mark.parametrize("install_air_gapped", [False, True])
def test_router_egress_is_empty_when_air_gapped_or_without_providers(install_air_gapped: bool) -> None:
    settings = NetworkPolicySettings(air_gapped=install_air_gapped, provider_cidrs=("0.0.0.0/0",))
    models = [local_model(), provider_model("gpt", air_gapped=True)]
    if install_air_gapped:
        models.append(provider_model("ip", "http://10.0.0.1/v1"))
    policy = render_router_provider_egress(models, settings)
    assert policy["spec"]["policyTypes"] == ["Egress"]
    assert policy["spec"]["egress"] == []


def test_settings_from_env() -> None:
    settings = NetworkPolicySettings.from_env(
        {
            "INFERFLUX_OPERATOR_NAMESPACE": "infer",
            "INFERFLUX_AIR_GAPPED": "True",
            "INFERFLUX_SCRAPER_NAMESPACE": "obs",
            "INFERFLUX_SCRAPER_LABELS": "app=prom, team=sre",
            "INFERFLUX_PROVIDER_CIDRS": "203.0.113.0/24, 198.51.100.0/24",
            "INFERFLUX_DNS_NAMESPACE": "dns",
            "INFERFLUX_DNS_LABELS": "app=coredns",
        }
    )
    assert settings.dns == Peer("dns", {"app": "coredns"})
    assert settings.air_gapped
    assert settings.router.namespace == settings.operator.namespace == "infer"
    assert settings.scraper == Peer("obs", {"app": "prom", "team": "sre"})
    assert settings.provider_cidrs == ("203.0.113.0/24", "198.51.100.0/24")


def test_settings_from_env_reject_a_malformed_label() -> None:
    with pytest.raises(ValueError, match="not key=value"):
        NetworkPolicySettings.from_env({"INFERFLUX_SCRAPER_LABELS": "prometheus"})


def test_settings_from_env_reject_an_empty_dns_selector() -> None:
    with pytest.raises(ValueError, match="INFERFLUX_DNS_LABELS is empty"):
        NetworkPolicySettings.from_env({"INFERFLUX_DNS_LABELS": " "})


def test_settings_from_env_defaults() -> None:
    settings = NetworkPolicySettings.from_env({})
    assert settings == NetworkPolicySettings()
