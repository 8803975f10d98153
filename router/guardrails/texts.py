"""The text a request carries, found in the shapes the router accepts, and rewritten in place.

OpenAI chat (``messages[].content`` as a string or as parts whose ``type`` is ``text``), Anthropic
messages (the same, plus ``system`` and the text inside ``tool_result`` blocks), completions
(``prompt``: a string or a list of strings) and embeddings (``input``: likewise). Token-id prompts,
images, audio, tool-call arguments and other fields are not text to the guardrails and are left
alone.

Each piece of text has a `Source`: who wrote it, as far as the router can tell. User and tool
messages are untrusted (the anti-injection rules apply to them, as on the prompt routes); system
and developer messages are the application's own; a raw completion prompt is the caller's template
and embedding input is never read as instructions, so neither is checked for injection.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any


class Source(StrEnum):
    """Who wrote a piece of text."""

    UNTRUSTED = "untrusted"  # user, tool and function messages
    APPLICATION = "application"  # system and developer messages, the Anthropic ``system`` field
    ASSISTANT = "assistant"  # earlier answers replayed in the conversation
    PROMPT = "prompt"  # completions' prompt, embeddings' input


UNTRUSTED_ROLES = frozenset({"user", "tool", "function"})
APPLICATION_ROLES = frozenset({"system", "developer"})

Rewrite = Callable[[str, Source], str]


def _role_source(role: Any) -> Source:
    if role in UNTRUSTED_ROLES:
        return Source.UNTRUSTED
    if role in APPLICATION_ROLES:
        return Source.APPLICATION
    return Source.ASSISTANT


def _content(content: Any, source: Source, rewrite: Rewrite) -> Any:
    """A message's content: a string, or a list of parts of which the text ones are rewritten."""
    if isinstance(content, str):
        return rewrite(content, source)
    if not isinstance(content, list):
        return content
    parts: list[Any] = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            part = {**part, "text": rewrite(part["text"], source)}
        elif isinstance(part, dict) and part.get("type") == "tool_result" and "content" in part:
            part = {**part, "content": _content(part["content"], Source.UNTRUSTED, rewrite)}
        parts.append(part)
    return parts


def _strings(value: Any, source: Source, rewrite: Rewrite) -> Any:
    """A string or a list of strings (other items, such as token ids, kept)."""
    if isinstance(value, str):
        return rewrite(value, source)
    if isinstance(value, list):
        return [rewrite(item, source) if isinstance(item, str) else item for item in value]
    return value


def rewrite_texts(document: dict[str, Any], rewrite: Rewrite) -> dict[str, Any]:
    """A copy of ``document`` with every piece of text passed through ``rewrite`` (``document`` itself is
    not changed); fields holding no text are shared with it."""
    out = dict(document)
    messages = document.get("messages")
    if isinstance(messages, list):
        out["messages"] = [
            {**m, "content": _content(m["content"], _role_source(m.get("role")), rewrite)}
            if isinstance(m, dict) and "content" in m
            else m
            for m in messages
        ]
    if "system" in document:
        out["system"] = _content(document["system"], Source.APPLICATION, rewrite)
    for key in ("prompt", "input"):
        if key in document:
            out[key] = _strings(document[key], Source.PROMPT, rewrite)
    return out


def total_chars(document: dict[str, Any]) -> int:
    """How many characters of text ``document`` carries."""
    size = 0

    def count(text: str, source: Source) -> str:
        nonlocal size
        size += len(text)
        return text

    rewrite_texts(document, count)
    return size
