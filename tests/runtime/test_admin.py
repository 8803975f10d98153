"""The admin swap API: auth, refusals that leave model A serving, and a swap under load."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from inferflux.runtime.admin import EngineShape, Swapper
from inferflux.runtime.errors import APIError
from inferflux.runtime.integrity import manifest
from inferflux.runtime.memory import MemoryReading

from .conftest import NO_END_OF_GENERATION, admin_swap, start_runtime, stop_runtime, wait_for_metric

TOKEN = "s3cret-admin-token"


async def test_swap_refused_with_409_when_b_does_not_fit(tmp_path: Path) -> None:
    model_b = tmp_path / "b.gguf"
    model_b.write_bytes(b"x" * 1000)
    tight = MemoryReading(limit=2 << 30, used=(2 << 30) - (64 << 20), source="cgroup2")
    runtime = SimpleNamespace(memory=lambda: tight, headroom_factor=1.3)  # all a refusal reads
    swapper = Swapper(runtime, EngineShape(4096, 4, 2, 512), TOKEN)  # type: ignore[arg-type]
    with pytest.raises(APIError) as refused:
        await swapper.swap(model_b, "b", "")
    assert refused.value.status == 409
    assert refused.value.code == "insufficient_memory"
    assert "does not fit" in refused.value.message


async def test_a_pod_started_on_signed_weights_swaps_only_to_signed_weights(tmp_path: Path) -> None:
    model_b = tmp_path / "b.gguf"
    model_b.write_bytes(b"x" * 1000)
    digest = hashlib.sha256(model_b.read_bytes()).hexdigest()
    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "ed25519.pub"
    key_file.write_bytes(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    signature = base64.b64encode(key.sign(manifest(digest))).decode()
    tight = MemoryReading(limit=2 << 30, used=(2 << 30) - (64 << 20), source="cgroup2")
    runtime = SimpleNamespace(memory=lambda: tight, headroom_factor=1.3)
    swapper = Swapper(runtime, EngineShape(4096, 4, 2, 512), TOKEN, str(key_file))  # type: ignore[arg-type]
    with pytest.raises(APIError) as unsigned:
        await swapper.swap(model_b, "b", digest)
    assert (unsigned.value.status, unsigned.value.param) == (400, "signature")
    forged = base64.b64encode(Ed25519PrivateKey.generate().sign(manifest(digest))).decode()
    with pytest.raises(APIError) as bad:
        await swapper.swap(model_b, "b", digest, forged)
    assert (bad.value.status, bad.value.code) == (400, "model_rejected")
    assert "signature does not match" in bad.value.message
    with pytest.raises(APIError) as passed:  # a good signature gets as far as the memory guard
        await swapper.swap(model_b, "b", digest, signature)
    assert passed.value.status == 409


@pytest.fixture(scope="module")
def admin_runtime(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("admin")
    token_file = folder / "token"
    token_file.write_text(TOKEN + "\n")
    model_b = folder / "model-b.gguf"
    os.link(model_path, model_b)  # same weights under another name: a real second load, no copy
    base, process = start_runtime(
        model_path, INFERFLUX_ADMIN_TOKEN_FILE=str(token_file), INFERFLUX_PARALLEL="2"
    )
    yield base, model_b
    stop_runtime(process)


def swap(base: str, body: dict[str, Any], token: str | None = TOKEN) -> httpx.Response:
    return admin_swap(base, body, token)


def served(base: str) -> str:
    return str(httpx.get(base + "/v1/models").json()["data"][0]["id"])


@pytest.mark.slow
def test_admin_requires_the_token(admin_runtime: tuple[str, Path]) -> None:
    base, model_b = admin_runtime
    assert swap(base, {"model_path": str(model_b)}, token=None).status_code == 401
    response = swap(base, {"model_path": str(model_b)}, token="wrong")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert served(base) == "gemma3-270m"


@pytest.mark.slow
def test_bad_model_b_leaves_a_serving(admin_runtime: tuple[str, Path]) -> None:
    base, model_b = admin_runtime
    missing = swap(base, {"model_path": "/nonexistent/b.gguf"})
    assert missing.status_code == 400
    assert "not found" in missing.json()["error"]["message"]
    mismatch = swap(base, {"model_path": str(model_b), "sha256": "0" * 64})
    assert mismatch.status_code == 400
    assert "refusing" in mismatch.json()["error"]["message"]
    assert served(base) == "gemma3-270m"
    reply = httpx.post(base + "/v1/completions", json={"prompt": "Hi", "max_tokens": 2}, timeout=60)
    assert reply.status_code == 200


@pytest.mark.slow
def test_swap_under_load_drops_no_request(admin_runtime: tuple[str, Path]) -> None:
    base, model_b = admin_runtime
    results: list[dict[str, Any]] = []

    def long_request() -> None:
        payload = {"prompt": "A long story:", "max_tokens": 40, "logit_bias": NO_END_OF_GENERATION}
        results.append(httpx.post(base + "/v1/completions", json=payload, timeout=300).json())

    worker = threading.Thread(target=long_request)
    worker.start()
    # swap only once the request runs on A, or it could be served by B and drain nothing
    assert wait_for_metric(base, "inferflux_runtime_running_sequences", lambda value: value >= 1) >= 1
    response = swap(base, {"model_path": str(model_b), "served_name": "model-b"})
    worker.join()
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["served_name"], result["previous"], result["drained"]) == ("model-b", "gemma3-270m", True)
    assert 0 < result["switched_after_s"] <= result["drained_after_s"]
    assert results[0]["usage"]["completion_tokens"] == 40  # the request on A finished whole
    assert results[0]["model"] == "gemma3-270m"
    assert served(base) == "model-b"
    after = httpx.post(
        base + "/v1/completions",
        json={"prompt": "Hi", "max_tokens": 3, "logit_bias": NO_END_OF_GENERATION},
        timeout=60,
    ).json()
    assert after["model"] == "model-b"
    assert after["usage"]["completion_tokens"] == 3
