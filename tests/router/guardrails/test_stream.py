"""The output filter on OpenAI SSE streams and whole answers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from inferflux.crds.guardrails import EntityType, PiiAction
from inferflux.router.errors import UpstreamError
from inferflux.router.guardrails.detect import Detector
from inferflux.router.guardrails.stream import BodyFilter, StreamFilter, filter_body
from inferflux.router.guardrails.verdicts import Check, Direction, Tally, Verdict
from inferflux.router.sse import iter_data

REDACT = dict.fromkeys(EntityType, PiiAction.REDACT)
DETECTOR = Detector(list(EntityType))


def chat_event(content: str | None, finish: str | None = None, **delta: Any) -> bytes:
    if content is not None:
        delta["content"] = content
    choice = {
        "index": 0,
        "delta": delta,
        "finish_reason": finish,
        "logprobs": {"content": [{"token": content}]},
    }
    document = {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}
    return b"data: " + orjson.dumps(document) + b"\n\n"


def run(filter_: StreamFilter, pieces: list[bytes]) -> bytes:
    return b"".join(filter_.feed(piece) for piece in pieces) + filter_.close()


async def events(raw: bytes) -> list[Any]:
    async def one() -> Any:
        yield raw

    return [payload if payload == b"[DONE]" else orjson.loads(payload) async for payload in iter_data(one())]


def text_of(documents: list[Any]) -> str:
    return "".join(
        choice.get("delta", {}).get("content") or choice.get("text") or ""
        for doc in documents
        if isinstance(doc, dict)
        for choice in doc.get("choices", [])
    )


async def test_an_email_spelt_over_three_chunks_is_redacted_in_the_stream() -> None:
    tally = Tally()
    raw = run(
        StreamFilter(DETECTOR, REDACT, tally),
        [
            chat_event("", role="assistant"),
            chat_event("Mail alice"),
            chat_event(".smith@exa"),
            chat_event("mple.com for help"),
            chat_event(None, finish="stop"),
            b"data: [DONE]\n\n",
        ],
    )
    assert b"alice" not in raw
    assert b"example" not in raw
    documents = await events(raw)
    assert text_of(documents) == "Mail [EMAIL] for help"
    assert documents[-1] == b"[DONE]"
    assert documents[-2]["choices"][0]["finish_reason"] == "stop"
    assert documents[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all("logprobs" not in choice for doc in documents[:-1] for choice in doc["choices"])
    assert tally.verdicts() == [Verdict(Direction.OUTPUT, Check.PII, "email", "redact", 1)]


async def test_events_split_anywhere_in_their_bytes_are_reassembled() -> None:
    whole = chat_event("card 4111 1111 ") + chat_event("1111 1111 ok", finish="stop") + b"data: [DONE]\n\n"
    pieces = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    raw = run(StreamFilter(DETECTOR, REDACT, Tally()), pieces)
    assert text_of(await events(raw)) == "card [CARD] ok"


@pytest.mark.parametrize("size", [1, 2, 3])
async def test_events_fed_a_few_bytes_at_a_time_pass_nothing_unfiltered(size: int) -> None:
    # A one-, two- or three-byte piece is not a whole event (a whole one ends its first blank line).
    whole = chat_event("key sk-proj-abcdefghijklmnopqrstuvwxyz123456 ", finish="stop") + b"data: [DONE]\n\n"
    pieces = [whole[i : i + size] for i in range(0, len(whole), size)]
    raw = run(StreamFilter(DETECTOR, REDACT, Tally()), pieces)
    assert b"sk-proj" not in raw
    assert text_of(await events(raw)) == "key [SECRET] "


async def test_held_text_is_released_before_done_when_no_finish_reason_came() -> None:
    raw = run(
        StreamFilter(DETECTOR, REDACT, Tally()), [chat_event("ends with 10.0.0.1"), b"data: [DONE]\n\n"]
    )
    documents = await events(raw)
    assert text_of(documents) == "ends with [IP_ADDRESS]"
    assert documents[-1] == b"[DONE]"
    assert documents[-2]["id"] == "c1"


async def test_held_text_is_released_when_the_stream_just_ends() -> None:
    raw = run(StreamFilter(DETECTOR, REDACT, Tally()), [chat_event("no done marker, word")])
    assert text_of(await events(raw)) == "no done marker, word"


def test_a_blocked_entity_stops_the_stream_and_nothing_passes_after() -> None:
    actions = {**REDACT, EntityType.CARD: PiiAction.BLOCK}
    tally = Tally()
    filter_ = StreamFilter(DETECTOR, actions, tally)
    sent = filter_.feed(chat_event("pay with 4111 1111 "))
    with pytest.raises(UpstreamError) as caught:
        filter_.feed(chat_event("1111 1111 now") + chat_event(" more"))
    assert caught.value.code == "guardrail_blocked"
    assert "card" in caught.value.message
    assert b"4111" not in sent
    assert filter_.feed(chat_event("after")) == b""
    assert filter_.close() == b""
    assert tally.verdicts() == [Verdict(Direction.OUTPUT, Check.PII, "card", "block", 1)]


def test_a_blocked_entity_still_held_at_the_end_is_refused_on_close() -> None:
    filter_ = StreamFilter(DETECTOR, {**REDACT, EntityType.EMAIL: PiiAction.BLOCK}, Tally())
    assert b"bob" not in filter_.feed(chat_event("write to bob@example.org"))
    with pytest.raises(UpstreamError):
        filter_.close()


def test_a_stream_answered_as_one_json_document_is_filtered_whole() -> None:
    answer = {"choices": [{"index": 0, "message": {"content": "at 10.0.0.1"}}]}
    filter_ = StreamFilter(DETECTOR, REDACT, Tally())
    raw = filter_.feed(orjson.dumps(answer)) + filter_.close()
    assert orjson.loads(raw)["choices"][0]["message"]["content"] == "at [IP_ADDRESS]"


def test_a_body_filter_releases_nothing_before_the_end() -> None:
    filter_ = BodyFilter(DETECTOR, REDACT, Tally())
    answer = orjson.dumps({"choices": [{"index": 0, "text": "card 4111 1111 1111 1111"}]})
    assert filter_.feed(answer[:20]) == b""
    assert filter_.feed(answer[20:]) == b""
    assert orjson.loads(filter_.close())["choices"][0]["text"] == "card [CARD]"


async def test_completions_streams_and_other_events_pass() -> None:
    def completion(text: str, finish: str | None = None) -> bytes:
        choice = {"index": 0, "text": text, "finish_reason": finish}
        return (
            b"data: " + orjson.dumps({"id": "x", "object": "text_completion", "choices": [choice]}) + b"\n\n"
        )

    usage = b'data: {"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}\n\n'
    raw = run(
        StreamFilter(DETECTOR, REDACT, Tally()),
        [
            b": keep-alive\n\n",
            completion("key sk-proj-"),
            completion("abcdefghij0123456789XYZ end", "stop"),
            usage,
        ],
    )
    assert raw.startswith(b": keep-alive\n\n")
    documents = await events(raw)
    assert text_of(documents) == "key [SECRET] end"
    assert documents[-1]["usage"]["completion_tokens"] == 4


async def test_two_choices_are_filtered_separately() -> None:
    def event(index: int, content: str) -> bytes:
        choice = {"index": index, "delta": {"content": content}, "finish_reason": None}
        return b"data: " + orjson.dumps({"id": "c", "choices": [choice]}) + b"\n\n"

    raw = run(
        StreamFilter(DETECTOR, REDACT, Tally()),
        [event(0, "a@b"), event(1, "x@y"), event(0, ".io done"), event(1, ".org done"), b"data: [DONE]\n\n"],
    )
    documents = await events(raw)
    by_index: dict[int, str] = {}
    for doc in documents[:-1]:
        for choice in doc["choices"]:
            by_index[choice["index"]] = by_index.get(choice["index"], "") + choice["delta"].get("content", "")
    assert by_index == {0: "[EMAIL] done", 1: "[EMAIL] done"}


def test_a_whole_answer_is_filtered() -> None:
    tally = Tally()
    answer = {
        "id": "a",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "IP 10.0.0.1"}}],
    }
    body = orjson.loads(filter_body(orjson.dumps(answer), DETECTOR, REDACT, tally))
    assert body["choices"][0]["message"]["content"] == "IP [IP_ADDRESS]"
    assert tally.verdicts() == [Verdict(Direction.OUTPUT, Check.PII, "ip_address", "redact", 1)]
    assert filter_body(b'{"data": [1, 2]}', DETECTOR, REDACT, tally) == b'{"data": [1, 2]}'


def test_a_whole_answer_with_a_blocked_entity_is_refused_without_its_value() -> None:
    actions = {**REDACT, EntityType.EMAIL: PiiAction.BLOCK}
    answer = {"choices": [{"index": 0, "text": "write to bob@example.org"}]}
    with pytest.raises(UpstreamError) as caught:
        filter_body(orjson.dumps(answer), DETECTOR, actions, Tally())
    assert caught.value.code == "guardrail_blocked"
    assert "bob" not in caught.value.message
    assert "email" in caught.value.message
