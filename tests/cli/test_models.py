"""``inferctl models`` fails in one line when no cluster is reachable (the e2e suite runs it on one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from inferflux.cli.kube import default_namespace, resource_path

INFERCTL = str(Path(sys.executable).parent / "inferctl")
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts:
- {name: main, context: {cluster: c, user: u, namespace: team-a}}
- {name: other, context: {cluster: c, user: u}}
current-context: main
"""


def models(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([INFERCTL, "models", *args], capture_output=True, text=True, timeout=60)


def test_resource_paths() -> None:
    assert (
        resource_path("inferencemodels", "a", "g")
        == "/apis/inferflux.io/v1alpha1/namespaces/a/inferencemodels/g"
    )
    assert resource_path("inferencemodels", None) == "/apis/inferflux.io/v1alpha1/inferencemodels"


def test_the_namespace_comes_from_the_kubeconfig_context(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    assert default_namespace(str(path), None) == "team-a"
    assert default_namespace(str(path), "other") == "default"
    assert default_namespace(str(tmp_path / "missing"), None) == "default"


def test_an_unreachable_api_server_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    result = models("list", "--kubeconfig", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith("inferctl: error: cannot reach the API server at http://127.0.0.1:9")
    assert result.stderr.count("\n") == 1


def test_a_missing_kubeconfig_is_one_line(tmp_path: Path) -> None:
    result = models("describe", "gemma", "--kubeconfig", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"inferctl: error: no kubeconfig at {tmp_path / 'nope'}; pass --kubeconfig"
    )
    assert result.stderr.count("\n") == 1


def test_a_kubeconfig_without_a_context_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\n")
    result = models("list", "-n", "x", "--kubeconfig", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith("inferctl: error: the kubeconfig cannot be used: ")
    assert result.stderr.count("\n") == 1
