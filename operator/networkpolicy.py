"""NetworkPolicies generated from InferenceModels: the air-gapped half of the install.

A NetworkPolicy that selects a pod turns that pod's traffic into deny-by-default for each of its
``policyTypes``; the rules then list what is allowed. So one policy per model, selecting its runtime
pods with both types, is at once their default-deny and their allow-list:

- ingress on the runtime port only from the router, the operator (admin API) and the metrics
  scraper;
- egress only to cluster DNS (kube-dns, port 53 over UDP and TCP) when the model is air-gapped,
  by its own ``spec.airGapped`` or by the install-wide default; otherwise egress is open, because
  a non-air-gapped model may fetch its weights from an HTTP(S) or Hugging Face source.

Provider models have no pods and get no runtime policy. The router reaches their endpoints through
``render_router_provider_egress``, one policy in the router's namespace recomputed from every
model, so it changes when models come and go. The install-wide policies (default-deny for the
router and operator, their DNS and API-server egress) ship with the chart in ``helm/``.

Everything here is pure: the operator adds owner references and applies the objects.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

from inferflux.crds.inferencemodel import Engine, InferenceModel

API_VERSION: Final = "networking.k8s.io/v1"
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
RUNTIME_PORT: Final = 8080
ROUTER_PROVIDER_POLICY: Final = "inferflux-router-providers"
MANAGED_BY: Final = MappingProxyType(
    {"app.kubernetes.io/part-of": "inferflux", "app.kubernetes.io/managed-by": "inferflux-operator"}
)


def _frozen(labels: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(labels))


@dataclass(frozen=True)
class Peer:
    """Pods matching ``pod_labels`` in the namespace named ``namespace``: one side of a connection."""

    namespace: str
    pod_labels: Mapping[str, str]

    def to_peer(self) -> dict[str, Any]:
        """The ``from``/``to`` entry selecting these pods (both selectors in one entry means AND)."""
        return {
            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: self.namespace}},
            "podSelector": {"matchLabels": dict(self.pod_labels)},
        }


def _component(namespace: str, component: str) -> Peer:
    return Peer(
        namespace, _frozen({"app.kubernetes.io/name": "inferflux", "app.kubernetes.io/component": component})
    )


@dataclass(frozen=True)
class NetworkPolicySettings:
    """Who the runtime pods talk to, as installed: the chart's values mirrored into the operator's env.

    ``provider_cidrs`` are the networks the router may reach for provider models whose base URL is
    a host name (NetworkPolicies match addresses, not names); an IP-literal base URL is allowed as
    that one address. They apply only when neither the install nor the model is air-gapped.
    """

    router: Peer = field(default_factory=lambda: _component("inferflux-system", "router"))
    operator: Peer = field(default_factory=lambda: _component("inferflux-system", "operator"))
    scraper: Peer | None = field(
        default_factory=lambda: Peer("monitoring", _frozen({"app.kubernetes.io/name": "prometheus"}))
    )
    dns: Peer = field(default_factory=lambda: Peer("kube-system", _frozen({"k8s-app": "kube-dns"})))
    air_gapped: bool = False
    provider_cidrs: tuple[str, ...] = ()
    provider_ports: tuple[int, ...] = (443,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NetworkPolicySettings:
        """Settings from the operator's environment (``INFERFLUX_*``, set by the chart)."""
        env = os.environ if env is None else env
        ns = env.get("INFERFLUX_OPERATOR_NAMESPACE") or "inferflux-system"
        scraper_ns = env.get("INFERFLUX_SCRAPER_NAMESPACE", "monitoring")
        scraper_labels = _parse_labels(
            env.get("INFERFLUX_SCRAPER_LABELS", "app.kubernetes.io/name=prometheus")
        )
        dns_labels = _parse_labels(env.get("INFERFLUX_DNS_LABELS", "k8s-app=kube-dns"))
        if not dns_labels:
            raise ValueError("INFERFLUX_DNS_LABELS is empty: it must select the cluster DNS pods")
        return cls(
            router=_component(ns, "router"),
            operator=_component(ns, "operator"),
            scraper=Peer(scraper_ns, _frozen(scraper_labels)) if scraper_ns and scraper_labels else None,
            dns=Peer(env.get("INFERFLUX_DNS_NAMESPACE") or "kube-system", _frozen(dns_labels)),
            air_gapped=env.get("INFERFLUX_AIR_GAPPED", "false").strip().lower() in ("1", "true", "yes"),
            provider_cidrs=tuple(_split(env.get("INFERFLUX_PROVIDER_CIDRS", ""))),
        )


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parse_labels(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` into a dict; a part without ``=`` is a configuration error worth failing on."""
    labels: dict[str, str] = {}
    for part in _split(text):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"label {part!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels


def is_air_gapped(model: InferenceModel, settings: NetworkPolicySettings) -> bool:
    """A model is air-gapped when it says so or the whole install is."""
    return settings.air_gapped or model.spec.air_gapped


def dns_egress(dns: Peer) -> dict[str, Any]:
    """The egress rule to cluster DNS: port 53 over UDP and TCP (TCP for large answers)."""
    return {"to": [dns.to_peer()], "ports": [{"protocol": p, "port": 53} for p in ("UDP", "TCP")]}


def _metadata(name: str, namespace: str | None, model: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**MANAGED_BY, "inferflux.io/model": model}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def runtime_policy_name(model_name: str) -> str:
    """The name of a model's runtime NetworkPolicy (one per model, next to its Deployment)."""
    return f"{model_name}-runtime"


def render_network_policies(
    model: InferenceModel, pod_labels: dict[str, str], settings: NetworkPolicySettings
) -> list[dict[str, Any]]:
    """The NetworkPolicies for one model's runtime pods (none for provider models, which have no pods).

    ``pod_labels`` select the model's runtime pods across revisions, e.g. ``inferflux.io/model``.
    """
    if model.spec.engine == Engine.PROVIDER:
        return []
    if not pod_labels:
        raise ValueError("pod_labels must select the model's pods; an empty selector selects every pod")
    callers = [settings.router, settings.operator, *([settings.scraper] if settings.scraper else [])]
    egress = [dns_egress(settings.dns)] if is_air_gapped(model, settings) else [{}]
    policy = {
        "apiVersion": API_VERSION,
        "kind": "NetworkPolicy",
        "metadata": _metadata(
            runtime_policy_name(model.metadata.name), model.metadata.namespace, model.metadata.name
        ),
        "spec": {
            "podSelector": {"matchLabels": dict(pod_labels)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [c.to_peer() for c in callers], "ports": [{"protocol": "TCP", "port": RUNTIME_PORT}]}
            ],
            "egress": egress,
        },
    }
    return [policy]


def provider_endpoint(model: InferenceModel) -> tuple[str, int] | None:
    """The (host, port) a provider model's base URL names, or None for the provider's default URL."""
    provider = model.spec.provider
    if provider is None or provider.base_url is None:
        return None
    url = urlsplit(provider.base_url)
    if not url.hostname:
        return None
    return url.hostname, url.port or (443 if url.scheme == "https" else 80)


def _cidr_rule(cidrs: Iterable[str], ports: Iterable[int]) -> dict[str, Any]:
    return {
        "to": [{"ipBlock": {"cidr": c}} for c in cidrs],
        "ports": [{"protocol": "TCP", "port": p} for p in sorted(set(ports))],
    }


def render_router_provider_egress(
    models: Iterable[InferenceModel], settings: NetworkPolicySettings
) -> dict[str, Any]:
    """The router's egress to the providers of every non-air-gapped provider model.

    One policy in the router's namespace, recomputed from all models whenever one changes, so a
    provider is reachable exactly while a model names it. IP-literal base URLs are allowed as that
    address and port; host names fall back to ``settings.provider_cidrs`` (a policy cannot match
    names). With nothing to allow, the policy has no egress rules, which adds nothing.
    """
    exact: dict[str, set[int]] = {}
    by_name = False
    for model in models:
        if model.spec.engine != Engine.PROVIDER or is_air_gapped(model, settings):
            continue
        host, port = provider_endpoint(model) or ("", 0)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            by_name = True
            continue
        exact.setdefault(str(ipaddress.ip_network(address)), set()).add(port)
    rules = [_cidr_rule([cidr], ports) for cidr, ports in sorted(exact.items())]
    if by_name and settings.provider_cidrs:
        rules.append(_cidr_rule(settings.provider_cidrs, settings.provider_ports))
    return {
        "apiVersion": API_VERSION,
        "kind": "NetworkPolicy",
        "metadata": {
            "name": ROUTER_PROVIDER_POLICY,
            "namespace": settings.router.namespace,
            "labels": dict(MANAGED_BY),
        },
        "spec": {
            "podSelector": {"matchLabels": dict(settings.router.pod_labels)},
            "policyTypes": ["Egress"],
            "egress": rules,
        },
    }
