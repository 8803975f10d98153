"""Line-by-line validation of a batch input file, before any task is queued.

A batch input file is JSONL: one request per line, ``{"custom_id", "method": "POST", "url", "body"}``.
`validate` reads every line and returns either the tasks or every problem found, each with its
1-based line number, in the shape of OpenAI's ``batch.errors.data``. Problems that make the file as
a whole unusable (empty, too large, too many lines) raise `FileUnusable` instead: one readable error.

Pure: the caller passes the models it serves and the limits, so this is tested without a router.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson

ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
# The field each endpoint cannot do without, and the type it must have.
_REQUIRED: dict[str, tuple[str, tuple[type, ...]]] = {
    "/v1/chat/completions": ("messages", (list,)),
    "/v1/completions": ("prompt", (str, list)),
    "/v1/embeddings": ("input", (str, list)),
}
CUSTOM_ID_MAX = 64  # it becomes part of the request id (batch id + custom_id, at most 128 bytes)
ERRORS_KEPT = 100  # a file with thousands of bad lines reports the first ones


class FileUnusable(ValueError):
    """The file cannot be a batch at all; the message is the one line the client sees."""


@dataclass(frozen=True, slots=True)
class LineError:
    """One bad line, as OpenAI reports it in ``batch.errors.data``."""

    line: int
    code: str
    message: str
    param: str | None = None

    def document(self) -> dict[str, Any]:
        """OpenAI's ``BatchError`` object."""
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line}


@dataclass(frozen=True, slots=True)
class Task:
    """One valid line: what to send, where, under which id."""

    line: int
    custom_id: str
    model: str
    body: bytes  # the request body, re-encoded JSON


@dataclass(frozen=True, slots=True)
class Limits:
    """How big a batch may be."""

    max_bytes: int = 100 * 1024 * 1024
    max_lines: int = 50_000


def _printable_id(value: str) -> bool:
    return 0 < len(value) <= CUSTOM_ID_MAX and value.isascii() and value.isprintable()


def check_line(
    number: int, raw: bytes, endpoint: str, models: Collection[str] | None
) -> tuple[Task | None, LineError | None]:
    """One line as a task, or the reason it is not one. ``models`` None: any model is accepted."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, LineError(number, "invalid_json", f"line {number} is not valid JSON")
    if not isinstance(document, dict):
        return None, LineError(number, "invalid_request", f"line {number} is not a JSON object")
    custom_id = document.get("custom_id")
    if not isinstance(custom_id, str) or not _printable_id(custom_id):
        message = f"custom_id must be printable ASCII, 1 to {CUSTOM_ID_MAX} characters"
        return None, LineError(number, "invalid_custom_id", message, "custom_id")
    if document.get("method") != "POST":
        return None, LineError(number, "invalid_method", "method must be POST", "method")
    if document.get("url") != endpoint:
        message = f"url must be the batch's endpoint {endpoint}"
        return None, LineError(number, "invalid_url", message, "url")
    body = document.get("body")
    if not isinstance(body, dict):
        return None, LineError(number, "invalid_body", "body must be a JSON object", "body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return None, LineError(number, "missing_required_parameter", "body.model is required", "body.model")
    if models is not None and model not in models:
        return None, LineError(number, "model_not_found", f"model {model!r} is not served", "body.model")
    field, kinds = _REQUIRED[endpoint]
    if not isinstance(body.get(field), kinds) or not body[field]:
        message = f"body.{field} is required by {endpoint}"
        return None, LineError(number, "missing_required_parameter", message, f"body.{field}")
    if body.get("stream") is True:
        return None, LineError(number, "invalid_body", "a batch request cannot stream", "body.stream")
    return Task(number, custom_id, model, orjson.dumps(body)), None


def validate(
    content: bytes, endpoint: str, models: Collection[str] | None, limits: Limits
) -> tuple[list[Task], list[LineError]]:
    """Every line of ``content`` checked: the tasks, and the errors (at most `ERRORS_KEPT`).

    Blank lines are skipped but counted, so that line numbers match what an editor shows.
    """
    if endpoint not in ENDPOINTS:
        raise FileUnusable(f"endpoint must be one of {', '.join(ENDPOINTS)}")
    if len(content) > limits.max_bytes:
        raise FileUnusable(f"the input file is over {limits.max_bytes} bytes")
    tasks: list[Task] = []
    errors: list[LineError] = []
    seen: set[str] = set()
    lines = content.split(b"\n")
    if sum(1 for raw in lines if raw.strip()) > limits.max_lines:
        raise FileUnusable(f"the input file has more than {limits.max_lines} requests")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        task, error = check_line(number, raw, endpoint, models)
        if task is not None and task.custom_id in seen:
            task, error = (
                None,
                LineError(number, "duplicate_custom_id", "custom_id is used twice", "custom_id"),
            )
        if task is not None:
            seen.add(task.custom_id)
            tasks.append(task)
        elif error is not None and len(errors) < ERRORS_KEPT:
            errors.append(error)
    if not tasks and not errors:
        raise FileUnusable("the input file holds no requests")
    return tasks, errors
