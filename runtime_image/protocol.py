"""OpenAI request fields read into what the engine needs, and the response and chunk bodies.

Validation is hand-written over plain dicts: it is on the hot path and needs only a few checks,
each failing with a 400 that names the field.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from inferflux.runtime.engine import Finish
from inferflux.runtime.errors import bad_request
from inferflux.runtime.sampling import DEFAULT_MIN_P, DEFAULT_TOP_K, SamplingParams


def number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    """A numeric field within ``[low, high]``, or ``default`` when absent or null."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise bad_request(f"{name} must be a number between {low} and {high}", name)
    return float(value)


def max_tokens(body: dict[str, Any]) -> int | None:
    """``max_completion_tokens`` or ``max_tokens``, a positive integer, or None for no limit."""
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request("max_tokens must be a positive integer", "max_tokens")
    return value


def stop_strings(body: dict[str, Any]) -> tuple[str, ...]:
    """The ``stop`` field as a tuple of at most four strings."""
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) for s in stops):
        raise bad_request("stop must be a string or a list of up to 4 strings", "stop")
    return tuple(stops)


def sampling_params(body: dict[str, Any], grammar: str | None) -> SamplingParams:
    """Sampling settings from the OpenAI fields (plus llama.cpp's ``top_k``/``min_p``/``repeat_penalty``)."""
    bias = body.get("logit_bias") or {}
    if not isinstance(bias, dict):
        raise bad_request("logit_bias must map token ids to numbers", "logit_bias")
    try:
        logit_bias = {int(token): float(value) for token, value in bias.items()}
    except (TypeError, ValueError) as exc:
        raise bad_request("logit_bias must map token ids to numbers", "logit_bias") from exc
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad_request("seed must be an integer", "seed")
    return SamplingParams(
        temperature=number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=number(body, "top_p", 1.0, 0.0, 1.0),
        top_k=int(number(body, "top_k", DEFAULT_TOP_K, 0, 1 << 20)),
        min_p=number(body, "min_p", DEFAULT_MIN_P, 0.0, 1.0),
        presence_penalty=number(body, "presence_penalty", 0.0, -2.0, 2.0),
        frequency_penalty=number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        repeat_penalty=number(body, "repeat_penalty", 1.0, 0.0, 10.0),
        seed=seed,
        logit_bias=logit_bias,
        grammar=grammar,
    )


def usage(finish: Finish) -> dict[str, Any]:
    """OpenAI's ``usage`` object, with prefix-cache hits as ``cached_tokens``."""
    return {
        "prompt_tokens": finish.prompt_tokens,
        "completion_tokens": finish.completion_tokens,
        "total_tokens": finish.prompt_tokens + finish.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": finish.cached_tokens},
    }


def envelope(kind: str, request_id: str, model: str, choices: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The fields every completion, chat completion and chunk shares."""
    return {
        "id": request_id,
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": list(choices),
    }
