"""API keys: local env/file sources, Kubernetes Secrets (cached, re-read), and redaction from every log."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
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


def test_env_name_is_documented_shape() -> None:
    assert env_name(REF) == "INFERFLUX_PROVIDER_KEY_OPENAI_CREDS_API_KEY"


async def test_local_keys_from_env_then_directory(tmp_path: Path) -> None:
    assert await LocalSecrets({env_name(REF): "sk-from-env-1"}).get("", REF) == "sk-from-env-1"
    (tmp_path / "openai-creds").mkdir()
    (tmp_path / "openai-creds" / "api.key").write_text("sk-from-file-2\n")
    source = LocalSecrets({"INFERFLUX_PROVIDER_KEYS_DIR": str(tmp_path)})
    assert await source.get("", REF) == "sk-from-file-2"


async def test_missing_local_key_is_unavailable_and_names_the_variable() -> None:
    with pytest.raises(UpstreamError) as raised:
        await LocalSecrets({}).get("team-a", REF)
    assert raised.value.code is ErrorCode.UNAVAILABLE
    assert "INFERFLUX_PROVIDER_KEY_OPENAI_CREDS_API_KEY" in raised.value.message


class FakeApiServer:
    """The one Kubernetes API call the router makes: GET a Secret (fake API server, real client)."""

    def __init__(self) -> None:
        self.value = "sk-kube-value-1"
        self.reads = 0

    def app(self) -> web.Application:
        async def read(request: web.Request) -> web.Response:
            self.reads += 1
            namespace, name = request.match_info["namespace"], request.match_info["name"]
            if name != "openai-creds":
                status = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "NotFound",
                    "code": 404,
                }
                return web.json_response(status, status=404)
            data = {"api.key": base64.b64encode(self.value.encode()).decode()}
            meta = {"name": name, "namespace": namespace, "resourceVersion": str(self.reads)}
            return web.json_response({"kind": "Secret", "apiVersion": "v1", "metadata": meta, "data": data})

        application = web.Application()
        application.router.add_get("/api/v1/namespaces/{namespace}/secrets/{name}", read)
        return application


@pytest.fixture
async def kube_api() -> AsyncIterator[tuple[FakeApiServer, Any]]:
    server = FakeApiServer()
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    configuration = kube.Configuration(host=f"http://127.0.0.1:{runner.addresses[0][1]}")
    api_client = kube.ApiClient(configuration)
    yield server, kube.CoreV1Api(api_client)
    await api_client.close()
    await runner.cleanup()


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_kube_secret_is_cached_refreshed_and_invalidated(kube_api: Any) -> None:
    server, core = kube_api
    clock = Clock()
    secrets = KubeSecrets(core, ttl_seconds=60, clock=clock)
    assert await secrets.get("team-a", REF) == "sk-kube-value-1"
    server.value = "sk-kube-value-2"  # rotated
    assert await secrets.get("team-a", REF) == "sk-kube-value-1"  # cached
    assert server.reads == 1
    clock.now = 61
    assert await secrets.get("team-a", REF) == "sk-kube-value-2"  # refreshed after the TTL
    server.value = "sk-kube-value-3"
    secrets.invalidate("team-a", REF)  # the provider said 401
    assert await secrets.get("team-a", REF) == "sk-kube-value-3"
    assert server.reads == 3


async def test_missing_kube_secret_or_key_is_a_clear_error(kube_api: Any) -> None:
    _, core = kube_api
    secrets = KubeSecrets(core)
    with pytest.raises(UpstreamError) as raised:
        await secrets.get("team-a", SecretKeyRef(name="other", key="k"))
    assert raised.value.code is ErrorCode.UNAVAILABLE
    assert "team-a/other[k]" in raised.value.message
    assert "404" in raised.value.message
    with pytest.raises(UpstreamError):
        await secrets.get("team-a", SecretKeyRef(name="openai-creds", key="absent"))


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
