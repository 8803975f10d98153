"""Which OpenAI request fields each endpoint honours; any other field is refused with a 400 naming it.

A field the runtime would silently ignore changes the answer a client expects (``n: 3`` returning one
choice, ``logprobs`` returning none), so every field is either implemented or refused: a client
learns at once what this runtime does not do. A field that some clients always send may be accepted
in its no-op value only (``n: 1``, ``logprobs: false``, ``echo: false``). docs/runtime.md ("Request
fields") lists both sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inferflux.runtime.errors import bad_request

# Fields every generation endpoint implements. ``model`` names the served model (the router routes
# on it; the reply carries the runtime's served name). ``user`` is OpenAI's end-user label: it
# never changes a reply, and the runtime keeps no per-user state or logs.
_SAMPLING = frozenset(
    {
        "model",
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "logit_bias",
        "response_format",
        "user",
    }
)
CHAT_FIELDS = _SAMPLING | {
    "messages",
    "max_completion_tokens",
    "tools",
    "tool_choice",
    # A reply holds at most one tool call, which either value allows.
    "parallel_tool_calls",
    # vLLM's name: go on writing the final assistant message (chat.split_final_assistant).
    "continue_final_message",
    # InferFlux's own: that message's tokens count toward max_tokens (a failed-over stream).
    "max_tokens_counts_final_message",
}
COMPLETION_FIELDS = _SAMPLING | {"prompt"}
EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "user"})

# Fields accepted only with the value that asks for nothing beyond what the runtime does.
_NO_OP_VALUES: Mapping[str, tuple[object, str]] = {
    "n": (1, "n must be 1: the runtime returns one choice per request; send n requests instead"),
    "best_of": (1, "best_of must be 1: the runtime does not rank candidate completions"),
    "logprobs": (None, "logprobs are not supported by this runtime"),
    "top_logprobs": (None, "top_logprobs are not supported by this runtime"),
    "echo": (False, "echo is not supported by this runtime"),
    "suffix": (None, "suffix (fill-in-the-middle) is not supported by this runtime"),
}
_STREAM_OPTIONS = frozenset({"include_usage"})


def check_fields(body: Mapping[str, Any], supported: frozenset[str]) -> None:
    """Refuse, with a 400 naming it, the first field of ``body`` that the endpoint does not honour."""
    for name, value in body.items():
        if name in supported:
            continue
        if name in _NO_OP_VALUES:
            allowed, message = _NO_OP_VALUES[name]
            if value is None or value == allowed or (allowed is None and value is False):
                continue
            raise bad_request(message, name)
        raise bad_request(f"{name} is not supported by this runtime", name)
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise bad_request("stream_options must be an object", "stream_options")
        for name in options:
            if name not in _STREAM_OPTIONS:
                raise bad_request(f"stream_options.{name} is not supported by this runtime", "stream_options")
