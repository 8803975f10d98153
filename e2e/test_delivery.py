"""The Helm chart and the plain manifests on the real control plane of the e2e suite (issue 9).

- ``helm template`` output applies with ``--dry-run=server``, into a namespace that enforces the
  restricted Pod Security profile; the pods of every workload are admitted there (and a pod that
  breaks the profile is not, so enforcement is really on);
- ``kubectl apply -k manifests/base`` applies with ``--dry-run=server``;
- ``helm install`` creates the release, and the operator runs under the identity and RBAC the
  chart installed (its ServiceAccount token, not admin): it reconciles a model into its owned
  Deployment, Service and NetworkPolicy and publishes the routing table. There is no kubelet, so
  the operator runs as a local process with that identity, as in e2e/test_operator.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_fixture import llamacpp_model, provider_model

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "helm" / "inferflux"
BIN = REPO / ".cache" / "cluster-bin"
RELEASE_NS = "inferflux-system"


def tool(name: str) -> str:
    built = BIN / name
    return str(built) if built.exists() else shutil.which(name) or name


class Cli:
    """kubectl and helm against one kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def run(self, program: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [tool(program), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{program} {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout + done.stderr if not check else done.stdout

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        return self.run("kubectl", *args, stdin=stdin, check=check)

    def helm(self, *args: str) -> str:
        return self.run("helm", *args)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        out = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found")
        return json.loads(out) if out.strip() else None


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def restricted_namespace(cli: Cli, name: str) -> str:
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    # A namespace left Terminating by an earlier run would swallow what is applied into it.
    wait_for(f"{name} to finish terminating", lambda: _not_terminating(cli, name), timeout=120)
    cli.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(ns))
    wait_for(f"the default ServiceAccount of {name}", lambda: cli.get("serviceaccount", "default", name))
    return name


@pytest.fixture(scope="module")
def cli(admin_kubeconfig: Path) -> Cli:
    """The cluster as its admin, with the chart's CRDs applied and established."""
    cli = Cli(admin_kubeconfig)
    cli.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    cli.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/inferencemodels.inferflux.io",
        "crd/prompts.inferflux.io",
        "crd/tenants.inferflux.io",
    )
    return cli


def template(*args: str, namespace: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [tool("helm"), "template", "inferflux", str(CHART), "-n", namespace, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def dry_run(cli: Cli, objs: list[dict[str, Any]]) -> str:
    """Every object through the API server's validation and admission, persisting nothing."""
    return cli.kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(objs))


def pods_of(objs: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """A Pod for each workload's template, so that Pod Security *enforcement* (pods only) judges it."""
    pods = []
    for obj in objs:
        if obj["kind"] == "Deployment":
            template_ = obj["spec"]["template"]
            meta = {
                "name": f"{obj['metadata']['name']}-probe",
                "namespace": namespace,
                "labels": template_["metadata"]["labels"],
            }
            # A dry run creates no ServiceAccount, and Pod Security does not judge the account.
            spec = {k: v for k, v in template_["spec"].items() if k != "serviceAccountName"}
            pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
    return pods


@pytest.mark.parametrize(
    "values",
    [
        [],
        [
            "--set",
            "airGapped=true,watchNamespaces={dlv-team-a},router.providerSecrets[0].namespace=dlv-team-a,router.providerSecrets[0].name=k",
        ],
    ],
    ids=["defaults", "air-gapped-namespaced"],
)
def test_helm_template_applies_in_a_restricted_namespace(cli: Cli, values: list[str]) -> None:
    namespace = restricted_namespace(cli, f"dlv-restricted-{len(values)}")
    restricted_namespace(cli, "dlv-team-a")
    objs = template(*values, namespace=namespace)
    out = dry_run(cli, objs)
    assert out.count("(server dry run)") == len(objs), out
    admitted = dry_run(cli, pods_of(objs, namespace))
    assert admitted.count("created (server dry run)") == 3, admitted  # operator, router, redis


def test_restricted_enforcement_is_real(cli: Cli) -> None:
    namespace = restricted_namespace(cli, "dlv-restricted-0")
    (pod, *_) = pods_of(template(namespace=namespace), namespace)
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    done = subprocess.run(
        [tool("kubectl"), "--kubeconfig", str(cli.kubeconfig), "apply", "--dry-run=server", "-f", "-"],
        input=yaml.safe_dump(pod),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "violates PodSecurity" in done.stderr


def test_plain_manifests_apply(cli: Cli) -> None:
    # A dry run creates nothing, so the namespace the base creates must already exist.
    restricted_namespace(cli, RELEASE_NS)
    out = cli.kubectl(
        "apply",
        "--dry-run=server",
        "--server-side",
        "--force-conflicts",
        "-k",
        str(REPO / "manifests" / "base"),
    )
    assert "namespace/inferflux-system" in out
    assert "deployment.apps/inferflux-operator" in out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def release(cli: Cli) -> Iterator[str]:
    """`helm install` of the chart with default values into a restricted namespace."""
    restricted_namespace(cli, RELEASE_NS)
    cli.helm("install", "inferflux", str(CHART), "-n", RELEASE_NS, "--skip-crds")
    yield "inferflux"
    cli.helm("uninstall", "inferflux", "-n", RELEASE_NS)


def service_account_kubeconfig(cli: Cli, account: str, folder: Path) -> Path:
    token = cli.kubectl("create", "token", account, "-n", RELEASE_NS, "--duration", "1h").strip()
    config = yaml.safe_load(cli.kubeconfig.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
    cluster = next(c for c in config["clusters"] if c["name"] == context["cluster"])
    path = folder / f"{account}.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": account, "context": {"cluster": cluster["name"], "user": account}}],
                "current-context": account,
            }
        )
    )
    path.chmod(0o600)
    return path


def test_helm_install_creates_the_release(cli: Cli, release: str) -> None:
    status = json.loads(cli.helm("status", release, "-n", RELEASE_NS, "-o", "json"))
    assert status["info"]["status"] == "deployed"
    for kind, name in [
        ("deployment", "inferflux-operator"),
        ("deployment", "inferflux-router"),
        ("networkpolicy", "inferflux-default-deny"),
        ("poddisruptionbudget", "inferflux-router"),
    ]:
        assert cli.get(kind, name, RELEASE_NS) is not None, f"{kind}/{name}"


def test_helm_upgrade_keeps_the_auth_secret(cli: Cli, release: str) -> None:
    """A new hashing secret would invalidate every key issued: upgrades read the old one back."""
    before = cli.get("secret", "inferflux-router-auth", RELEASE_NS)
    assert before is not None
    assert set(before["data"]) == {"hashing-secret", "admin-token", "redis-password", "resume-keys"}
    cli.helm("upgrade", release, str(CHART), "-n", RELEASE_NS, "--skip-crds", "--reuse-values")
    after = cli.get("secret", "inferflux-router-auth", RELEASE_NS)
    assert after is not None
    assert after["data"] == before["data"]


@contextlib.contextmanager
def operator_from_chart(cli: Cli, folder: Path) -> Iterator[Path]:
    """The operator run as the chart's Deployment says, under its ServiceAccount; yields its log."""
    deployment = cli.get("deployment", "inferflux-operator", RELEASE_NS)
    assert deployment is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env |= {
        "KUBECONFIG": str(service_account_kubeconfig(cli, "inferflux-operator", folder)),
        "INFERFLUX_OPERATOR_NAMESPACE": RELEASE_NS,
        "INFERFLUX_HEALTH_PORT": str(free_port()),
    }
    log = folder / "operator.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *container["command"][1:], *container.get("args", [])],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        health = f"http://127.0.0.1:{env['INFERFLUX_HEALTH_PORT']}/healthz"
        wait_for("the operator's liveness endpoint", lambda: _ok(health), timeout=60)
        yield log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        sys.stdout.write(log.read_text(errors="replace")[-3000:])


def model_deployments(cli: Cli, name: str, namespace: str) -> str:
    """The names of a model's Deployments (one per serving revision), found by its label."""
    return cli.kubectl(
        "get", "deployments", "-n", namespace, "-l", f"inferflux.io/model={name}", "-o", "name"
    )


def test_operator_runs_under_the_installed_rbac(cli: Cli, release: str, tmp_path: Path) -> None:
    who = f"system:serviceaccount:{RELEASE_NS}:inferflux-operator"
    assert (
        cli.kubectl("auth", "can-i", "list", "secrets", "--as", who, "-A", check=False)
        .strip()
        .startswith("no")
    )
    namespace = restricted_namespace(cli, "dlv-models")
    try:
        with operator_from_chart(cli, tmp_path) as log:
            gemma = llamacpp_model("gemma", namespace, airGapped=True)
            cli.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(gemma))
            wait_for("the model's Deployment", lambda: model_deployments(cli, "gemma", namespace), timeout=60)
            for kind, name in [("service", "gemma"), ("networkpolicy", "gemma-runtime")]:
                wait_for(f"{kind}/{name}", lambda k=kind, n=name: cli.get(k, n, namespace), timeout=60)
            policy = cli.get("networkpolicy", "gemma-runtime", namespace)
            assert policy is not None
            assert [p["port"] for p in policy["spec"]["egress"][0]["ports"]] == [53, 53]
            routing = wait_for(
                "the routing table", lambda: cli.get("configmap", "inferflux-routing", RELEASE_NS)
            )
            assert "routes.json" in routing["data"]

            # The Argo CD health check on the status this operator really wrote.
            provider = provider_model("gpt", namespace, secret="absent", key="k")
            cli.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(provider))
            stalled = wait_for(
                "gpt Stalled", lambda: _with_condition(cli.get("inferencemodel", "gpt", namespace), "Stalled")
            )
            assert argocd_health(stalled) == "Degraded"
            gemma = wait_for(
                "gemma status",
                lambda: _with_condition(cli.get("inferencemodel", "gemma", namespace), "Ready", "*"),
            )
            assert argocd_health(gemma) in ("Progressing", "Healthy")

            # A Tenant of the release namespace, published for the router under the chart's RBAC.
            tenant = {
                "apiVersion": "inferflux.io/v1alpha1",
                "kind": "Tenant",
                "metadata": {"name": "dlv-team", "namespace": RELEASE_NS},
                "spec": {"models": ["gemma"]},
            }
            cli.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(tenant))
            ready = wait_for(
                "the Tenant Ready",
                lambda: _with_condition(cli.get("tenant", "dlv-team", RELEASE_NS), "Ready"),
            )
            assert argocd_health(ready) == "Healthy"
            policy = cli.get("configmap", "inferflux-policy", RELEASE_NS)
            assert policy is not None
            assert json.loads(policy["data"]["policy.json"])["tenants"]["dlv-team"]["models"] == ["gemma"]
            cli.kubectl("delete", "tenant", "dlv-team", "-n", RELEASE_NS)
            assert not rbac_denials(log)
    finally:
        cli.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_namespaced_install_watches_only_its_namespaces(cli: Cli, release: str, tmp_path: Path) -> None:
    watched = restricted_namespace(cli, "dlv-watched")
    other = restricted_namespace(cli, "dlv-unwatched")
    cli.helm(
        "upgrade",
        release,
        str(CHART),
        "-n",
        RELEASE_NS,
        "--skip-crds",
        "--set",
        f"watchNamespaces={{{watched}}}",
    )
    try:
        who = f"system:serviceaccount:{RELEASE_NS}:inferflux-operator"
        for namespace, allowed in [(watched, "yes"), (other, "no")]:
            answer = cli.kubectl(
                "auth", "can-i", "create", "deployments", "--as", who, "-n", namespace, check=False
            )
            assert answer.strip() == allowed, namespace
        with operator_from_chart(cli, tmp_path) as log:
            for namespace in (other, watched):
                cli.kubectl(
                    "apply",
                    "--server-side",
                    "-f",
                    "-",
                    stdin=yaml.safe_dump(llamacpp_model("gemma", namespace, airGapped=True)),
                )
            wait_for(
                "the watched model's Deployment", lambda: model_deployments(cli, "gemma", watched), timeout=60
            )
            wait_for(
                "the watched model's status",
                lambda: _with_condition(cli.get("inferencemodel", "gemma", watched), "Ready", "*"),
            )
            # the other model was applied first: had the operator seen it, it would be done by now
            assert model_deployments(cli, "gemma", other) == ""
            unwatched = cli.get("inferencemodel", "gemma", other)
            assert unwatched is not None
            assert not (unwatched.get("status") or {}).get("conditions")
            assert not rbac_denials(log)
    finally:
        cli.helm("upgrade", release, str(CHART), "-n", RELEASE_NS, "--skip-crds", "--reset-values")
        for namespace in (watched, other):
            cli.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def rbac_denials(log: Path, upto: int | None = None) -> list[str]:
    """Lines of the operator's log (its first ``upto`` bytes) where RBAC said no ("... is forbidden:
    User ... cannot ...")."""
    text = log.read_bytes()[:upto].decode(errors="replace")
    return [line for line in text.splitlines() if "is forbidden: User" in line]


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _with_condition(obj: dict[str, Any] | None, type_: str, status: str = "True") -> dict[str, Any] | None:
    """The object once it has condition ``type_`` with ``status`` (any status for "*")."""
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c["type"] == type_ and status in ("*", c["status"]):
            return obj
    return None


def argocd_health(obj: dict[str, Any]) -> str:
    """Argo CD's verdict on an object, from the shipped Lua health check run in Lua 5.1."""
    from lupa import lua51

    lua = lua51.LuaRuntime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute((REPO / "manifests" / "argocd" / "health.lua").read_text())
    return str(result["status"])


def _not_terminating(cli: Cli, name: str) -> bool:
    found = cli.kubectl("get", "namespace", name, "-o", "json", "--ignore-not-found")
    return not found.strip() or json.loads(found)["status"].get("phase") != "Terminating"
