"""Blue/green model swaps under lookup load, on the real control plane (`make bench-swap`).

Two runs side by side on the same cluster, in fresh namespaces, each swapping N models (2 replicas)
at once while a load loop performs "requests" every 50 ms:

- baseline: N plain Deployments (the operator's rendering, rolling update maxSurge 1 /
  maxUnavailable 0) created directly, then a pod-template change; swap time = patch -> every
  Deployment reports all replicas updated and available. A request = pick a Ready pod of the
  Deployment; it fails when there is none.
- operator (blue/green): N InferenceModels with ``python -m inferflux.operator`` running as its
  ServiceAccount; swap = an engine-args change (a new revision); swap time = patch ->
  ``status.activeRevision`` is the new revision (traffic switched). A request = look the model up
  in the routing table (what the router does) and pick an endpoint; it fails when the entry lists
  no endpoint, or one whose pod is not Ready at that moment, or endpoints of two revisions.

KWOK pods have no process behind their IPs, so requests are routing lookups, not HTTP calls. The
in-place strategy is measured on the real runtime by ``bench_inplace.py`` (KWOK pods cannot
answer the runtime's admin API).

    python tests/bench/bench_swap.py [--models N] [--kubeconfig ADMIN_KUBECONFIG]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config

from inferflux.crds import InferenceModel
from inferflux.operator.render.deployment import render_deployment
from inferflux.operator.settings import Settings

_spec = importlib.util.spec_from_file_location(
    "bench_operator", Path(__file__).with_name("bench_operator.py")
)
assert _spec is not None
assert _spec.loader is not None
bench_operator = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_operator)

OPERATOR_NS = bench_operator.OPERATOR_NS
LOAD_INTERVAL = 0.05
DEADLINE = 300.0
MERGE = "application/merge-patch+json"


def model_body(name: str, namespace: str, threads: int) -> dict[str, Any]:
    body: dict[str, Any] = bench_operator.model_body(name, namespace)
    body["spec"] |= {"replicas": 2, "engineArgs": {"contextSize": 2048, "threads": threads}}
    return body


def pod_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


class Load:
    """Requests every 50 ms until stopped; counts those that found no Ready endpoint."""

    def __init__(self) -> None:
        self.requests = 0
        self.failed = 0
        self.stopped = asyncio.Event()

    async def run(self, lookup: Any) -> None:
        while not self.stopped.is_set():
            for ok in await lookup():
                self.requests += 1
                self.failed += not ok
            await asyncio.sleep(LOAD_INTERVAL)


async def ready_pods(core: client.CoreV1Api, ns: str) -> dict[str, bool]:
    pods = await core.list_namespaced_pod(ns)
    return {p.metadata.name: pod_ready(p) and p.metadata.deletion_timestamp is None for p in pods.items}


async def wait(what: str, probe: Any) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"bench-swap: timed out waiting for {what}")


async def baseline(api: client.ApiClient, ns: str, count: int) -> dict[str, float]:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    await core.create_namespace({"metadata": {"name": ns}})
    names = [f"m{i}" for i in range(count)]
    for name in names:
        body = render_deployment(InferenceModel.from_body(model_body(name, ns, 2)), Settings())
        body["metadata"] |= {"name": name, "ownerReferences": []}
        await apps.create_namespaced_deployment(ns, body)

    async def all_available() -> bool:
        items = (await apps.list_namespaced_deployment(ns)).items
        return len(items) == count and all(
            d.status.observed_generation == d.metadata.generation
            and (d.status.updated_replicas or 0) == 2
            and (d.status.available_replicas or 0) == 2
            and (d.status.replicas or 0) == 2
            for d in items
        )

    await wait("the baseline Deployments", all_available)

    async def lookup() -> list[bool]:
        pods = await core.list_namespaced_pod(ns)
        ready = {p.metadata.labels.get("inferflux.io/model") for p in pods.items if pod_ready(p)}
        return [name in ready for name in names]

    load = Load()
    task = asyncio.create_task(load.run(lookup))
    started = time.monotonic()
    patch = {"spec": {"template": {"metadata": {"annotations": {"bench/rev": "2"}}}}}
    await asyncio.gather(
        *(apps.patch_namespaced_deployment(n, ns, patch, _content_type=MERGE) for n in names)
    )
    await wait("the baseline rolling updates", all_available)
    elapsed = time.monotonic() - started
    load.stopped.set()
    await task
    return {"swap": elapsed, "requests": load.requests, "failed": load.failed}


async def operator_run(api: client.ApiClient, ns: str, count: int) -> dict[str, float]:
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    await core.create_namespace({"metadata": {"name": ns}})
    names = [f"m{i}" for i in range(count)]
    for name in names:
        await custom.create_namespaced_custom_object(
            "inferflux.io", "v1alpha1", ns, "inferencemodels", model_body(name, ns, 2)
        )

    async def statuses() -> dict[str, dict[str, Any]]:
        items = (
            await custom.list_namespaced_custom_object("inferflux.io", "v1alpha1", ns, "inferencemodels")
        )["items"]
        return {m["metadata"]["name"]: m.get("status", {}) for m in items}

    async def table() -> dict[str, Any]:
        cm = await core.read_namespaced_config_map("inferflux-routing", OPERATOR_NS)
        models: dict[str, Any] = json.loads(cm.data["routes.json"])["models"]
        return models

    async def routed() -> bool:
        with contextlib.suppress(client.ApiException):
            entries = await table()
            return all(len(entries.get(n, {}).get("endpoints", [])) == 2 for n in names)
        return False

    async def settled() -> bool:
        active = [s.get("activeRevision") for s in (await statuses()).values()]
        return len(active) == count and all(active) and await routed()

    await wait("the models to be active and routed", settled)
    before = {n: s.get("activeRevision") for n, s in (await statuses()).items()}

    async def lookup() -> list[bool]:
        entries, ready = await table(), await ready_pods(core, ns)
        results = []
        for name in names:
            endpoints = entries.get(name, {}).get("endpoints", [])
            revisions = {e["revision"] for e in endpoints}
            results.append(
                bool(endpoints) and len(revisions) == 1 and all(ready.get(e["pod"]) for e in endpoints)
            )
        return results

    load = Load()
    task = asyncio.create_task(load.run(lookup))
    started = time.monotonic()
    patch = {"spec": {"engineArgs": {"threads": 1}}}
    await asyncio.gather(
        *(
            custom.patch_namespaced_custom_object(
                "inferflux.io", "v1alpha1", ns, "inferencemodels", n, patch, _content_type=MERGE
            )
            for n in names
        )
    )
    switched: dict[str, float] = {}

    async def all_switched() -> bool:
        for name, status in (await statuses()).items():
            if name not in switched and status.get("activeRevision") not in (None, before[name]):
                switched[name] = time.monotonic() - started
        return len(switched) == count

    await wait("the blue/green switches", all_switched)
    load.stopped.set()
    await task
    return {
        "swap": max(switched.values()),
        "p50": statistics.median(switched.values()),
        "requests": load.requests,
        "failed": load.failed,
    }


def report(rows: dict[str, dict[str, float]], count: int) -> str:
    base, op = rows["baseline"], rows["operator"]
    lines = [
        f"bench-swap: {count} models x 2 replicas swapped at once under lookup load"
        " (ratio = operator / baseline)",
        f"{'metric':<44}{'baseline':>10}{'blue/green':>12}{'ratio':>8}",
        f"{'swap time, all models (s)':<44}{base['swap']:>10.3f}{op['swap']:>12.3f}"
        f"{op['swap'] / base['swap']:>8.2f}",
        f"{'requests during the swap':<44}{base['requests']:>10.0f}{op['requests']:>12.0f}{'':>8}",
        f"{'failed requests (no Ready endpoint)':<44}{base['failed']:>10.0f}{op['failed']:>12.0f}{'':>8}",
        f"blue/green swap time p50 {op['p50']:.3f}s; in place: see bench_inplace.py",
    ]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-swap-") as tmp:
        workdir = Path(tmp)
        async with bench_operator.cluster(args.kubeconfig) as admin:
            operator_kubeconfig = bench_operator.install(admin, workdir)
            await config.load_kube_config(str(admin))
            suffix = str(os.getpid())
            namespaces = (f"swap-base-{suffix}", f"swap-op-{suffix}")
            rows: dict[str, dict[str, float]] = {}
            async with client.ApiClient() as api:
                try:
                    rows["baseline"] = await baseline(api, namespaces[0], args.models)
                    with bench_operator.running_operator(operator_kubeconfig, workdir):
                        rows["operator"] = await operator_run(api, namespaces[1], args.models)
                finally:
                    for ns in namespaces:
                        with contextlib.suppress(client.ApiException):
                            await client.CoreV1Api(api).delete_namespace(ns)
    print(report(rows, args.models))
    return 0 if rows["operator"]["failed"] == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--kubeconfig", type=Path, default=None, help="admin kubeconfig of a running cluster")
    sys.exit(asyncio.run(main(parser.parse_args())))
