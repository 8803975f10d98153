"""API keys: local env/file sources, Kubernetes Secrets on a real API server, and redaction from every log."""

from __future__ import annotations

import importlib.util
import logging
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fake_common import failure
from kubernetes_asyncio import client as kube

from inferflux.crds.inferencemodel import SecretKeyRef
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.providers.openai_adapter import OpenAIAdapter
from inferflux.router.providers.secrets import (
    KubeSecrets,
    LocalSecrets,
    env_name,
    install_redaction,
    redact,
    register,
)

REF = SecretKeyRef(name="openai-creds", key="api.key")
ROUTER_TESTS = Path(__file__).resolve().parents[1]


def test_env_name_is_documented_shape() -> None:
    assert env_name(REF) == "INFERFLUX_PROVIDER_KEY_OPENAI_CREDS_API_KEY"


async def test_local_keys_from_env_then_directory(tmp_path: Path) -> None:
    assert await LocalSecrets({env_name(REF): "sk-from-env-1"}).get("", REF) == "sk-from-env-1"
    (tmp_path / "openai-creds").mkdir()
    (tmp_path / "openai-creds" / "api.key").write_text("sk-from-file-2\n")
    source = LocalSecrets({"INFERFLUX_PROVIDER_KEYS_DIR": str(tmp_path)})
    assert await source.get("", REF) == "sk-from-file-2"


async def test_missing_local_key_is_unavailable_and_names_the_variable() -> None:
    raised = await failure(LocalSecrets({}).get("team-a", REF))
    assert raised.code is ErrorCode.UNAVAILABLE
    assert "INFERFLUX_PROVIDER_KEY_OPENAI_CREDS_API_KEY" in raised.message


def _control_plane() -> ModuleType:
    """The router tests' real etcd + kube-apiserver fixture (from .cache/cluster-bin), shared, not copied."""
    name = "inferflux_tests_router_control_plane"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROUTER_TESTS / "test_configmap_source.py")
        assert spec is not None
        assert spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


apiserver = _control_plane().apiserver


@pytest.fixture
async def kube_api(apiserver: Path) -> AsyncIterator[Any]:
    """A CoreV1Api on the real API server, with namespace team-a holding Secret openai-creds."""
    from kubernetes_asyncio import config

    configuration = kube.Configuration()
    await config.load_kube_config(config_file=str(apiserver), client_configuration=configuration)
    async with kube.ApiClient(configuration) as api_client:
        core = kube.CoreV1Api(api_client)
        namespace = f"team-{uuid.uuid4().hex[:8]}"
        await core.create_namespace(kube.V1Namespace(metadata=kube.V1ObjectMeta(name=namespace)))
        secret = kube.V1Secret(
            metadata=kube.V1ObjectMeta(name="openai-creds"), string_data={"api.key": "sk-kube-1"}
        )
        await core.create_namespaced_secret(namespace, secret)
        yield core, namespace


async def rotate(core: Any, namespace: str, value: str) -> None:
    await core.patch_namespaced_secret("openai-creds", namespace, {"stringData": {"api.key": value}})


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_kube_secret_is_cached_refreshed_and_invalidated(kube_api: Any) -> None:
    core, namespace = kube_api
    clock = Clock()
    secrets = KubeSecrets(core, ttl_seconds=60, clock=clock)
    assert await secrets.get(namespace, REF) == "sk-kube-1"
    await rotate(core, namespace, "sk-kube-2")
    assert await secrets.get(namespace, REF) == "sk-kube-1"  # cached
    clock.now = 61
    assert await secrets.get(namespace, REF) == "sk-kube-2"  # refreshed after the TTL
    await rotate(core, namespace, "sk-kube-3")
    secrets.invalidate(namespace, REF)  # the provider said 401
    assert await secrets.get(namespace, REF) == "sk-kube-3"


async def test_missing_kube_secret_or_key_is_a_clear_error(kube_api: Any) -> None:
    core, namespace = kube_api
    secrets = KubeSecrets(core)
    raised = await failure(secrets.get(namespace, SecretKeyRef(name="other", key="k")))
    assert raised.code is ErrorCode.UNAVAILABLE
    assert f"{namespace}/other[k]" in raised.message
    assert "404" in raised.message
    no_key = await failure(secrets.get(namespace, SecretKeyRef(name="openai-creds", key="absent")))
    assert "no such key" in no_key.message


def test_redaction_scrubs_registered_values_from_any_record(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    register("sk-very-secret-abc123")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("anything.at.all").info("calling with key %s now", "sk-very-secret-abc123")
    assert "sk-very-secret-abc123" not in caplog.text
    assert "calling with key *** now" in caplog.text
    assert redact("Bearer sk-very-secret-abc123") == "Bearer ***"


async def test_no_key_reaches_the_logs_even_at_debug(
    openai_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    install_redaction()
    key = await LocalSecrets({env_name(REF): openai_server.key}).get("", REF)
    caplog.set_level(logging.DEBUG)
    adapter = OpenAIAdapter(
        provider="openai", model="m", base_url=openai_server.url + "/v1", api_key=key, timeout_seconds=5
    )
    await adapter.chat({"model": "x", "messages": [{"role": "user", "content": "hi"}]})
    with pytest.raises(UpstreamError):  # a failure path logs too
        await OpenAIAdapter(
            provider="openai", model="m", base_url="http://127.0.0.1:9/v1", api_key=key, timeout_seconds=1
        ).chat({"model": "x", "messages": [{"role": "user", "content": "hi"}]})
    logging.getLogger("test").debug("headers: %s", {"Authorization": f"Bearer {key}"})
    assert caplog.records  # the SDK and httpx did log at debug
    assert key not in caplog.text
    assert all(key not in str(record.__dict__) for record in caplog.records)
