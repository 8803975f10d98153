"""Runtime settings: one frozen record read from the environment, overridden by CLI flags.

The operator renders the environment (``INFERFLUX_*``); each flag mirrors one variable, so a
person running the runtime by hand uses the same names (``--context-size`` for
``INFERFLUX_CONTEXT_SIZE``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from inferflux.runtime.memory import DEFAULT_HEADROOM_FACTOR

ENV_PREFIX = "INFERFLUX_"


@dataclass(frozen=True)
class Settings:
    """Everything the runtime needs to load a model and serve it."""

    model_path: Path
    served_name: str = ""
    host: str = "0.0.0.0"  # noqa: S104 - a pod serves on its pod IP
    port: int = 8080
    context_size: int = 4096
    parallel: int = 8
    threads: int = 0
    batch_size: int = 512
    gpu_layers: int = 0
    model_sha256: str = ""
    model_signature: str = ""  # base64 Ed25519 signature over ``sha256:<model_sha256>``
    model_public_key_file: str = ""  # the trusted Ed25519 public key (raw, base64 or PEM)
    admin_token_file: str = ""
    memory_limit: int = 0  # bytes this process may use, below the pod's limit; 0: the pod's limit
    headroom_factor: float = DEFAULT_HEADROOM_FACTOR  # an in-place swap needs this x the new model free
    default_system_prompt: str = ""  # put first in a chat request that brings no system message
    log_format: str = "json"  # json: one object per line with request_id, trace_id, span_id; or text

    @property
    def model_id(self) -> str:
        """The model id clients send and see: the served name, else the file's stem."""
        return self.served_name or self.model_path.stem

    @property
    def effective_threads(self) -> int:
        """Decode threads: the setting, or every CPU this process may run on."""
        return self.threads if self.threads > 0 else len(os.sched_getaffinity(0))


_NUMBERS: dict[str, type[int] | type[float]] = {"int": int, "float": float}  # field type -> parser


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``environ`` (default: the process environment), overridden by ``argv`` flags.

    Raises ``SystemExit`` with one readable line on a bad or missing value (argparse's behaviour).
    """
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="python -m inferflux.runtime", description=__doc__)
    for field in fields(Settings):
        env_name = ENV_PREFIX + field.name.upper()
        kind = _NUMBERS.get(str(field.type), str)
        parser.add_argument(
            _flag(field.name),
            dest=field.name,
            type=kind,
            default=environ.get(env_name),
            help=f"(env {env_name})",
        )
    args = vars(parser.parse_args(argv))
    if not args["model_path"]:
        parser.error("a model is required: set INFERFLUX_MODEL_PATH or pass --model-path")
    values = {name: value for name, value in args.items() if value is not None}
    try:
        typed = {
            f.name: _NUMBERS[str(f.type)](values[f.name])
            for f in fields(Settings)
            if str(f.type) in _NUMBERS and f.name in values
        }
    except ValueError as exc:
        parser.error(f"not a number: {exc}")
    values.update(typed)
    values["model_path"] = Path(values["model_path"])
    settings = Settings(**values)
    if settings.parallel < 1 or settings.context_size < 16 or settings.batch_size < 1:
        parser.error("parallel and batch size must be >= 1, and the context size >= 16")
    if not 1.0 <= settings.headroom_factor <= 10.0:
        parser.error("the headroom factor must be between 1 and 10")
    if settings.log_format not in ("json", "text"):
        parser.error("the log format must be json or text")
    if settings.memory_limit < 0:
        parser.error("the memory limit must be a number of bytes, or 0 for the pod's limit")
    return settings
