"""Engine containers and the pass-through of engine options."""

from __future__ import annotations

import pytest

from inferflux.crds import Engine
from inferflux.operator.render.engine import (
    EngineOptionError,
    check_extra_args,
    llamacpp_container,
    unsupported_flags,
    vllm_args,
    vllm_container,
)
from tests.operator.conftest import ModelFactory


def env_of(container: dict[str, object]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}  # type: ignore[attr-defined]


def test_llamacpp_is_configured_through_the_runtime_contract(model: ModelFactory) -> None:
    m = model(spec={"engineArgs": {"batchSize": 256, "gpuLayers": 0, "extraArgs": ["--flash-attn"]}})
    container = llamacpp_container(m, "img:1", "/models/m.gguf")
    assert container["image"] == "img:1"
    assert container["command"] == ["python", "-m", "inferflux.runtime"]
    assert container["args"] == ["--flash-attn"]
    assert env_of(container) == {
        "INFERFLUX_MODEL_PATH": "/models/m.gguf",
        "INFERFLUX_SERVED_NAME": "gemma3-270m",
        "INFERFLUX_PORT": "8080",
        "INFERFLUX_CONTEXT_SIZE": "4096",
        "INFERFLUX_PARALLEL": "8",
        "INFERFLUX_THREADS": "2",
        "INFERFLUX_BATCH_SIZE": "256",
        "INFERFLUX_GPU_LAYERS": "0",
        "INFERFLUX_MODEL_SHA256": m.spec.source.sha256 if m.spec.source else "",
        "INFERFLUX_ADMIN_TOKEN_FILE": "/var/run/inferflux/admin/token",
        "INFERFLUX_HEADROOM_FACTOR": "1.3",
        "HOME": "/tmp",
    }


def test_unset_engine_args_are_left_to_the_runtime_defaults(model: ModelFactory) -> None:
    container = llamacpp_container(model(spec={"engineArgs": None}), "img", "/m")
    assert (
        not {"INFERFLUX_CONTEXT_SIZE", "INFERFLUX_PARALLEL", "INFERFLUX_THREADS"} & env_of(container).keys()
    )


def test_vllm_args_carry_every_knob(model: ModelFactory) -> None:
    m = model(
        "vllm-model",
        spec={
            "engineArgs": {"pipelineParallelSize": 2, "expertParallel": True, "extraArgs": ["--dtype=half"]}
        },
    )
    assert vllm_args(m, "/models/llama") == [
        "--model", "/models/llama",
        "--served-model-name", "meta-llama/Llama-3.1-8B-Instruct",
        "--port", "8080",
        "--tensor-parallel-size", "2",
        "--pipeline-parallel-size", "2",
        "--max-model-len", "8192",
        "--max-num-seqs", "64",
        "--gpu-memory-utilization", "0.9",
        "--enable-expert-parallel",
        "--dtype=half",
    ]  # fmt: skip
    container = vllm_container(m, "vllm:1", "/models/llama")
    assert container["image"] == "vllm:1"
    assert "command" not in container  # the image's own entrypoint is the OpenAI server


def test_extra_args_values_are_not_flags() -> None:
    assert unsupported_flags(Engine.VLLM, ["--dtype", "half", "--seed=3"]) == []
    assert unsupported_flags(Engine.VLLM, ["--port", "9000", "--model=x"]) == ["--port", "--model"]
    assert unsupported_flags(Engine.LLAMACPP, ["--tensor-parallel-size", "2"]) == ["--tensor-parallel-size"]


def test_unsupported_flags_are_a_readable_error(model: ModelFactory) -> None:
    check_extra_args(model("vllm-model", spec={"engineArgs": {"extraArgs": ["--dtype", "half"]}}))
    with pytest.raises(
        EngineOptionError, match=r"--bogus not accepted by engine vllm \(allowed: --block-size, "
    ):
        check_extra_args(model("vllm-model", spec={"engineArgs": {"extraArgs": ["--seed=1", "--bogus"]}}))
    # The runtime's CLI only mirrors settings the operator renders, so nothing passes through.
    with pytest.raises(EngineOptionError, match=r"--mlock not accepted by engine llamacpp \(allowed: none\)"):
        check_extra_args(model(spec={"engineArgs": {"extraArgs": ["--mlock"]}}))


def test_a_default_system_prompt_reaches_the_llamacpp_runtime(model: ModelFactory) -> None:
    m = model(spec={"engineArgs": {"defaultSystemPrompt": "Answer in English."}})
    assert (
        env_of(llamacpp_container(m, "img", "/m"))["INFERFLUX_DEFAULT_SYSTEM_PROMPT"] == "Answer in English."
    )
