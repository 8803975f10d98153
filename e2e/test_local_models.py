"""``inferctl models list|get|describe`` against the real API server of the e2e control plane.

The status is written through the status subresource as the operator would, so the columns and
conditions shown are the server's rendering of real objects (no operator needed for this).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
INFERCTL = str(Path(sys.executable).parent / "inferctl")
NAMESPACE = "inferctl-models"


@pytest.fixture(scope="module")
def cluster(kube: Any, admin_kubeconfig: Path) -> Path:
    for crd in ("inferencemodel.yaml", "prompt.yaml"):
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds" / crd))
    kube.kubectl("wait", "--for=condition=Established", "crd/inferencemodels.inferflux.io")
    kube.kubectl("create", "namespace", NAMESPACE, check=False)
    kube.kubectl("apply", "-n", NAMESPACE, "-f", str(REPO / "docs/examples/local/smollm2-135m.yaml"))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {
        "status": {
            "observedGeneration": 1, "servedName": "smollm2-135m", "replicas": 1, "readyReplicas": 1,
            "activeRevision": "5f1c2a9b3e", "endpoint": "http://smollm2-135m.inferctl-models:8080",
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Serving", "message": "1/1 replicas ready",
                 "lastTransitionTime": now, "observedGeneration": 1},
                {"type": "Progressing", "status": "False", "reason": "RolloutComplete", "message": "",
                 "lastTransitionTime": now, "observedGeneration": 1},
            ],
        }
    }  # fmt: skip
    kube.kubectl(
        "patch", "inferencemodel", "smollm2-135m", "-n", NAMESPACE, "--subresource=status",
        "--type=merge", "-p", json.dumps(status),
    )  # fmt: skip
    return admin_kubeconfig


def inferctl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INFERCTL, "models", *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_list_shows_the_printer_columns_like_kubectl_get(cluster: Path) -> None:
    result = inferctl(cluster, "list", "-n", NAMESPACE)
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "ENGINE", "REPLICAS", "ACTIVE", "AGE"]
    assert row.split()[:6] == ["smollm2-135m", "True", "Serving", "llamacpp", "1", "5f1c2a9b3e"]
    assert row.split()[6].endswith("s") or row.split()[6].endswith("m")


def test_list_all_namespaces_and_get_wide(cluster: Path) -> None:
    everywhere = inferctl(cluster, "list", "-A")
    assert any(line.split()[:2] == [NAMESPACE, "smollm2-135m"] for line in everywhere.stdout.splitlines())
    wide = inferctl(cluster, "get", "smollm2-135m", "-n", NAMESPACE, "-o", "wide")
    assert "http://smollm2-135m.inferctl-models:8080" in wide.stdout
    assert wide.stdout.splitlines()[0].split()[-1] == "AGE"


def test_get_yaml_and_describe_show_status_and_conditions(cluster: Path) -> None:
    as_yaml = inferctl(cluster, "get", "smollm2-135m", "-n", NAMESPACE, "-o", "yaml")
    assert "activeRevision: 5f1c2a9b3e" in as_yaml.stdout
    described = inferctl(cluster, "describe", "smollm2-135m", "-n", NAMESPACE)
    assert described.returncode == 0, described.stderr
    assert "Replicas:           1 ready / 1 desired" in described.stdout
    assert (
        "Source:             pvc://models/smollm2-135m-instruct-q4_1.gguf (sha256 b179c9523d0e…)"
        in described.stdout
    )
    conditions = described.stdout.split("Conditions:\n")[1].splitlines()
    assert conditions[0].split() == ["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]
    assert conditions[1].split()[:3] == ["Ready", "True", "Serving"]
    assert conditions[1].endswith("1/1 replicas ready")
    assert conditions[2].split()[:3] == ["Progressing", "False", "RolloutComplete"]


def test_a_missing_model_and_an_empty_namespace(cluster: Path) -> None:
    missing = inferctl(cluster, "describe", "nope", "-n", NAMESPACE)
    assert missing.returncode == 1
    assert (
        missing.stderr
        == 'inferctl: error: the API server answered 404: inferencemodels.inferflux.io "nope" not found\n'
    )
    empty = inferctl(cluster, "list", "-n", "kube-public")
    assert empty.stdout == "No InferenceModels found in kube-public namespace.\n"
