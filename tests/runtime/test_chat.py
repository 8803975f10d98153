"""Chat prompts on the real models: SmolLM2's own template answers questions, and messages a model
cannot take are refused with a 400 instead of being dropped from the prompt."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

pytestmark = pytest.mark.slow

# Questions SmolLM2-135M-Instruct (Q4_1) answers right with greedy decoding, given the local example's
# default system prompt ("Answer in English."): each was asked 5 times, 4 of them concurrently (batch
# composition changes the wording, not the word). Without that system prompt the model answers
# "What is the capital of France?" and the largest planet in French or wrongly.
FACTS = [
    ("What is the capital of France?", "Paris"),
    ("Tell me the capital of France.", "Paris"),
    ("What is the largest planet in the solar system?", "Jupiter"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Germany?", "Berlin"),
    ("What is the capital of the United Kingdom?", "London"),
    ("What is the chemical symbol for water?", "H2O"),
    ("Which planet is known as the Red Planet?", "Mars"),
]


def ask(base: str, question: str) -> str:
    client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="smollm2-135m",
        temperature=0,
        max_tokens=48,
        messages=[{"role": "user", "content": question}],
    )
    return reply.choices[0].message.content or ""


@pytest.mark.parametrize(("question", "word"), FACTS)
def test_the_default_chat_model_answers_factual_questions(
    chat_runtime_url: str, question: str, word: str
) -> None:
    assert word in ask(chat_runtime_url, question)


def test_the_default_system_prompt_gives_way_to_the_requests_own(chat_runtime_url: str) -> None:
    question = "What is the capital of France?"
    body = {"temperature": 0, "max_tokens": 24}
    own = [{"role": "system", "content": "Answer in English."}, {"role": "user", "content": question}]
    explicit = httpx.post(
        chat_runtime_url + "/v1/chat/completions", json={**body, "messages": own}, timeout=120
    )
    implicit = httpx.post(
        chat_runtime_url + "/v1/chat/completions",
        json={**body, "messages": [{"role": "user", "content": question}]},
        timeout=120,
    )
    assert implicit.json()["choices"][0]["message"] == explicit.json()["choices"][0]["message"]
    other = [{"role": "system", "content": "Réponds en français."}, {"role": "user", "content": question}]
    replaced = httpx.post(
        chat_runtime_url + "/v1/chat/completions", json={**body, "messages": other}, timeout=120
    )
    assert replaced.json()["choices"][0]["message"] != explicit.json()["choices"][0]["message"], (
        "a request's own system message replaces the default"
    )


def test_content_parts_read_as_the_same_text(chat_runtime_url: str) -> None:
    question = "Tell me the capital of France."
    parts = [{"type": "text", "text": "Tell me the capital "}, {"type": "text", "text": "of France."}]
    body = {"temperature": 0, "max_tokens": 24}
    as_string = httpx.post(
        chat_runtime_url + "/v1/chat/completions",
        json={**body, "messages": [{"role": "user", "content": question}]},
        timeout=120,
    )
    as_parts = httpx.post(
        chat_runtime_url + "/v1/chat/completions",
        json={**body, "messages": [{"role": "user", "content": parts}]},
        timeout=120,
    )
    assert as_parts.status_code == 200, as_parts.text
    assert as_parts.json()["choices"][0]["message"] == as_string.json()["choices"][0]["message"]


def test_a_tool_call_in_the_history_reaches_a_template_without_tool_syntax(chat_runtime_url: str) -> None:
    messages = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 24 degrees."},
    ]
    reply = httpx.post(
        chat_runtime_url + "/v1/chat/completions",
        json={"messages": messages, "temperature": 0, "max_tokens": 16},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"]


IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


@pytest.mark.parametrize(
    ("message", "code", "words"),
    [
        (
            {"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE]},
            "model_not_multimodal",
            "image_url part, but this model reads text only",
        ),
        ({"role": "narrator", "content": "Once upon a time"}, None, "role must be one of"),
        ({"content": "no role"}, None, "role must be one of"),
        ({"role": "user", "content": "hi", "name": "alice"}, None, "name is not supported on a user message"),
        (
            {
                "role": "user",
                "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}],
            },
            None,
            "content parts of type 'input_audio' are not supported",
        ),
        ({"role": "user", "content": {"text": "hi"}}, None, "content must be a string or a list"),
        ({"role": "user"}, None, "content is required"),
        ({"role": "tool", "content": "x", "tool_calls": []}, None, "tool_calls is not supported on a tool"),
    ],
)
@pytest.mark.parametrize("served", ["runtime_url", "chat_runtime_url"])
def test_messages_a_model_cannot_take_are_refused(
    request: pytest.FixtureRequest, served: str, message: dict[str, Any], code: str | None, words: str
) -> None:
    base = request.getfixturevalue(served)  # the fallback transcript (Gemma) and a real template (SmolLM2)
    messages = [{"role": "system", "content": "Be brief."}, message]
    response = httpx.post(base + "/v1/chat/completions", json={"messages": messages, "max_tokens": 4})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "messages"
    assert error["code"] == (code or "bad_request"), "every error names a code (docs/openapi.yaml)"
    assert "messages[1]" in error["message"]
    assert words in error["message"]


def test_with_default_system_adds_one_only_when_the_request_has_none() -> None:
    from inferflux.runtime.chat import with_default_system

    user = [{"role": "user", "content": "hi"}]
    assert with_default_system(user, "Answer in English.") == [
        {"role": "system", "content": "Answer in English."},
        *user,
    ]
    own = [{"role": "system", "content": "Be brief."}, *user]
    assert with_default_system(own, "Answer in English.") == own
    assert with_default_system(user, "") == user


def chat(base: str, **body: Any) -> httpx.Response:
    return httpx.post(base + "/v1/chat/completions", json=body, timeout=120)


def streamed_deltas(base: str, **body: Any) -> list[str]:
    """The content of each event of a streamed chat reply: where a stream can be cut."""
    deltas = []
    with httpx.stream("POST", base + "/v1/chat/completions", json={**body, "stream": True}, timeout=120) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"][0]["delta"]
                if delta.get("content"):
                    deltas.append(delta["content"])
    return deltas


def test_a_continued_final_message_goes_on_where_it_stopped(chat_runtime_url: str) -> None:
    question = [{"role": "user", "content": "Write two sentences about the sea."}]
    deltas = streamed_deltas(chat_runtime_url, messages=question, max_tokens=16, temperature=0)
    text = "".join(deltas)
    assert len(deltas) == 16
    for cut in (1, 5, 11):  # a stream breaks between events
        prefix = "".join(deltas[:cut])
        continued = chat(
            chat_runtime_url,
            messages=[*question, {"role": "assistant", "content": prefix}],
            continue_final_message=True,
            max_tokens_counts_final_message=True,
            max_tokens=16,
            temperature=0,
        ).json()
        choice = continued["choices"][0]
        assert prefix + choice["message"]["content"] == text, f"cut at {cut}"  # greedy: the same reply
        assert choice["finish_reason"] == "length"
        assert continued["usage"]["completion_tokens"] == 16 - cut  # the prefix's tokens counted


def test_a_continued_message_that_spent_its_limit_ends_at_once(chat_runtime_url: str) -> None:
    question = [{"role": "user", "content": "Write two sentences about the sea."}]
    answer = {"role": "assistant", "content": "The sea is wide and deep, and it covers most of the world."}
    reply = chat(
        chat_runtime_url,
        messages=[*question, answer],
        continue_final_message=True,
        max_tokens_counts_final_message=True,
        max_tokens=4,
    ).json()
    assert reply["choices"][0]["message"]["content"] == ""
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"]["completion_tokens"] == 0


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        ({"continue_final_message": "yes"}, "continue_final_message", "must be a boolean"),
        ({"max_tokens_counts_final_message": True}, "max_tokens_counts_final_message", "needs continue"),
        (
            {"continue_final_message": True, "response_format": {"type": "json_object"}},
            "response_format",
            "cannot be combined",
        ),
        (
            {"continue_final_message": True, "tools": [{"type": "function", "function": {"name": "f"}}]},
            "tools",
            "cannot be combined",
        ),
    ],
)
def test_continuation_fields_that_cannot_be_honoured_are_refused(
    runtime_url: str, extra: dict[str, Any], param: str, words: str
) -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    response = chat(runtime_url, messages=messages, max_tokens=4, **extra)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert words in response.json()["error"]["message"]


def test_only_a_final_assistant_message_with_text_can_be_continued() -> None:
    from inferflux.runtime.chat import split_final_assistant
    from inferflux.runtime.errors import APIError

    user = {"role": "user", "content": "Hi"}
    assert split_final_assistant([user, {"role": "assistant", "content": "Hel"}]) == ([user], "Hel")
    for messages in (
        [user],
        [{"role": "assistant", "content": "Hel"}],
        [user, {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f"}}]}],
    ):
        with pytest.raises(APIError):
            split_final_assistant(messages)
