"""The ConfigMap source against a real API server (etcd + kube-apiserver from .cache/cluster-bin).

The binaries come from e2e/cluster/build.sh; the test starts its own single-node control plane with
a static token, writes the routing ConfigMap with the kubernetes client, and watches the router's
`ConfigMapSource` apply every change.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from inferflux.crds.routing import CONFIGMAP_KEY, CONFIGMAP_NAME, RoutingTable
from inferflux.router.discovery import ConfigMapSource

BIN = Path(__file__).resolve().parents[2] / ".cache" / "cluster-bin"
TOKEN = "router-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_service_account_key(folder: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "sa.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def wait_ready(url: str, process: subprocess.Popen[bytes], within: float = 90) -> None:
    import ssl
    import urllib.request

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(url + "/readyz", headers={"Authorization": f"Bearer {TOKEN}"})
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, "kube-apiserver exited"
        try:
            with urllib.request.urlopen(request, context=context, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError("kube-apiserver not ready in time")


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running control plane; yields a kubeconfig path."""
    if not (BIN / "kube-apiserver").exists():
        pytest.fail("control-plane binaries missing: run e2e/cluster/build.sh")
    folder = tmp_path_factory.mktemp("apiserver")
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    etcd = subprocess.Popen(
        [
            str(BIN / "etcd"),
            "--data-dir",
            str(folder / "etcd"),
            "--listen-client-urls",
            etcd_url,
            "--advertise-client-urls",
            etcd_url,
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-cluster",
            f"default=http://127.0.0.1:{peer_port}",
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    key = write_service_account_key(folder)
    (folder / "tokens.csv").write_text(f'{TOKEN},admin,admin,"system:masters"\n')
    api = subprocess.Popen(
        [
            str(BIN / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={folder / 'certs'}",
            f"--token-auth-file={folder / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={key}",
            f"--service-account-signing-key-file={key}",
            "--service-cluster-ip-range=10.96.0.0/24",
            "--disable-admission-plugins=ServiceAccount",
            "--enable-priority-and-fairness=false",
            "--v=0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "apiserver.log", "wb"),  # noqa: SIM115
    )
    url = f"https://127.0.0.1:{api_port}"
    kubeconfig = folder / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "test",
                "clusters": [{"name": "test", "cluster": {"server": url, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "admin", "user": {"token": TOKEN}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
            }
        )
    )
    try:
        wait_ready(url, api)
        yield kubeconfig
    finally:
        for process in (api, etcd):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def table(url: str) -> str:
    return json.dumps(
        {"version": 1, "models": {"m": {"name": "m", "engine": "llamacpp", "endpoints": [{"url": url}]}}}
    )


async def test_configmap_changes_apply_within_a_second(apiserver: Path) -> None:
    from kubernetes_asyncio import client, config

    await config.load_kube_config(config_file=str(apiserver))
    async with client.ApiClient() as api_client:
        core = client.CoreV1Api(api_client)
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=CONFIGMAP_NAME), data={CONFIGMAP_KEY: table("http://a:1")}
        )
        await core.create_namespaced_config_map("default", body)
        seen: list[RoutingTable] = []
        source = ConfigMapSource("default", CONFIGMAP_NAME, str(apiserver))
        task = asyncio.ensure_future(source.run(seen.append))
        try:

            async def wait_for(count: int) -> float:
                start = time.monotonic()
                while len(seen) < count:
                    assert time.monotonic() - start < 5, "change not applied"
                    await asyncio.sleep(0.01)
                return time.monotonic() - start

            await wait_for(1)
            assert seen[0].models["m"].endpoints[0].url == "http://a:1"
            await core.patch_namespaced_config_map(
                CONFIGMAP_NAME, "default", {"data": {CONFIGMAP_KEY: table("http://b:2")}}
            )
            assert await wait_for(2) < 1.0
            assert seen[1].models["m"].endpoints[0].url == "http://b:2"
            # a broken document is ignored; the next good one applies
            await core.patch_namespaced_config_map(
                CONFIGMAP_NAME, "default", {"data": {CONFIGMAP_KEY: "{oops"}}
            )
            await core.patch_namespaced_config_map(
                CONFIGMAP_NAME, "default", {"data": {CONFIGMAP_KEY: table("http://c:3")}}
            )
            await wait_for(3)
            assert [t.models["m"].endpoints[0].url for t in seen] == [
                "http://a:1",
                "http://b:2",
                "http://c:3",
            ]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
