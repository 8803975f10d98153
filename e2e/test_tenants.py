"""Tenants on a real control plane: the operator (under its own ServiceAccount and the RBAC from
manifests/) publishes them in the ``inferflux-policy`` ConfigMap and reports their status.

A Tenant applied with kubectl becomes Ready and appears in the snapshot; an edit (suspend) and a
delete show up; an invalid one is refused by the API server with the CEL rule's message; a Tenant
outside the operator's namespace is neither read nor published; ``kubectl get tenants`` prints the
columns.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_fixture import operator_suite

from inferflux.crds.budget import BudgetStatus, Window, WindowSpend
from inferflux.crds.guardrails import GuardrailPolicy
from inferflux.router.budgets.tenant_status import TenantStatusWriter

REPO = Path(__file__).resolve().parents[1]

_suite = operator_suite()
# The fixtures this module shares with the operator suite (pytest registers module-level fixtures).
admin, operator_kubeconfig, operator, namespace = (
    _suite.admin,
    _suite.operator_kubeconfig,
    _suite.operator,
    _suite.namespace,
)
OPERATOR_NS, OPERATOR_SA, Kube, OperatorProcess = (
    _suite.OPERATOR_NS,
    _suite.OPERATOR_SA,
    _suite.Kube,
    _suite.OperatorProcess,
)
condition, wait_for = _suite.condition, _suite.wait_for
POLICY = "inferflux-policy"


def tenant(name: str, ns: str = OPERATOR_NS, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "inferflux.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def published(kube: Kube) -> dict[str, Any]:
    """The tenants in the operator's policy ConfigMap (empty before its first publication)."""
    configmap = kube.get("configmap", POLICY, OPERATOR_NS)
    tenants: dict[str, Any] = json.loads(configmap["data"]["policy.json"])["tenants"] if configmap else {}
    return tenants


def ready(kube: Kube, name: str, ns: str = OPERATOR_NS) -> dict[str, Any] | None:
    obj = kube.get("tenant", name, ns)
    generation = (obj or {}).get("metadata", {}).get("generation")
    current = (obj or {}).get("status", {}).get("observedGeneration") == generation
    return obj if current and condition(obj, "Ready").get("status") == "True" else None


def test_a_tenant_becomes_ready_and_is_published(admin: Kube, operator: OperatorProcess) -> None:
    admin.apply(
        tenant(
            "team-a",
            displayName="Team A",
            scopes=["inference"],
            models=["gemma"],
            oidc={"values": ["alice@example.com"]},
        )
    )
    obj = wait_for("Tenant team-a Ready", lambda: ready(admin, "team-a"))
    assert condition(obj, "Ready")["reason"] == "Published"
    assert condition(obj, "Stalled")["status"] == "False"
    assert obj["status"]["policyConfigMap"] == f"{OPERATOR_NS}/{POLICY}"
    policy = published(admin)["team-a"]
    # Guardrails are on by default for every tenant (docs/guardrails.md): the defaults are published.
    assert policy.pop("guardrails") == GuardrailPolicy().to_wire()
    assert policy == {
        "name": "team-a",
        "displayName": "Team A",
        "scopes": ["inference"],
        "models": ["gemma"],
        "suspended": False,
        "certificateSubjects": [],
        "oidcValues": ["alice@example.com"],
        "source": "resource",
        "scheduling": {"priority": 0, "weight": 1},  # the defaults (docs/scheduling.md)
    }
    configmap = admin.get("configmap", POLICY, OPERATOR_NS)
    assert configmap is not None
    assert configmap["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "inferflux-operator"
    admin.run("delete", "tenant", "team-a", "-n", OPERATOR_NS)


def test_suspending_and_deleting_show_up(admin: Kube, operator: OperatorProcess) -> None:
    admin.apply(tenant("team-b"))
    wait_for("team-b published", lambda: "team-b" in published(admin))
    admin.apply(tenant("team-b", suspended=True))
    wait_for("team-b suspended in the snapshot", lambda: published(admin).get("team-b", {}).get("suspended"))
    obj = wait_for("Tenant team-b Ready at its new generation", lambda: ready(admin, "team-b"))
    assert obj["metadata"]["generation"] == 2
    admin.run("delete", "tenant", "team-b", "-n", OPERATOR_NS)
    wait_for("team-b gone from the snapshot", lambda: "team-b" not in published(admin))


def test_a_name_the_router_cannot_use_is_stalled(admin: Kube, operator: OperatorProcess) -> None:
    admin.apply(tenant("team.dotted"))

    def stalled() -> dict[str, Any] | None:
        obj = admin.get("tenant", "team.dotted", OPERATOR_NS)
        return obj if condition(obj, "Stalled").get("status") == "True" else None

    obj = wait_for("Tenant team.dotted Stalled", stalled)
    assert condition(obj, "Stalled")["reason"] == "InvalidName"
    assert condition(obj, "Ready")["status"] == "False"
    assert "team.dotted" not in published(admin)
    admin.run("delete", "tenant", "team.dotted", "-n", OPERATOR_NS)


def test_a_tenant_elsewhere_is_not_read(admin: Kube, operator: OperatorProcess, namespace: str) -> None:
    who = f"system:serviceaccount:{OPERATOR_NS}:{OPERATOR_SA}"
    assert (
        admin.run(
            "auth", "can-i", "list", "tenants.inferflux.io", "--as", who, "-n", namespace, check=False
        ).strip()
        == "no"
    )
    assert (
        admin.run("auth", "can-i", "watch", "tenants.inferflux.io", "--as", who, "-n", OPERATOR_NS).strip()
        == "yes"
    )
    admin.apply(tenant("intruder", namespace, scopes=["admin"]))
    # A Tenant applied afterwards in the operator's namespace marks a publication that came later.
    admin.apply(tenant("marker"))
    wait_for("the marker published", lambda: ready(admin, "marker"))
    assert "intruder" not in published(admin)
    # Never reconciled: only the API server's default status, no condition, observed generation 0.
    assert (admin.get("tenant", "intruder", namespace) or {}).get("status") == {"observedGeneration": 0}
    admin.run("delete", "tenant", "marker", "-n", OPERATOR_NS)


def test_the_api_server_refuses_an_invalid_tenant_with_the_rule_message(admin: Kube) -> None:
    with pytest.raises(AssertionError) as refused:
        admin.apply(tenant("bad", models=["*", "x"]))
    assert "models: '*' (every model) stands alone" in str(refused.value)
    assert admin.get("tenant", "bad", OPERATOR_NS) is None


def test_kubectl_get_prints_the_columns(admin: Kube, operator: OperatorProcess) -> None:
    admin.apply(tenant("columns", scopes=["inference", "batch"], models=["m1"], suspended=True))
    wait_for("Tenant columns Ready", lambda: ready(admin, "columns"))
    for resource in ("tenants", "ift"):
        lines = admin.run("get", resource, "columns", "-n", OPERATOR_NS).splitlines()
        header = [
            "NAME",
            "READY",
            "STATUS",
            "SCOPES",
            "MODELS",
            "SUSPENDED",
            "SPEND",
            "LIMIT",
            "USED%",
            "AGE",
        ]
        assert lines[0].split() == header
        row = lines[1].split()
        assert row[:3] == ["columns", "True", "Published"]
        assert "batch" in row[3]
        assert "m1" in row[4]
        assert row[5] == "true"
        assert len(row) == 7, "no budget: Spend, Limit and Used% are empty, Age follows"
    admin.run("delete", "tenant", "columns", "-n", OPERATOR_NS)


def columns(table: str) -> dict[str, str]:
    """The first row of ``kubectl get`` output by column name (empty cells stay empty)."""
    header, row = table.splitlines()[:2]
    starts = [
        index for index, char in enumerate(header) if char != " " and (index == 0 or header[index - 1] == " ")
    ]
    ends = [*starts[1:], None]
    return {header[a:b].strip(): row[a:b].strip() for a, b in zip(starts, ends, strict=True)}


def router_kubeconfig(admin: Kube, folder: Path) -> Path:
    """A kubeconfig with a token of the router's ServiceAccount, bound by manifests/ RBAC only."""
    token = admin.run("create", "token", "inferflux-router", "-n", OPERATOR_NS, "--duration", "1h").strip()
    config = yaml.safe_load(admin.kubeconfig.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
    cluster = next(c for c in config["clusters"] if c["name"] == context["cluster"])
    path = folder / "router-kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "router", "user": {"token": token}}],
                "contexts": [{"name": "router", "context": {"cluster": cluster["name"], "user": "router"}}],
                "current-context": "router",
            }
        )
    )
    return path


def test_the_router_writes_spend_into_status_and_nothing_else(
    admin: Kube, operator: OperatorProcess, tmp_path: Path
) -> None:
    rbac = REPO / "manifests" / "base" / "router-rbac.yaml"
    admin.run("apply", "-f", str(rbac))
    try:
        admin.apply(tenant("spender", budget={"daily": "2"}))
        wait_for("Tenant spender Ready", lambda: ready(admin, "spender"))
        kubeconfig = router_kubeconfig(admin, tmp_path)
        status = BudgetStatus(
            currency="EUR",
            window=Window.DAILY,
            spent="1.50",
            limit="2.00",
            used_percent=75,
            windows=[WindowSpend(window=Window.DAILY, spent="1.50", limit="2.00")],
        )

        async def write() -> None:
            writer = TenantStatusWriter(OPERATOR_NS, str(kubeconfig))
            try:
                await writer("spender", status)
            finally:
                await writer.close()

        asyncio.run(write())
        row = columns(admin.run("get", "tenants", "spender", "-n", OPERATOR_NS))
        assert (row["SPEND"], row["LIMIT"], row["USED%"]) == ("1.50", "2.00", "75")
        # The operator's next status write (after an edit) leaves the router's field alone.
        admin.run(
            "patch",
            "tenant",
            "spender",
            "-n",
            OPERATOR_NS,
            "--type=merge",
            "-p",
            '{"spec":{"suspended":true}}',
        )
        obj = wait_for("spender re-reported", lambda: ready(admin, "spender"))
        assert obj["status"]["budget"]["spent"] == "1.50"
        assert condition(obj, "Ready")["status"] == "True"
        as_router = Kube(kubeconfig)
        as_router.run(
            "patch",
            "tenant",
            "spender",
            "-n",
            OPERATOR_NS,
            "--type=merge",
            "-p",
            '{"spec":{"suspended":false}}',
            check=False,
        )
        spender = admin.get("tenant", "spender", OPERATOR_NS)
        assert spender is not None
        assert spender["spec"]["suspended"] is True, "the router may write status, never a spec"
    finally:
        admin.run("delete", "tenant", "spender", "-n", OPERATOR_NS, "--ignore-not-found")
        admin.run("delete", "--ignore-not-found", "--wait=false", "-f", str(rbac))
