"""Line-by-line validation of batch input files (pure: no router, no Redis)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from inferflux.router.batch.validation import FileUnusable, Limits, validate

CHAT = "/v1/chat/completions"


def line(custom_id: str = "a", url: str = CHAT, **body: Any) -> bytes:
    document = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}
    return orjson.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": document})


def test_good_lines_become_tasks_numbered_as_an_editor_shows_them() -> None:
    tasks, errors = validate(line("a") + b"\n\n" + line("b") + b"\n", CHAT, ["m"], Limits())
    assert errors == []
    assert [(task.line, task.custom_id, task.model) for task in tasks] == [(1, "a", "m"), (3, "b", "m")]
    assert orjson.loads(tasks[0].body)["messages"][0]["content"] == "hi"


@pytest.mark.parametrize(
    ("raw", "code", "param"),
    [
        (b"[1, 2]", "invalid_request", None),
        (
            b'{"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {}}',
            "invalid_method",
            "method",
        ),
        (
            orjson.dumps({"custom_id": "", "method": "POST", "url": CHAT, "body": {}}),
            "invalid_custom_id",
            "custom_id",
        ),
        (
            orjson.dumps({"custom_id": "x" * 65, "method": "POST", "url": CHAT, "body": {}}),
            "invalid_custom_id",
            "custom_id",
        ),
        (orjson.dumps({"custom_id": "a", "method": "POST", "url": CHAT, "body": []}), "invalid_body", "body"),
        (line(model=""), "missing_required_parameter", "body.model"),
        (line(messages=[]), "missing_required_parameter", "body.messages"),
        (line(stream=True), "invalid_body", "body.stream"),
        (line(model="other"), "model_not_found", "body.model"),
        (line(url="/v1/completions"), "invalid_url", "url"),
    ],
)
def test_each_bad_line_is_named_with_its_line_number(raw: bytes, code: str, param: str | None) -> None:
    tasks, errors = validate(line("first") + b"\n" + raw, CHAT, ["m"], Limits())
    assert [task.custom_id for task in tasks] == ["first"]
    assert [(error.line, error.code, error.param) for error in errors] == [(2, code, param)]
    assert errors[0].document()["line"] == 2


def test_endpoint_specific_bodies() -> None:
    completion = orjson.dumps(
        {"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "x"}}
    )
    embedding = orjson.dumps(
        {"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {"model": "m", "messages": []}}
    )
    assert validate(completion, "/v1/completions", ["m"], Limits())[1] == []
    assert validate(embedding, "/v1/embeddings", ["m"], Limits())[1][0].param == "body.input"


def test_duplicates_and_any_model_when_none_are_listed() -> None:
    tasks, errors = validate(line("a", model="x") + b"\n" + line("a", model="x"), CHAT, None, Limits())
    assert len(tasks) == 1
    assert [(error.line, error.code) for error in errors] == [(2, "duplicate_custom_id")]


@pytest.mark.parametrize(
    ("content", "limits", "message"),
    [
        (b"\n \n", Limits(), "no requests"),
        (line("a") + b"\n" + line("b") + b"\n" + line("c"), Limits(max_lines=2), "more than 2 requests"),
        (line("a"), Limits(max_bytes=10), "over 10 bytes"),
    ],
)
def test_unusable_files_are_one_error(content: bytes, limits: Limits, message: str) -> None:
    with pytest.raises(FileUnusable, match=message):
        validate(content, CHAT, ["m"], limits)


def test_unknown_endpoint_is_refused() -> None:
    with pytest.raises(FileUnusable, match="endpoint"):
        validate(line(), "/v1/responses", ["m"], Limits())


def test_errors_reported_are_capped() -> None:
    tasks, errors = validate(b"\n".join([b"{"] * 500), CHAT, ["m"], Limits())
    assert tasks == []
    assert len(errors) == 100
    assert errors[-1].line == 100
