"""What the full set of NetworkPolicies of an install allows, pair by pair, per the NetworkPolicy spec.

A small evaluator of ``networking.k8s.io/v1`` semantics (below) reads the chart's install-wide
policies and the operator's per-model ones for a sample install, then every connection between
its pods and a few outside addresses, on every port of interest, is checked against the list of
flows the design allows. Anything not listed must be denied.

The evaluator follows the spec: a pod is isolated in a direction when any policy selecting it has
that policy type (``policyTypes`` defaults to Ingress, plus Egress when egress rules exist); an
isolated pod accepts what at least one selecting policy's rule allows; a rule without ``from``/
``to`` matches every peer, one without ``ports`` every port; a peer with both selectors matches
pods satisfying both; ``ipBlock`` matches addresses in ``cidr`` but not in ``except``; a
connection needs the source's egress and the destination's ingress both allowed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from inferflux.crds.inferencemodel import InferenceModel
from inferflux.operator.networkpolicy import (
    NetworkPolicySettings,
    render_network_policies,
    render_router_provider_egress,
)

Policy = dict[str, Any]


@dataclass(frozen=True)
class Endpoint:
    """A pod (with namespace and labels) or an address outside the cluster (namespace None)."""

    name: str
    ip: str
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    ports: dict[str, int] = field(default_factory=dict, hash=False)


def label_selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector: matchLabels AND matchExpressions; the empty selector matches all."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


class Cluster:
    """Namespaces, pods and policies, and the spec's answer to "may A reach B on this port?"."""

    def __init__(self, namespaces: dict[str, dict[str, str]], policies: Iterable[Policy]) -> None:
        self.namespaces = {
            n: {"kubernetes.io/metadata.name": n, **labels} for n, labels in namespaces.items()
        }
        self.policies = list(policies)

    @staticmethod
    def policy_types(policy: Policy) -> list[str]:
        spec = policy["spec"]
        return spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]

    def selecting(self, pod: Endpoint, direction: str) -> list[Policy]:
        """The policies that select a pod and isolate it in a direction."""
        return [
            p
            for p in self.policies
            if p["metadata"]["namespace"] == pod.namespace
            and label_selector_matches(p["spec"]["podSelector"], pod.labels)
            and direction in self.policy_types(p)
        ]

    def peer_matches(self, peer: dict[str, Any], policy_ns: str, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            address = ipaddress.ip_address(other.ip)
            block = peer["ipBlock"]
            inside = address in ipaddress.ip_network(block["cidr"])
            return inside and not any(address in ipaddress.ip_network(e) for e in block.get("except", []))
        if other.namespace is None:
            return False  # selectors only ever match pods
        if "namespaceSelector" in peer:
            ns_ok = label_selector_matches(peer["namespaceSelector"], self.namespaces[other.namespace])
        else:
            ns_ok = other.namespace == policy_ns
        return ns_ok and label_selector_matches(peer.get("podSelector", {}), other.labels)

    @staticmethod
    def port_matches(rule_port: dict[str, Any], dest: Endpoint, port: int, protocol: str) -> bool:
        if rule_port.get("protocol", "TCP") != protocol:
            return False
        wanted = rule_port.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            return dest.ports.get(wanted) == port
        return wanted <= port <= rule_port.get("endPort", wanted)

    def allowed_one_way(
        self, pod: Endpoint, other: Endpoint, direction: str, dest: Endpoint, port: int, proto: str
    ) -> bool:
        policies = self.selecting(pod, direction)
        if not policies:
            return True
        rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in policies:
            for rule in policy["spec"].get(rules_key) or []:
                peers = rule.get(peers_key)
                ports = rule.get("ports")
                peer_ok = not peers or any(self.peer_matches(p, pod.namespace or "", other) for p in peers)
                port_ok = not ports or any(self.port_matches(p, dest, port, proto) for p in ports)
                if peer_ok and port_ok:
                    return True
        return False

    def may_connect(self, src: Endpoint, dst: Endpoint, port: int, proto: str = "TCP") -> bool:
        """Source egress (if a pod) and destination ingress (if a pod) both allow the connection."""
        egress = src.namespace is None or self.allowed_one_way(src, dst, "Egress", dst, port, proto)
        ingress = dst.namespace is None or self.allowed_one_way(dst, src, "Ingress", dst, port, proto)
        return egress and ingress


# --- The evaluator itself, on the spec's own examples -------------------------------------------

A = Endpoint("a", "10.244.0.1", "ns1", {"app": "a"}, {"http": 8080})
B = Endpoint("b", "10.244.0.2", "ns1", {"app": "b"})
C = Endpoint("c", "10.244.0.3", "ns2", {"app": "a"})
OUTSIDE = Endpoint("outside", "192.0.2.9")


def policy(ns: str, selector: dict[str, str], **spec: Any) -> Policy:
    return {"metadata": {"namespace": ns}, "spec": {"podSelector": {"matchLabels": selector}, **spec}}


def test_no_policy_allows_everything() -> None:
    assert Cluster({"ns1": {}, "ns2": {}}, []).may_connect(B, A, 1234, "UDP")


def test_a_selecting_policy_denies_what_it_does_not_list() -> None:
    cluster = Cluster({"ns1": {}, "ns2": {}}, [policy("ns1", {"app": "a"})])
    assert not cluster.may_connect(B, A, 8080)
    assert cluster.may_connect(A, B, 8080), "policyTypes defaults to Ingress only"


def test_egress_isolation_needs_the_egress_type() -> None:
    cluster = Cluster({"ns1": {}, "ns2": {}}, [policy("ns1", {"app": "a"}, policyTypes=["Egress"])])
    assert not cluster.may_connect(A, OUTSIDE, 443)
    assert cluster.may_connect(B, A, 8080)


def test_both_selectors_in_one_peer_mean_and_separate_peers_mean_or() -> None:
    namespaces = {"ns1": {"team": "x"}, "ns2": {}}
    both = {"namespaceSelector": {"matchLabels": {"team": "x"}}, "podSelector": {"matchLabels": {"app": "a"}}}
    and_policy = policy("ns1", {"app": "b"}, ingress=[{"from": [both]}])
    assert Cluster(namespaces, [and_policy]).may_connect(A, B, 80)
    assert not Cluster(namespaces, [and_policy]).may_connect(C, B, 80)
    either = [
        {"namespaceSelector": {"matchLabels": {"team": "x"}}},
        {"podSelector": {"matchLabels": {"app": "a"}}},
    ]
    or_policy = policy("ns1", {"app": "b"}, ingress=[{"from": either}])
    assert Cluster(namespaces, [or_policy]).may_connect(A, B, 80)
    assert not Cluster(namespaces, [or_policy]).may_connect(C, B, 80), "a bare podSelector is the policy's ns"


def test_ports_protocols_named_ports_and_ranges() -> None:
    rule = {"ports": [{"port": "http"}, {"protocol": "UDP", "port": 5000, "endPort": 5010}]}
    cluster = Cluster({"ns1": {}, "ns2": {}}, [policy("ns1", {"app": "a"}, ingress=[rule])])
    assert cluster.may_connect(B, A, 8080)
    assert not cluster.may_connect(B, A, 8080, "UDP")
    assert cluster.may_connect(B, A, 5005, "UDP")
    assert not cluster.may_connect(B, A, 5011, "UDP")


def test_ip_block_with_except() -> None:
    block = {"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.8/29"]}}
    allowed = policy("ns1", {"app": "a"}, policyTypes=["Egress"], egress=[{"to": [block]}])
    cluster = Cluster({"ns1": {}, "ns2": {}}, [allowed])
    assert not cluster.may_connect(A, OUTSIDE, 443)
    assert cluster.may_connect(A, Endpoint("near", "192.0.2.1"), 443)
    assert not cluster.may_connect(A, B, 443), "an ipBlock does not match pods by selector"


def test_policies_add_up() -> None:
    one = policy("ns1", {"app": "a"}, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}])
    other = policy("ns1", {}, ingress=[{"from": [{"namespaceSelector": {}}]}])
    assert Cluster({"ns1": {}, "ns2": {}}, [one, other]).may_connect(C, A, 80)
    assert not Cluster({"ns1": {}, "ns2": {}}, [one]).may_connect(C, A, 80)


# --- A sample install ---------------------------------------------------------------------------

SHA = "b" * 64
API_SERVER = "10.96.0.10"
COMPONENT = {"app.kubernetes.io/name": "inferflux", "app.kubernetes.io/instance": "inferflux"}
PART_OF = {"app.kubernetes.io/part-of": "inferflux"}


def runtime_pod(model: str, ns: str, ip: str) -> Endpoint:
    labels = {
        "app.kubernetes.io/name": "inferflux-runtime",
        "app.kubernetes.io/instance": model,
        "app.kubernetes.io/component": "runtime",
        "app.kubernetes.io/part-of": "inferflux",
        "app.kubernetes.io/managed-by": "inferflux-operator",
        "inferflux.io/model": model,
        "inferflux.io/revision": "5f1c2a9b",
    }
    return Endpoint(f"runtime-{model}", ip, ns, labels, {"http": 8080})


ROUTER = Endpoint(
    "router",
    "10.244.1.2",
    "inferflux-system",
    {**COMPONENT, **PART_OF, "app.kubernetes.io/component": "router"},
)
OPERATOR = Endpoint(
    "operator",
    "10.244.1.3",
    "inferflux-system",
    {**COMPONENT, **PART_OF, "app.kubernetes.io/component": "operator"},
)
REDIS = Endpoint(
    "redis",
    "10.244.1.4",
    "inferflux-system",
    {**COMPONENT, **PART_OF, "app.kubernetes.io/component": "redis"},
)
GEMMA = runtime_pod("gemma", "team-a", "10.244.2.2")  # spec.airGapped: true
PHI = runtime_pod("phi", "team-b", "10.244.3.2")  # not air-gapped
DNS = Endpoint("kube-dns", "10.244.0.10", "kube-system", {"k8s-app": "kube-dns"})
SCRAPER = Endpoint("prometheus", "10.244.4.2", "monitoring", {"app.kubernetes.io/name": "prometheus"})
CLIENT = Endpoint("client", "10.244.5.2", "apps", {"app": "shop"})
NEIGHBOUR = Endpoint("neighbour", "10.244.2.9", "team-a", {"app": "other"})
KUBE_API = Endpoint("api-server", API_SERVER)
INTERNET = Endpoint("internet", "93.184.216.34")
PROVIDER_BY_IP = Endpoint("provider-by-ip", "198.51.100.7")
PROVIDER_RANGE = Endpoint("provider-range", "203.0.113.10")

PODS = [ROUTER, OPERATOR, REDIS, GEMMA, PHI, DNS, SCRAPER, CLIENT, NEIGHBOUR]
OUTSIDE_ADDRESSES = [KUBE_API, INTERNET, PROVIDER_BY_IP, PROVIDER_RANGE]
INFERFLUX = {ROUTER, OPERATOR, REDIS, GEMMA, PHI}
PROBES = [
    (53, "UDP"),
    (53, "TCP"),
    (80, "TCP"),
    (443, "TCP"),
    (6443, "TCP"),
    (8000, "TCP"),
    (8001, "TCP"),
    (8080, "TCP"),
    (8081, "TCP"),
    (6379, "TCP"),
]
NAMESPACES: dict[str, dict[str, str]] = {
    ns: {} for ns in ("inferflux-system", "team-a", "team-b", "kube-system", "monitoring", "apps")
}


def models() -> list[InferenceModel]:
    def model(name: str, ns: str, spec: dict[str, Any]) -> InferenceModel:
        return InferenceModel.from_body({"metadata": {"name": name, "namespace": ns}, "spec": spec})

    source = {"uri": "pvc://models/m.gguf", "sha256": SHA}
    return [
        model("gemma", "team-a", {"engine": "llamacpp", "airGapped": True, "source": source}),
        model("phi", "team-b", {"engine": "llamacpp", "source": source}),
        model(
            "gpt", "team-a", {"engine": "provider", "provider": {"name": "openai", "model": "gpt-4o-mini"}}
        ),
        model(
            "local-vllm",
            "team-b",
            {
                "engine": "provider",
                "provider": {
                    "name": "openai-compatible",
                    "model": "m",
                    "baseURL": "http://198.51.100.7:8001/v1",
                },
            },
        ),
    ]


def install_policies(render_chart: Any, *, air_gapped: bool) -> list[Policy]:
    """The chart's install-wide policies plus everything the operator renders for the sample models."""
    values = {
        "airGapped": air_gapped,
        "networkPolicy": {"apiServer": {"cidrs": [f"{API_SERVER}/32"]}, "providerCIDRs": ["203.0.113.0/24"]},
    }
    chart = [o for o in render_chart(values) if o["kind"] == "NetworkPolicy"]
    settings = NetworkPolicySettings(air_gapped=air_gapped, provider_cidrs=("203.0.113.0/24",))
    per_model = [
        p
        for m in models()
        for p in render_network_policies(m, {"inferflux.io/model": m.metadata.name}, settings)
    ]
    return [*chart, *per_model, render_router_provider_egress(models(), settings)]


def flows(*triples: tuple[Endpoint, Endpoint, Iterable[tuple[int, str]]]) -> set[tuple[str, str, int, str]]:
    return {(s.name, d.name, port, proto) for s, d, ports in triples for port, proto in ports}


DNS_PORTS = [(53, "UDP"), (53, "TCP")]
API_PORTS = [(443, "TCP"), (6443, "TCP")]
RUNTIME_PORT = [(8080, "TCP")]
ROUTER_PORT = [(8000, "TCP")]


def expected(air_gapped: bool) -> set[tuple[str, str, int, str]]:
    """Every allowed flow that touches an InferFlux pod, straight from the design in issue 9."""
    allowed = flows(
        # Anyone may call the router (it is the front door), on its public port only (the admin port
        # is closed to every pod by default); nothing else reaches InferFlux pods but the router,
        # operator and scraper into runtime pods, and the router into the policy store (Redis).
        *[(src, ROUTER, ROUTER_PORT) for src in (CLIENT, NEIGHBOUR, DNS, SCRAPER, INTERNET, KUBE_API)],
        *[(src, rt, RUNTIME_PORT) for src in (ROUTER, OPERATOR, SCRAPER) for rt in (GEMMA, PHI)],
        (ROUTER, REDIS, [(6379, "TCP")]),
        (ROUTER, DNS, DNS_PORTS),
        (ROUTER, KUBE_API, API_PORTS),
        (OPERATOR, DNS, DNS_PORTS),
        (OPERATOR, KUBE_API, API_PORTS),
        (GEMMA, DNS, DNS_PORTS),
    )
    if air_gapped:
        return allowed | flows((PHI, DNS, DNS_PORTS))
    allowed |= flows((ROUTER, PROVIDER_BY_IP, [(8001, "TCP")]), (ROUTER, PROVIDER_RANGE, [(443, "TCP")]))
    # phi may fetch its weights: its egress is open, limited only by the destinations' ingress.
    open_targets = [t for t in PODS + OUTSIDE_ADDRESSES if t not in (OPERATOR, REDIS, GEMMA, PHI)]
    allowed |= flows(
        *[(PHI, t, [p for p in PROBES if t is not ROUTER or p in ROUTER_PORT]) for t in open_targets]
    )
    return allowed


@pytest.mark.parametrize("air_gapped", [False, True], ids=["connected", "air-gapped"])
def test_every_pair_matches_the_design(render_chart: Any, air_gapped: bool) -> None:
    cluster = Cluster(NAMESPACES, install_policies(render_chart, air_gapped=air_gapped))
    actual = {
        (s.name, d.name, port, proto)
        for s in [*PODS, INTERNET, KUBE_API]
        for d in PODS + OUTSIDE_ADDRESSES
        if s is not d and (s in INFERFLUX or d in INFERFLUX)
        for port, proto in PROBES
        if cluster.may_connect(s, d, port, proto)
    }
    want = expected(air_gapped)
    assert sorted(actual - want) == [], "allowed but not in the design"
    assert sorted(want - actual) == [], "in the design but denied"


def test_air_gapped_runtime_cannot_reach_the_internet_or_the_api(render_chart: Any) -> None:
    cluster = Cluster(NAMESPACES, install_policies(render_chart, air_gapped=False))
    for target in (INTERNET, KUBE_API, PROVIDER_RANGE, ROUTER, PHI):
        assert not any(cluster.may_connect(GEMMA, target, p, proto) for p, proto in PROBES), target.name


def test_removing_a_model_removes_its_paths(render_chart: Any) -> None:
    settings = NetworkPolicySettings(provider_cidrs=("203.0.113.0/24",))
    remaining = [m for m in models() if m.metadata.name != "local-vllm"]
    chart = [
        o
        for o in render_chart({"networkPolicy": {"apiServer": {"cidrs": [f"{API_SERVER}/32"]}}})
        if o["kind"] == "NetworkPolicy"
    ]
    cluster = Cluster(NAMESPACES, [*chart, render_router_provider_egress(remaining, settings)])
    assert not cluster.may_connect(ROUTER, PROVIDER_BY_IP, 8001)
    assert cluster.may_connect(ROUTER, PROVIDER_RANGE, 443)


def test_the_admin_port_opens_only_to_the_listed_peers(render_chart: Any) -> None:
    admins = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}},
              "podSelector": {"matchLabels": {"app": "shop"}}}  # fmt: skip
    values = {"networkPolicy": {"adminIngressFrom": [admins], "apiServer": {"cidrs": [f"{API_SERVER}/32"]}}}
    cluster = Cluster(NAMESPACES, [o for o in render_chart(values) if o["kind"] == "NetworkPolicy"])
    assert cluster.may_connect(CLIENT, ROUTER, 8001)
    assert not cluster.may_connect(NEIGHBOUR, ROUTER, 8001)
    assert not cluster.may_connect(CLIENT, REDIS, 6379)


def test_an_external_redis_is_reached_on_its_port_only(render_chart: Any) -> None:
    store = Endpoint("external-redis", "192.0.2.40")
    values = {
        "redis": {"enabled": False, "url": "rediss://store.corp.example:6380/2"},
        "networkPolicy": {"redisTo": [{"ipBlock": {"cidr": "192.0.2.40/32"}}]},
    }
    cluster = Cluster(NAMESPACES, [o for o in render_chart(values) if o["kind"] == "NetworkPolicy"])
    assert cluster.may_connect(ROUTER, store, 6380)
    assert not cluster.may_connect(ROUTER, store, 6379)
    assert not cluster.may_connect(ROUTER, INTERNET, 6380)
