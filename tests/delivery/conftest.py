"""Shared fixtures for the delivery tests: repository paths, CLI tools, a restricted-profile check."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER_BIN = REPO / ".cache" / "cluster-bin"


def _tool(name: str) -> Path:
    """A CLI the delivery tests drive: the pinned e2e build first, then the venv, then PATH."""
    for candidate in (CLUSTER_BIN / name, REPO / ".venv" / "bin" / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: run `make cluster-bin` (or install it on PATH)")
    return Path(found)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def kubectl() -> Path:
    return _tool("kubectl")


@pytest.fixture(scope="session")
def helm() -> Path:
    return _tool("helm")


def load_all(text: str) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="session")
def kustomize_base(kubectl: Path) -> list[dict[str, Any]]:
    """The objects `kubectl apply -k manifests/base` would send."""
    out = subprocess.run(
        [str(kubectl), "kustomize", str(REPO / "manifests" / "base")],
        check=True,
        capture_output=True,
        text=True,
    )
    return load_all(out.stdout)


def _pod_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if obj["kind"] == "Pod":
        yield obj["spec"]
    template = obj.get("spec", {}).get("template", {})
    if "spec" in template:
        yield template["spec"]


def restricted_violations(obj: dict[str, Any]) -> list[str]:
    """What in an object's pod spec breaks the Pod Security "restricted" profile (empty when none).

    It checks the fields the profile constrains that our pods set: non-root, no privilege
    escalation, every capability dropped, RuntimeDefault seccomp, no host namespaces or hostPath.
    """
    problems: list[str] = []
    for spec in _pod_specs(obj):
        pod_sc = spec.get("securityContext", {})
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key):
                problems.append(f"{key} is set")
        problems += [f"volume {v['name']} is a hostPath" for v in spec.get("volumes", []) if "hostPath" in v]
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            sc = c.get("securityContext", {})
            name = c["name"]
            if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
                problems.append(f"{name}: runAsNonRoot is not true")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                problems.append(f"{name}: runs as uid 0")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: allowPrivilegeEscalation is not false")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{name}: capabilities are not dropped")
            if set(sc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
                problems.append(f"{name}: adds capabilities")
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{name}: seccompProfile is {seccomp}")
            if sc.get("privileged"):
                problems.append(f"{name}: privileged")
    return problems


@pytest.fixture(scope="session")
def pod_security() -> Callable[[dict[str, Any]], list[str]]:
    return restricted_violations


ChartRenderer = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def render_chart(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> ChartRenderer:
    """`helm template` of the chart with some values, as objects (test hooks included)."""
    folder = tmp_path_factory.mktemp("values")

    def render(
        values: dict[str, Any] | None = None, *extra: str, namespace: str = "inferflux-system"
    ) -> list[dict[str, Any]]:
        path = folder / f"values-{len(list(folder.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump(values or {}))
        chart = str(REPO / "helm" / "inferflux")
        argv = [str(helm), "template", "inferflux", chart, "-n", namespace, "-f", str(path), *extra]
        out = subprocess.run(argv, check=True, capture_output=True, text=True)
        return load_all(out.stdout)

    return render
