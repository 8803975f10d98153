"""Chat prompts: the GGUF's own Jinja chat template, or a documented plain-transcript fallback.

Messages are checked before rendering: a role the runtime does not know, a field it would drop, or
a content part a text-only model cannot read is refused with a 400 instead of being silently left
out of the prompt. Content given as a list of text parts is joined into one string, the shape every
template takes.

Base models such as Gemma-3 270M ship no ``tokenizer.chat_template``. They get the fallback
transcript below, which a base model continues naturally, and ``\\nUser:`` becomes an extra stop
string so the model does not write the user's next turn. A template that does not render tools or
tool calls itself gets them as text: the tool list as a system message, each call as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from jinja2.sandbox import ImmutableSandboxedEnvironment

from inferflux.runtime.errors import APIError, bad_request

FALLBACK_STOP = "\nUser:"
_ROLE_NAMES = {
    "system": "System",
    "developer": "System",
    "user": "User",
    "assistant": "Assistant",
    "tool": "Tool",
}


# The message fields each role may carry; any other field would be dropped from the prompt.
_FIELDS = {
    "system": {"role", "content"},
    "developer": {"role", "content"},
    "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls"},
    "tool": {"role", "content", "tool_call_id"},
}
_IMAGE_PARTS = {"image_url", "input_image", "image"}


def message_text(content: Any) -> str:
    """The text of an OpenAI message ``content``: a string, or the text parts of a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def _content_text(content: Any, where: str) -> str | None:
    """``content`` as one string (None stays None), or a 400 for a part this runtime cannot read."""
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or a list of content parts", "messages")
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _IMAGE_PARTS:
            raise APIError(
                400,
                f"{where} has an {kind} part, but this model reads text only",
                param="messages",
                code="model_not_multimodal",
            )
        if kind != "text" or not isinstance(part.get("text"), str):
            raise bad_request(f"{where}: content parts of type {kind!r} are not supported", "messages")
        texts.append(part["text"])
    return "".join(texts)


def with_default_system(messages: list[dict[str, Any]], prompt: str) -> list[dict[str, Any]]:
    """``messages`` with ``prompt`` as a system message first, unless they bring their own."""
    if not prompt or any(message.get("role") == "system" for message in messages):
        return messages
    return [{"role": "system", "content": prompt}, *messages]


def checked_messages(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """``messages`` with known roles and fields only, each content as one string; a 400 otherwise."""
    checked = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where} must be a message object", "messages")
        role = message.get("role")
        fields = _FIELDS.get(role) if isinstance(role, str) else None
        if fields is None:
            roles = ", ".join(_FIELDS)
            raise bad_request(f"{where}.role must be one of {roles}, not {role!r}", "messages")
        extra = sorted(set(message) - fields)
        if extra:
            raise bad_request(f"{where}: {extra[0]} is not supported on a {role} message", "messages")
        content = _content_text(message.get("content"), where)
        if content is None and not (role == "assistant" and message.get("tool_calls")):
            raise bad_request(f"{where}.content is required", "messages")
        calls = message.get("tool_calls")
        if calls is not None and not (
            isinstance(calls, list)
            and all(isinstance(c, dict) and isinstance(c.get("function"), dict) for c in calls)
        ):
            raise bad_request(f"{where}.tool_calls must be a list of function calls", "messages")
        checked.append({**message, "content": content})
    return checked


def split_final_assistant(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """``continue_final_message``: the conversation before its last message, and that message's text.

    The last message must be an assistant message with text content (no tool calls): the model
    goes on writing it. The prompt is the earlier messages rendered up to where the assistant's
    reply begins, followed by this text, which is exactly what the model had read when it wrote
    that text itself; so a reply cut short (say, by a replica that died) continues where it
    stopped. Templates are never asked to render the unfinished turn, which some would close.
    """
    final = messages[-1] if messages else {}
    if (
        final.get("role") != "assistant"
        or final.get("tool_calls")
        or not isinstance(final.get("content"), str)
    ):
        raise bad_request(
            "continue_final_message needs the last message to be an assistant message with text content",
            "messages",
        )
    if len(messages) < 2:
        raise bad_request("continue_final_message needs a message before the assistant's", "messages")
    return messages[:-1], final["content"]


def calls_as_text(message: dict[str, Any]) -> str:
    """A message's text followed by its tool calls as JSON, for prompts that have no tool-call syntax."""
    text = message_text(message.get("content"))
    for call in message.get("tool_calls") or ():
        function = call.get("function", {})
        text += orjson.dumps({"name": function.get("name"), "arguments": function.get("arguments")}).decode()
    return text


def fallback_prompt(messages: Sequence[dict[str, Any]]) -> str:
    """A plain transcript: ``Role: text`` lines, then ``Assistant:`` for the model to continue."""
    lines = [f"{_ROLE_NAMES[message['role']]}: {calls_as_text(message)}" for message in messages]
    return "\n".join(lines) + "\nAssistant:"


class ChatTemplate:
    """Renders chat messages into the prompt text the model was trained on."""

    def __init__(self, source: str | None, bos_token: str = "", eos_token: str = "") -> None:
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token
        self._template = None
        if source:
            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            env.globals["raise_exception"] = _raise
            self._template = env.from_string(source)

    @property
    def renders_tools(self) -> bool:
        """Whether the template writes the ``tools`` list into the prompt itself."""
        return self.source is not None and "tools" in self.source

    @property
    def extra_stops(self) -> tuple[str, ...]:
        """Stop strings the fallback needs; a real template ends turns with an end-of-turn token."""
        return () if self._template else (FALLBACK_STOP,)

    def render(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> str:
        """The prompt for ``messages``, ending where the assistant's reply begins.

        Raises ``ValueError`` when the template rejects the conversation (say, roles out of order).
        """
        if self._template is None:
            return fallback_prompt(messages)
        if self.source is not None and "tool_calls" not in self.source:
            messages = [
                {"role": m["role"], "content": calls_as_text(m)} if m.get("tool_calls") else m
                for m in messages
            ]
        try:
            return self._template.render(
                messages=messages,
                tools=tools,
                add_generation_prompt=True,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except Exception as exc:  # a template is user data: any failure is a bad request
            raise ValueError(f"the chat template rejected these messages: {exc}") from exc


def _raise(message: str) -> None:
    raise ValueError(message)
