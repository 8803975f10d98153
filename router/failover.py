"""Mid-stream failover: what a broken ``/v1`` stream had said, and the request that continues it.

When the runtime replica serving a stream dies after the first byte, the client already holds part
of the answer. The router keeps the events it relayed (a `Transcript`, bounded in bytes), reads the
text out of them (`Progress`), and asks another replica of the same model to go on from there.
A chat request gets the text as a final assistant message with ``continue_final_message``: the
runtime renders the earlier messages up to the assistant's turn and appends the text, so the model
reads exactly what it had read when it wrote it, and ``max_tokens_counts_final_message`` makes it
count the text's tokens toward ``max_tokens``. A completion request gets the text appended to its
prompt and ``max_tokens`` shrunk by the content events already streamed (one token each, as the
runtime streams them, except where an event held several). The continued stream's opening role
event is dropped (`skip_opening`), so the client sees one stream with nothing repeated.

Everything here is pure: the relay in `openai_api` does the I/O and `dispatch` finds the replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

EVENT_END = b"\n\n"
DONE = b"data: [DONE]\n\n"


class Transcript:
    """The complete SSE events relayed so far, up to ``limit`` bytes; beyond that, `overflowed`.

    `take` splits each upstream chunk at its last event boundary: only whole events go to the
    client, so a continuation never has to finish an event the client saw half of.
    """

    __slots__ = ("_events", "_partial", "limit", "overflowed", "size")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.overflowed = False
        self._events: list[bytes] = []
        self._partial = b""

    def take(self, chunk: bytes) -> bytes:
        """The whole events ``chunk`` completes (to relay now); a trailing partial event waits."""
        if self._partial:
            chunk = self._partial + chunk
        cut = chunk.rfind(EVENT_END) + len(EVENT_END)
        if cut < len(EVENT_END):
            self._partial = chunk
            return b""
        whole, self._partial = chunk[:cut], chunk[cut:]
        self.keep(whole)
        return whole

    def keep(self, events: bytes) -> None:
        """Record relayed events (whole ones) without splitting anything."""
        if self.overflowed:
            return
        self.size += len(events)
        if self.size > self.limit:
            self.overflowed = True
            self._events.clear()
            return
        self._events.append(events)

    def rest(self) -> bytes:
        """The trailing bytes of an upstream that ended without closing its last event."""
        rest, self._partial = self._partial, b""
        return rest

    @property
    def data(self) -> bytes:
        """Every recorded event, in order."""
        return b"".join(self._events)


@dataclass(frozen=True)
class Progress:
    """What a stream had delivered when it broke."""

    text: str  # the content streamed so far
    content_events: int  # events carrying content: tokens, as the runtime streams one per event
    finish_reason: str | None  # set once the upstream had sent its final choice
    done: bool  # ``[DONE]`` was relayed: nothing is missing
    envelope: dict[str, Any] | None  # the last event's id/object/created/model, to close the stream
    tool_calls: bool  # a tool call was streamed: text cannot continue it


def read_progress(data: bytes, route: str) -> Progress:
    """The text and state of the relayed events of a ``chat`` or ``completions`` stream."""
    parts: list[str] = []
    count = 0
    finish: str | None = None
    done = False
    envelope: dict[str, Any] | None = None
    tools = False
    for block in data.replace(b"\r\n", b"\n").split(EVENT_END):
        payload = b"\n".join(line[5:].lstrip() for line in block.split(b"\n") if line.startswith(b"data:"))
        if not payload:
            continue
        if payload == b"[DONE]":
            done = True
            continue
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(event, dict) or not isinstance(event.get("choices"), list):
            continue
        envelope = {key: event[key] for key in ("id", "object", "created", "model") if key in event}
        for choice in event["choices"]:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            piece = _piece(choice, route)
            if piece:
                parts.append(piece)
                count += 1
            delta = choice.get("delta")
            if isinstance(delta, dict) and delta.get("tool_calls"):
                tools = True
            if choice.get("finish_reason"):
                finish = str(choice["finish_reason"])
    return Progress("".join(parts), count, finish, done, envelope, tools)


def _piece(choice: dict[str, Any], route: str) -> str:
    if route == "chat":
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
    else:
        content = choice.get("text")
    return content if isinstance(content, str) else ""


def continuation(document: dict[str, Any], route: str, progress: Progress) -> dict[str, Any] | None:
    """The request that makes another replica go on from ``progress``; None when it cannot.

    It cannot when a grammar shapes the reply (``tools``, a JSON ``response_format``: the grammar
    would start again mid-answer), when a tool call was already streamed, when the request asks for
    several choices, or when a completion's prompt is not one string.
    """
    if progress.tool_calls or document.get("n") not in (None, 1):
        return None
    response_format = document.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
        return None
    continued = dict(document)
    if not progress.text:
        return continued  # nothing was said yet: the same request, from the start
    if route == "chat":
        if document.get("tools") and document.get("tool_choice") != "none":
            return None
        messages = document.get("messages")
        if not isinstance(messages, list):
            return None
        continued["messages"] = [*messages, {"role": "assistant", "content": progress.text}]
        continued["continue_final_message"] = True
        # the runtime counts the text's own tokens: exact where events held several tokens
        continued["max_tokens_counts_final_message"] = True
        return continued
    limit = document.get("max_tokens")
    if isinstance(limit, int) and not isinstance(limit, bool):
        continued["max_tokens"] = max(limit - progress.content_events, 1)
    prompt = document.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        return None
    continued["prompt"] = prompt + progress.text
    return continued


def exhausted(document: dict[str, Any], progress: Progress) -> bool:
    """Whether the stream had already produced every token ``max_tokens`` allowed."""
    limit = document.get("max_completion_tokens", document.get("max_tokens"))
    return isinstance(limit, int) and progress.content_events >= limit


def closing(progress: Progress, route: str, reason: str) -> bytes:
    """The events that end a stream whose answer was complete: the final choice (unless sent), [DONE]."""
    if progress.finish_reason is not None or progress.envelope is None:
        return DONE
    empty: dict[str, Any] = {"delta": {}} if route == "chat" else {"text": ""}
    event = {
        **progress.envelope,
        "choices": [{"index": 0, **empty, "finish_reason": reason, "logprobs": None}],
    }
    return b"data: " + orjson.dumps(event) + EVENT_END + DONE


def skip_opening(events: bytes) -> tuple[bytes, bool]:
    """``events`` without a leading chat role event that carries no text (the client had one),
    and whether the opening is settled (True once a first whole event was seen)."""
    cut = events.find(EVENT_END)
    if cut < 0:
        return events, False
    end = cut + len(EVENT_END)
    first = events[:end].strip()
    if first.startswith(b"data:") and _is_opening(first[5:]):
        return events[end:], True
    return events, True


def _is_opening(payload: bytes) -> bool:
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    choices = event.get("choices") if isinstance(event, dict) else None
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return False
    delta = choices[0].get("delta")
    return (
        isinstance(delta, dict)
        and "role" in delta
        and not delta.get("content")
        and not delta.get("tool_calls")
        and not choices[0].get("finish_reason")
    )
