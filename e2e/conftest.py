"""Fixtures for the e2e tests: one real, local Kubernetes control plane per test session.

The control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK; see
``cluster_fixture.py`` beside this file and docs/testing.md) starts on first use, is shared by
every test of the session, and is stopped and removed at the end, also when tests fail.

Fixtures:

- ``kube_cluster``: the :class:`cluster_fixture.LocalCluster` itself (server URL, CA, version);
- ``kube``: its admin :class:`cluster_fixture.KubeAccess` (``kube.kubeconfig``,
  ``kube.kubectl(*args)``, ``kube.helm(*args)``, ``kube.api_client``);
- ``admin_kubeconfig``: the admin kubeconfig's path;
- ``service_account_kube``: a factory ``(namespace, name) -> KubeAccess`` holding a token of that
  ServiceAccount (created if missing), so that RBAC can be tested as least-privilege;
- ``restricted_namespace``: a fresh namespace enforcing Pod Security ``restricted``;
- ``oidc_provider``: a real OpenID Connect provider (Dex, ``oidc_fixture.py``), started on first
  use, with one client and one user, handing out ID tokens through the password grant.
- ``jaeger``: a real trace backend (Jaeger v2, ``jaeger_fixture.py``), started on first use, with
  an OTLP/HTTP receiver and its query API on free loopback ports and in-memory storage.

The helpers are loaded from ``cluster_fixture.py`` and ``oidc_fixture.py`` by path and registered
as modules of those names, so test modules may ``from cluster_fixture import KubeAccess``. pytest runs
in importlib mode and the repository root must never be on ``sys.path`` (``operator/`` would
shadow the standard library), hence no package-relative import here.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def _load_helpers(name: str) -> None:
    """Import ``<name>.py`` (beside this file) as the top-level module ``name``."""
    if name in sys.modules:
        return
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec: dataclasses look their module up
    spec.loader.exec_module(module)


_load_helpers("cluster_fixture")
_load_helpers("oidc_fixture")  # imports cluster_fixture: loaded second
_load_helpers("jaeger_fixture")  # imports both: loaded third
_load_helpers("quickstart_doc")  # the quickstart parser (pure; test_quickstarts.py)

from cluster_fixture import ClusterError, KubeAccess, LocalCluster  # noqa: E402
from jaeger_fixture import jaeger  # noqa: E402, F401  (a fixture: registered by being here)
from oidc_fixture import oidc_provider  # noqa: E402, F401  (a fixture: registered by being here)

_names = itertools.count()


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[LocalCluster]:
    """The session's control plane: started on first use, stopped and removed after the session.

    Missing binaries fail (not skip) the tests that need a cluster, saying to run
    ``make cluster-bin``: a silently skipped e2e suite would look green.
    """
    problem = ""
    try:
        cluster = LocalCluster()
        cluster.start()
    except ClusterError as error:  # failed outside the handler: no chained traceback
        problem = str(error)
    if problem:
        pytest.fail(problem, pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kube(kube_cluster: LocalCluster) -> KubeAccess:
    """The cluster as its administrator (group ``system:masters``)."""
    return kube_cluster.admin


@pytest.fixture(scope="session")
def admin_kubeconfig(kube: KubeAccess) -> Path:
    """The path of the administrator's kubeconfig."""
    return kube.kubeconfig


@pytest.fixture
def service_account_kube(kube_cluster: LocalCluster) -> Iterator[Callable[[str, str], KubeAccess]]:
    """A factory: ``service_account_kube(namespace, name)`` is that ServiceAccount's access.

    The namespace and account are created when missing; the token comes from the TokenRequest
    API. Nothing else is granted: bind the Roles under test yourself.
    """
    made: list[KubeAccess] = []

    def make(namespace: str, name: str) -> KubeAccess:
        access = kube_cluster.service_account_access(namespace, name)
        made.append(access)
        return access

    yield make
    for access in made:
        access.close()


@pytest.fixture
def restricted_namespace(kube: KubeAccess, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace that enforces (and warns and audits) Pod Security ``restricted``.

    Yields once its ``default`` ServiceAccount exists, so pods can be created at once; it is
    deleted (without waiting) after the test.
    """
    test = "".join(c if c.isalnum() else "-" for c in request.node.name.removeprefix("test_").lower())
    name = f"r-{test[:40].strip('-')}-{os.getpid() % 10000}-{next(_names)}"
    labels = {
        f"pod-security.kubernetes.io/{mode}{suffix}": value
        for mode in ("enforce", "warn", "audit")
        for suffix, value in (("", "restricted"), ("-version", "latest"))
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    kube.kubectl("create", "-f", "-", input=json.dumps(namespace))
    kube.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=30s")
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)
