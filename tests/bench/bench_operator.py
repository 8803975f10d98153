"""200 InferenceModels applied at once, on the real control plane (`make bench-operator`).

Two runs side by side on the same cluster, in fresh namespaces:

- baseline: the 200 Deployments the operator would render, sent directly by the client — what
  the API server, controller manager, scheduler and KWOK cost with no operator in the loop;
- operator: 200 InferenceModels, with ``python -m inferflux.operator`` running as its own
  ServiceAccount (RBAC from manifests/), rendering and applying each model's objects.

Each pair runs in two ways of applying 200 objects at once:

- apply: one server-side apply request per object, back to back on one connection, as
  ``kubectl apply --server-side -f models/`` (and Flux's kustomize-controller) sends them;
- burst: all 200 creates in flight together, 64 connections: a stress case no client sends.

For each, the latency from sending an object's request to seeing its Deployment in a watch (p50,
p99), and the time until every object is Ready (baseline: every Deployment available). Target: the
operator's p99 from apply to Deployment created stays under 2 s.

    python tests/bench/bench_operator.py [--models N] [--kubeconfig ADMIN_KUBECONFIG]

Without ``--kubeconfig`` it starts the e2e control plane (e2e/cluster_fixture.py; ``make cluster-bin``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from kubernetes_asyncio import client, config, watch

from inferflux.crds import InferenceModel
from inferflux.operator.render.deployment import render_deployment
from inferflux.operator.render.labels import MANAGED_BY
from inferflux.operator.settings import Settings

REPO = Path(__file__).resolve().parents[2]
KUBECTL = REPO / ".cache" / "cluster-bin" / "kubectl"
OPERATOR_NS = "inferflux-system"
TARGET_P99 = 2.0
TARGET_MODE = "apply"  # the target is for objects applied as a client applies them
HEALTH_URL = "http://127.0.0.1:18481/healthz"
DEADLINE = 600.0


def cluster_fixture() -> ModuleType:
    """``e2e/cluster_fixture.py``: the local control plane and the e2e suites' sample objects."""
    if "cluster_fixture" not in sys.modules:
        spec = importlib.util.spec_from_file_location("cluster_fixture", REPO / "e2e" / "cluster_fixture.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["cluster_fixture"] = module  # before exec: its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules["cluster_fixture"]


def model_body(name: str, namespace: str) -> dict[str, Any]:
    """One small llama.cpp model, as a user would apply it (the e2e suites' sample)."""
    body: dict[str, Any] = cluster_fixture().llamacpp_model(name, namespace)
    return body


def kubectl(kubeconfig: Path, *args: str) -> str:
    binary = str(KUBECTL) if KUBECTL.exists() else "kubectl"
    done = subprocess.run(
        [binary, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"bench-operator: kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def install(admin: Path, workdir: Path) -> Path:
    """CRDs and the operator's RBAC; returns a kubeconfig of the operator's ServiceAccount."""
    base = REPO / "manifests" / "base"
    for crd in ("inferencemodel.yaml", "prompt.yaml", "tenant.yaml"):
        kubectl(admin, "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds" / crd))
    kubectl(admin, "apply", "-f", str(base / "namespace.yaml"), "-f", str(base / "operator-rbac.yaml"))
    kubectl(admin, "wait", "--for=condition=Established", "crd/inferencemodels.inferflux.io")
    token = kubectl(admin, "create", "token", "inferflux-operator", "-n", OPERATOR_NS).strip()
    conf = yaml.safe_load(admin.read_text())
    context = next(c for c in conf["contexts"] if c["name"] == conf["current-context"])["context"]
    cluster = next(c for c in conf["clusters"] if c["name"] == context["cluster"])
    operator_conf = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": cluster["name"], "user": "operator"}}],
        "current-context": "operator",
    }
    path = workdir / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(operator_conf))
    return path


@contextlib.contextmanager
def running_operator(kubeconfig: Path, workdir: Path) -> Iterator[None]:
    """The operator as a subprocess under its ServiceAccount, until the block ends."""
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "INFERFLUX_OPERATOR_NAMESPACE": OPERATOR_NS,
        "INFERFLUX_HEALTH_PORT": "18481",
    }
    with (workdir / "operator.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "inferflux.operator"], env=env, stdout=log, stderr=log
        )
    print(f"bench-operator: operator log in {workdir / 'operator.log'}", file=sys.stderr)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(HEALTH_URL, timeout=1):
                break
            time.sleep(0.2)
        else:
            raise SystemExit(
                "bench-operator: the operator did not come up; see " + str(workdir / "operator.log")
            )
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)


async def watch_until(
    list_fn: Callable[..., Any], namespace: str, done: Callable[[dict[str, Any]], bool], count: int, **kw: Any
) -> dict[str, float]:
    """Monotonic time at which each object first satisfies ``done``, until ``count`` of them do."""
    seen: dict[str, float] = {}

    def raw(*args: Any, **kwargs: Any) -> Any:  # no typed return: the watch yields plain dicts
        return list_fn(*args, **kwargs)

    async with watch.Watch() as stream, asyncio.timeout(DEADLINE):
        while len(seen) < count:
            async for event in stream.stream(raw, namespace, timeout_seconds=60, **kw):
                obj = event["object"]
                # A Deployment is named <model>-<revision>: key it by the model it serves.
                name = (obj["metadata"].get("labels") or {}).get("inferflux.io/model") or obj["metadata"][
                    "name"
                ]
                if name not in seen and done(obj):
                    seen[name] = time.monotonic()
                if len(seen) >= count:
                    break
    return seen


def is_ready(obj: dict[str, Any]) -> bool:
    conditions = obj.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def is_available(obj: dict[str, Any]) -> bool:
    return bool(((obj.get("status") or {}).get("availableReplicas") or 0) >= 1)


async def namespace(api: client.ApiClient, name: str) -> None:
    body = {"metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    await client.CoreV1Api(api).create_namespace(body)


async def send_all(
    send: Callable[[dict[str, Any]], Any], bodies: list[dict[str, Any]], burst: bool
) -> tuple[dict[str, float], dict[str, float]]:
    """Send every body, all together or one after another; when each was sent, and accepted."""
    sent: dict[str, float] = {}
    accepted: dict[str, float] = {}

    async def one(body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        sent[name] = time.monotonic()
        await send(body)
        accepted[name] = time.monotonic()

    if burst:
        await asyncio.gather(*(one(body) for body in bodies))
    else:
        for body in bodies:
            await one(body)
    return sent, accepted


def sender(api: client.ApiClient, kind: str, ns: str, burst: bool) -> Callable[[dict[str, Any]], Any]:
    """How one body goes to the API server: a create in a burst, else a server-side apply."""
    apps, custom = client.AppsV1Api(api), client.CustomObjectsApi(api)
    model = ("inferflux.io", "v1alpha1", ns, "inferencemodels")
    if burst:
        if kind == "baseline":
            return lambda body: apps.create_namespaced_deployment(ns, body)
        return lambda body: custom.create_namespaced_custom_object(*model, body)
    ssa = "application/apply-patch+yaml"
    if kind == "baseline":
        return lambda body: apps.patch_namespaced_deployment(
            body["metadata"]["name"], ns, body, field_manager="kubectl", _content_type=ssa
        )
    return lambda body: custom.patch_namespaced_custom_object(
        *model, body["metadata"]["name"], body, field_manager="kubectl", _content_type=ssa
    )


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def run(api: client.ApiClient, kind: str, ns: str, count: int, burst: bool) -> dict[str, float]:
    """One run: ``kind`` is "baseline" (Deployments) or "operator" (InferenceModels)."""
    apps, custom = client.AppsV1Api(api), client.CustomObjectsApi(api)
    await namespace(api, ns)
    names = [f"m{i:03d}" for i in range(count)]
    models = [model_body(name, ns) for name in names]
    created = asyncio.create_task(watch_until(apps.list_namespaced_deployment, ns, lambda _: True, count))
    if kind == "baseline":
        finished = asyncio.create_task(watch_until(apps.list_namespaced_deployment, ns, is_available, count))
        settings = Settings(runtime_image="ghcr.io/inferflux/runtime:bench")
        bodies = [
            render_deployment(
                InferenceModel.from_body({**m, "metadata": {**m["metadata"], "uid": "x"}}), settings
            )
            for m in models
        ]
        for body, m in zip(bodies, models, strict=True):
            body["metadata"].pop("ownerReferences")
            body["metadata"]["name"] = m["metadata"]["name"]
            # Not the operator's: it must not watch, cache and reconcile the baseline's objects.
            for labels in (body["metadata"]["labels"], body["spec"]["template"]["metadata"]["labels"]):
                labels[MANAGED_BY] = "bench-baseline"
    else:

        def list_models(namespace: str, **kw: Any) -> Any:
            return custom.list_namespaced_custom_object(
                "inferflux.io", "v1alpha1", namespace, "inferencemodels", **kw
            )

        finished = asyncio.create_task(watch_until(list_models, ns, is_ready, count))
        bodies = models
    await asyncio.sleep(0.5)
    start = time.monotonic()
    sent, accepted = await send_all(sender(api, kind, ns, burst), bodies, burst)
    created_at, ready_at = await created, await finished
    latencies = sorted(created_at[name] - sent[name] for name in names)
    return {
        "accepted_p99": p99([accepted[name] - sent[name] for name in names]),
        "after_accept_p99": p99([created_at[name] - accepted[name] for name in names]),
        "p50": statistics.median(latencies),
        "p99": p99(latencies),
        "max": latencies[-1],
        "all_ready": max(ready_at.values()) - start,
    }


async def warm_up(api: client.ApiClient, ns: str) -> None:
    """Wait until the operator acts on a model: its liveness answers before its watches run."""
    await namespace(api, ns)
    custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
    await custom.create_namespaced_custom_object(
        "inferflux.io", "v1alpha1", ns, "inferencemodels", model_body("warm-up", ns)
    )
    async with asyncio.timeout(60):
        while True:
            with contextlib.suppress(client.ApiException):
                found = await apps.list_namespaced_deployment(ns, label_selector="inferflux.io/model=warm-up")
                if found.items:
                    return
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def cluster(kubeconfig: Path | None) -> AsyncIterator[Path]:
    """The admin kubeconfig of the given cluster, or of an e2e control plane started for the run."""
    if kubeconfig is not None:
        yield kubeconfig
        return
    e2e = cluster_fixture()
    try:
        plane = e2e.LocalCluster()
    except e2e.ClusterError as error:
        raise SystemExit(f"bench-operator: {error}") from None
    with plane:
        yield Path(plane.admin.kubeconfig)


def table(rows: dict[str, dict[str, float]], count: int, mode: str) -> str:
    how = MODES[mode]
    lines = [
        f"bench-operator: {count} objects, {how} (seconds; ratio = operator / baseline)",
        f"{'metric':<34}{'baseline':>10}{'operator':>10}{'ratio':>8}",
    ]
    labels = {
        "accepted_p99": "apply -> request accepted, p99",
        "after_accept_p99": "accepted -> Deployment seen, p99",
        "p50": "apply -> Deployment created, p50",
        "p99": "apply -> Deployment created, p99",
        "max": "apply -> Deployment created, max",
        "all_ready": "apply -> all Ready",
    }
    for key, label in labels.items():
        base, op = rows["baseline"][key], rows["operator"][key]
        ratio = op / base if base > 0.0005 else float("nan")
        lines.append(f"{label:<34}{base:>10.3f}{op:>10.3f}{ratio:>8.2f}")
    verdict = "meets" if rows["operator"]["p99"] < TARGET_P99 else "MISSES"
    lines.append(
        f"operator p99 {rows['operator']['p99']:.3f}s {verdict} the {TARGET_P99:.0f}s target ({mode})"
    )
    return "\n".join(lines)


MODES = {
    "apply": "one server-side apply after another, as kubectl apply --server-side -f sends them",
    "burst": "every create in flight at once on 64 connections (stress)",
}


async def main(args: argparse.Namespace) -> int:
    modes = list(MODES) if args.mode == "both" else [args.mode]
    tables: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-operator-") as tmp:
        workdir = Path(tmp)
        async with cluster(args.kubeconfig) as admin:
            operator_kubeconfig = install(admin, workdir)
            await config.load_kube_config(str(admin))
            conf = client.Configuration.get_default_copy()
            conf.connection_pool_maxsize = 64
            async with client.ApiClient(conf) as api:
                for mode in modes:
                    tables[mode] = await pair(api, operator_kubeconfig, workdir, args.models, mode)
    for mode, rows in tables.items():
        print(table(rows, args.models, mode))
    target = tables.get(TARGET_MODE)
    return 0 if target is None or target["operator"]["p99"] < TARGET_P99 else 1


async def pair(
    api: client.ApiClient, operator_kubeconfig: Path, workdir: Path, count: int, mode: str
) -> dict[str, dict[str, float]]:
    """The baseline, then the operator, each in its own namespaces, which are deleted afterwards."""
    suffix = f"{mode}-{os.getpid()}"
    namespaces = [f"bench-base-{suffix}", f"bench-warm-{suffix}", f"bench-op-{suffix}"]
    rows: dict[str, dict[str, float]] = {}
    try:
        rows["baseline"] = await run(api, "baseline", namespaces[0], count, mode == "burst")
        with running_operator(operator_kubeconfig, workdir):
            await warm_up(api, namespaces[1])
            rows["operator"] = await run(api, "operator", namespaces[2], count, mode == "burst")
    finally:
        for ns in namespaces:
            with contextlib.suppress(client.ApiException):
                await client.CoreV1Api(api).delete_namespace(ns)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--mode", choices=[*MODES, "both"], default="both")
    parser.add_argument("--kubeconfig", type=Path, default=None, help="admin kubeconfig of a running cluster")
    sys.exit(asyncio.run(main(parser.parse_args())))
