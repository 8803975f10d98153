"""The output PII filter for answers: OpenAI SSE streams (chat and completions) and whole bodies.

`StreamFilter` sits between the upstream's SSE bytes and the client. It parses each event, passes
the text of every choice (``delta.content`` for chat, ``text`` for completions) through that
choice's `Holdback`, and re-serialises the event with the released text. Held text is released with
the choice's ``finish_reason`` event, or in an extra chunk before ``[DONE]`` or at the end of the
stream. Events without choices (usage, errors) pass unchanged; events left with nothing to say are
dropped. A ``block`` entity raises `UpstreamError` ``guardrail_blocked``: the relay ends the stream
with an OpenAI-shaped ``error`` event, and nothing of the answer passes after it.

``logprobs`` carry the raw tokens of the answer, so they are removed while the filter is on.
Tool-call arguments are passed through unfiltered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from inferflux.crds.guardrails import EntityType, PiiAction
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.guardrails.detect import Detector
from inferflux.router.guardrails.holdback import Holdback
from inferflux.router.guardrails.redact import Applied, apply_actions
from inferflux.router.guardrails.verdicts import Check, Direction, Tally
from inferflux.router.sse import DONE

MAX_EVENT = 1 << 20  # an event this large without its blank line is passed on as it is


def blocked_error(where: str, entities: list[EntityType]) -> UpstreamError:
    """The refusal for blocked personal data: names the entity types, never the values."""
    names = ", ".join(entity.value for entity in entities)
    return UpstreamError(ErrorCode.GUARDRAIL_BLOCKED, f"{where} blocked by this tenant's guardrails: {names}")


def _record(tally: Tally, applied: Applied) -> None:
    for entity, action in applied.hits:
        tally.add(Direction.OUTPUT, Check.PII, entity.value, action.value)


def _answer(payload: bytes) -> tuple[dict[str, Any], list[Any]] | None:
    """An answer (or one event of it) and its choices; None for anything else (usage, errors)."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    choices = document.get("choices") if isinstance(document, dict) else None
    return (document, choices) if isinstance(choices, list) else None


def _text_field(choice: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """Where a choice keeps its text: (the dict holding it, the key)."""
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return (delta, "content") if isinstance(delta.get("content"), str) else None
    if isinstance(choice.get("text"), str):
        return choice, "text"
    return None


class StreamFilter:
    """The output filter for one streamed answer."""

    def __init__(self, detector: Detector, actions: Mapping[EntityType, PiiAction], tally: Tally) -> None:
        self.detector = detector
        self.actions = actions
        self.tally = tally
        self.blocked: list[EntityType] = []
        self._buffer = b""
        self._choices: dict[int, Holdback] = {}
        self._chat = True
        self._last: dict[str, Any] = {}  # the last answer event

    def feed(self, chunk: bytes) -> bytes:
        """Filter the next upstream bytes; returns what to send the client now.

        Raises `UpstreamError` ``guardrail_blocked`` when the answer holds a blocked entity (the
        relay then ends the stream with an error event); nothing passes after that."""
        if self.blocked:
            return b""
        if (
            not self._buffer
            and chunk.endswith(b"\n\n")
            and chunk.find(b"\n\n") == len(chunk) - 2
            and b"\r" not in chunk
        ):
            filtered = self._event(chunk)  # one whole event, the common chunk: no buffering
            self._raise_if_blocked()
            return filtered
        self._buffer += chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
        out: list[bytes] = []
        while True:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                if len(self._buffer) > MAX_EVENT:
                    self.blocked = [EntityType.SECRET]  # stop: nothing unfiltered may pass
                    raise UpstreamError(ErrorCode.UPSTREAM_ERROR, "an answer event too large to filter")
                break
            event, self._buffer = self._buffer[: end + 2], self._buffer[end + 2 :]
            out.append(self._event(event))
            self._raise_if_blocked()
        return b"".join(out)

    def close(self) -> bytes:
        """The upstream ended: what is still held. An answer that came as one JSON document instead
        of events (an upstream that ignored ``stream``) is filtered as a whole."""
        if self.blocked:
            return b""
        rest, self._buffer = self._buffer, b""
        if rest.lstrip().startswith(b"{") and not self._choices:
            return filter_body(rest, self.detector, self.actions, self.tally)
        tail = self._flush_all()
        self._raise_if_blocked()
        return tail + rest

    def _raise_if_blocked(self) -> None:
        if self.blocked:
            self._buffer = b""
            raise blocked_error("answer", self.blocked)

    def _event(self, event: bytes) -> bytes:
        if event.startswith(b"data:") and event.find(b"\n") == len(event) - 2:
            payload = event[5:-2].lstrip()  # one data line, as every upstream here writes them
        else:
            data = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
            if not data:
                return event
            payload = b"\n".join(data)
        if payload == DONE:
            tail = self._flush_all()
            return b"" if self.blocked else tail + event
        answer = _answer(payload)
        if answer is None:
            return event
        document, choices = answer
        self._last = document  # `_flush_all` makes its chunk in this one's image
        keep = bool(document.get("usage"))
        for choice in choices:
            if isinstance(choice, dict):
                keep = self._choice(choice) or keep
                if self.blocked:
                    return b""
        return b"data: " + orjson.dumps(document) + b"\n\n" if keep else b""

    def _choice(self, choice: dict[str, Any]) -> bool:
        """Filter one choice in place; False when it has nothing left to tell the client."""
        choice.pop("logprobs", None)
        index = choice.get("index", 0)
        holdback = self._choices.get(index) if isinstance(index, int) else None
        if holdback is None and isinstance(index, int):
            holdback = self._choices[index] = Holdback(self.detector, self.actions)
        field = _text_field(choice)
        finished = choice.get("finish_reason") is not None
        if holdback is None or (field is None and not finished):
            return True
        if field is None:  # the last event of a choice often carries no text, only finish_reason
            delta = choice.get("delta")
            field = (delta, "content") if isinstance(delta, dict) else (choice, "text")
        self._chat = "delta" in choice
        holder, key = field
        applied = holdback.feed(holder.get(key) or "")
        if finished:
            flushed = holdback.flush()
            applied = Applied(applied.text + flushed.text, applied.hits + flushed.hits)
        if applied.hits:
            _record(self.tally, applied)
            if applied.blocked:
                self.blocked = applied.blocked
                return False
        if applied.text or key in holder:
            holder[key] = applied.text
        if finished:
            return True
        # something else to tell: text, or other fields of the delta (a role, tool calls)
        return bool(applied.text) or (holder is not choice and len(holder) > (key in holder))

    def _flush_all(self) -> bytes:
        """A chunk releasing whatever every choice still holds (b"" when nothing is held)."""
        choices = []
        for index, holdback in sorted(self._choices.items()):
            applied = holdback.flush()
            _record(self.tally, applied)
            if applied.blocked:
                self.blocked = applied.blocked
                return b""
            if applied.text:
                if self._chat:
                    choices.append(
                        {"index": index, "delta": {"content": applied.text}, "finish_reason": None}
                    )
                else:
                    choices.append({"index": index, "text": applied.text, "finish_reason": None})
        if not choices:
            return b""
        template = {k: v for k, v in self._last.items() if k not in ("choices", "usage")}
        return b"data: " + orjson.dumps({**template, "choices": choices}) + b"\n\n"


class BodyFilter:
    """The output filter for one whole (non-streamed) answer: collects it, filters it at the end."""

    def __init__(self, detector: Detector, actions: Mapping[EntityType, PiiAction], tally: Tally) -> None:
        self.detector = detector
        self.actions = actions
        self.tally = tally
        self._body = b""

    def feed(self, chunk: bytes) -> bytes:
        """Keep ``chunk``; nothing is sent before the whole answer is filtered."""
        self._body += chunk
        return b""

    def close(self) -> bytes:
        """The filtered answer; raises `UpstreamError` ``guardrail_blocked`` for a blocked entity."""
        body, self._body = self._body, b""
        return filter_body(body, self.detector, self.actions, self.tally)


def filter_body(
    payload: bytes, detector: Detector, actions: Mapping[EntityType, PiiAction], tally: Tally
) -> bytes:
    """A whole (non-streamed) chat or completions answer with the PII actions applied to its text.

    Raises `UpstreamError` ``guardrail_blocked`` when the answer holds a blocked entity. A body that
    is not an answer (no choices) is returned unchanged."""
    answer = _answer(payload)
    if answer is None:
        return payload
    document, choices = answer
    blocked: list[EntityType] = []
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        choice.pop("logprobs", None)
        message = choice.get("message")
        holder = message if isinstance(message, dict) else choice
        key = "content" if holder is message else "text"
        text = holder.get(key)
        if not isinstance(text, str):
            continue
        applied = apply_actions(text, detector.find(text), actions)
        _record(tally, applied)
        blocked.extend(e for e in applied.blocked if e not in blocked)
        holder[key] = applied.text
    if blocked:
        raise blocked_error("answer", blocked)
    return orjson.dumps(document)
