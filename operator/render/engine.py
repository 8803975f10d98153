"""The runtime container of each engine: image, command, arguments and environment from the spec.

``llamacpp`` runs the project's runtime image (``python -m inferflux.runtime``), configured by
``INFERFLUX_*`` variables; ``vllm`` runs the upstream OpenAI server image with its own flags.
``engineArgs.extraArgs`` pass through only when the engine is known to accept the flag and the
operator does not own it (model path, port, served name): anything else is a terminal spec error.
"""

from __future__ import annotations

from typing import Any, Final

from inferflux.crds.inferencemodel import Engine, InferenceModel
from inferflux.operator.render.labels import RUNTIME_PORT
from inferflux.operator.render.security import SCRATCH_DIR

ADMIN_TOKEN_DIR: Final = "/var/run/inferflux/admin"  # noqa: S105 - a path, not a secret
ADMIN_TOKEN_KEY: Final = "token"  # noqa: S105 - the key name in the Secret

# Flags of our llama.cpp runtime that the operator does not render itself. Its CLI
# (inferflux.runtime.settings) mirrors only the INFERFLUX_* settings, all rendered from the spec,
# so none pass through yet; a tuning flag the runtime learns goes here.
LLAMACPP_FLAGS: Final[frozenset[str]] = frozenset()
# vLLM engine flags (vllm serve --help, v0.8) that the operator does not render itself.
VLLM_FLAGS: Final = frozenset(
    {
        "--dtype",
        "--quantization",
        "--kv-cache-dtype",
        "--max-num-batched-tokens",
        "--enable-prefix-caching",
        "--no-enable-prefix-caching",
        "--enable-chunked-prefill",
        "--block-size",
        "--swap-space",
        "--cpu-offload-gb",
        "--enforce-eager",
        "--seed",
        "--tokenizer",
        "--tokenizer-mode",
        "--trust-remote-code",
        "--revision",
        "--chat-template",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "--reasoning-parser",
        "--guided-decoding-backend",
        "--max-logprobs",
        "--disable-log-requests",
        "--disable-log-stats",
        "--speculative-config",
        "--limit-mm-per-prompt",
        "--rope-scaling",
        "--generation-config",
    }
)
ENGINE_FLAGS: Final = {Engine.LLAMACPP: LLAMACPP_FLAGS, Engine.VLLM: VLLM_FLAGS}


class EngineOptionError(ValueError):
    """An ``engineArgs.extraArgs`` entry the engine would not accept."""


def unsupported_flags(engine: Engine, extra_args: list[str]) -> list[str]:
    """The flags in ``extra_args`` that ``engine`` does not accept (values are not flags)."""
    allowed = ENGINE_FLAGS.get(engine, frozenset())
    flags = [arg.split("=", 1)[0] for arg in extra_args if arg.startswith("-")]
    return [flag for flag in flags if flag not in allowed]


def check_extra_args(model: InferenceModel) -> None:
    """Raise EngineOptionError naming every flag of ``extraArgs`` the engine does not accept."""
    engine = Engine(model.spec.engine)
    bad = unsupported_flags(engine, model.spec.engine_args.extra_args)
    if bad:
        raise EngineOptionError(
            f"engineArgs.extraArgs: {', '.join(bad)} not accepted by engine {engine.value}"
            f" (allowed: {', '.join(sorted(ENGINE_FLAGS.get(engine, ()))) or 'none'})"
        )


def _env(pairs: dict[str, object | None]) -> list[dict[str, str]]:
    return [{"name": name, "value": str(value)} for name, value in pairs.items() if value is not None]


def llamacpp_container(model: InferenceModel, image: str, model_path: str) -> dict[str, Any]:
    """Our runtime on llama.cpp, configured through its environment."""
    args = model.spec.engine_args
    source = model.spec.source
    env = _env(
        {
            "INFERFLUX_MODEL_PATH": model_path,
            "INFERFLUX_SERVED_NAME": model.served_name,
            "INFERFLUX_PORT": RUNTIME_PORT,
            "INFERFLUX_CONTEXT_SIZE": args.context_size,
            "INFERFLUX_PARALLEL": args.parallel,
            "INFERFLUX_THREADS": args.threads,
            "INFERFLUX_BATCH_SIZE": args.batch_size,
            "INFERFLUX_GPU_LAYERS": args.gpu_layers,
            "INFERFLUX_DEFAULT_SYSTEM_PROMPT": args.default_system_prompt,
            "INFERFLUX_MODEL_SHA256": source.sha256 if source else None,
            "INFERFLUX_ADMIN_TOKEN_FILE": f"{ADMIN_TOKEN_DIR}/{ADMIN_TOKEN_KEY}",
            "INFERFLUX_HEADROOM_FACTOR": model.spec.rollout.memory_headroom_factor,
            "HOME": SCRATCH_DIR,
        }
    )
    return {
        "name": "runtime",
        "image": image,
        "command": ["python", "-m", "inferflux.runtime"],
        "args": list(args.extra_args),
        "env": env,
    }


def vllm_args(model: InferenceModel, model_path: str) -> list[str]:
    """Arguments of vLLM's OpenAI server, from the spec's engine settings."""
    args = model.spec.engine_args
    rendered = ["--model", model_path, "--served-model-name", model.served_name, "--port", str(RUNTIME_PORT)]
    numeric = {
        "--tensor-parallel-size": args.tensor_parallel_size,
        "--pipeline-parallel-size": args.pipeline_parallel_size,
        "--max-model-len": args.context_size,
        "--max-num-seqs": args.parallel,
        "--gpu-memory-utilization": args.gpu_memory_utilization,
    }
    for flag, value in numeric.items():
        if value is not None:
            rendered += [flag, str(value)]
    if args.expert_parallel:
        rendered.append("--enable-expert-parallel")
    return rendered + list(args.extra_args)


def gpu_count(model: InferenceModel) -> int:
    """GPUs one vLLM pod needs: tensor parallel times pipeline parallel size."""
    args = model.spec.engine_args
    return (args.tensor_parallel_size or 1) * (args.pipeline_parallel_size or 1)


def vllm_container(model: InferenceModel, image: str, model_path: str) -> dict[str, Any]:
    """The upstream vLLM OpenAI-compatible server (its image's entrypoint), with flags from the spec."""
    return {
        "name": "runtime",
        "image": image,
        "args": vllm_args(model, model_path),
        "env": _env({"HOME": SCRATCH_DIR, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}),
    }
