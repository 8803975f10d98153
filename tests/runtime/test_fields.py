"""Request fields on the real runtime: each is honoured, or refused with a 400 that names it."""

from __future__ import annotations

import base64
import struct
from typing import Any

import httpx
import openai
import pytest

pytestmark = pytest.mark.slow

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
MESSAGES = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    ("path", "fields", "param", "words"),
    [
        (CHAT, {"n": 2}, "n", "n must be 1"),
        (COMPLETIONS, {"n": 3}, "n", "n must be 1"),
        (COMPLETIONS, {"best_of": 2}, "best_of", "best_of must be 1"),
        (CHAT, {"logprobs": True}, "logprobs", "logprobs are not supported"),
        (CHAT, {"top_logprobs": 2}, "top_logprobs", "top_logprobs are not supported"),
        (COMPLETIONS, {"logprobs": 0}, "logprobs", "logprobs are not supported"),
        (COMPLETIONS, {"echo": True}, "echo", "echo is not supported"),
        (COMPLETIONS, {"suffix": "end."}, "suffix", "suffix (fill-in-the-middle) is not supported"),
        (CHAT, {"modalities": ["text", "audio"]}, "modalities", "modalities is not supported"),
        (CHAT, {"reasoning_effort": "low"}, "reasoning_effort", "reasoning_effort is not supported"),
        (CHAT, {"functions": [{"name": "f"}]}, "functions", "functions is not supported"),
        (CHAT, {"max_tokenz": 5}, "max_tokenz", "max_tokenz is not supported"),
        (COMPLETIONS, {"tools": []}, "tools", "tools is not supported"),
        (COMPLETIONS, {"max_completion_tokens": 4}, "max_completion_tokens", "is not supported"),
        (CHAT, {"stream_options": {"include_obfuscation": True}}, "stream_options", "include_obfuscation"),
        (EMBEDDINGS, {"dimensions": 64}, "dimensions", "dimensions is not supported"),
        (EMBEDDINGS, {"encoding_format": "int8"}, "encoding_format", "float or base64"),
    ],
)
def test_a_field_the_runtime_does_not_honour_is_refused(
    runtime_url: str, path: str, fields: dict[str, Any], param: str, words: str
) -> None:
    base = {CHAT: {"messages": MESSAGES}, COMPLETIONS: {"prompt": "Hi"}, EMBEDDINGS: {"input": "Hi"}}[path]
    response = httpx.post(
        runtime_url + path,
        json={**base, "max_tokens": 4, **fields} if path != EMBEDDINGS else {**base, **fields},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert words in error["message"]


def test_no_op_values_of_refused_fields_are_accepted(runtime_url: str) -> None:
    chat = httpx.post(
        runtime_url + CHAT,
        json={"messages": MESSAGES, "max_tokens": 2, "n": 1, "logprobs": False, "user": "u-1",
              "parallel_tool_calls": False, "model": "gemma3-270m"},
        timeout=60,
    )  # fmt: skip
    assert chat.status_code == 200, chat.text
    assert len(chat.json()["choices"]) == 1
    completion = httpx.post(
        runtime_url + COMPLETIONS,
        json={"prompt": "Hi", "max_tokens": 2, "n": 1, "best_of": 1, "echo": False, "logprobs": None,
              "suffix": None},
        timeout=60,
    )  # fmt: skip
    assert completion.status_code == 200, completion.text


def test_base64_embeddings_are_the_float_vectors(runtime_url: str) -> None:
    floats = httpx.post(runtime_url + EMBEDDINGS, json={"input": "a cat"}).json()["data"][0]["embedding"]
    encoded = httpx.post(runtime_url + EMBEDDINGS, json={"input": "a cat", "encoding_format": "base64"})
    raw = base64.b64decode(encoded.json()["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert len(decoded) == len(floats) == 640
    assert max(abs(a - b) for a, b in zip(decoded, floats, strict=True)) < 1e-6
    # the openai SDK asks for base64 unless told otherwise, and decodes it
    sdk = openai.OpenAI(base_url=runtime_url + "/v1", api_key="unused").embeddings.create(
        model="gemma3-270m", input="a cat"
    )
    assert max(abs(a - b) for a, b in zip(sdk.data[0].embedding, floats, strict=True)) < 1e-6
