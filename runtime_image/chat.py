"""Chat prompts: the GGUF's own Jinja chat template, or a documented plain-transcript fallback.

Base models such as the bundled Gemma-3 270M ship no ``tokenizer.chat_template``. They get the
fallback transcript below, which a base model continues naturally, and ``\\nUser:`` becomes an extra
stop string so the model does not write the user's next turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from jinja2.sandbox import ImmutableSandboxedEnvironment

FALLBACK_STOP = "\nUser:"
_ROLE_NAMES = {
    "system": "System",
    "developer": "System",
    "user": "User",
    "assistant": "Assistant",
    "tool": "Tool",
}


def message_text(content: Any) -> str:
    """The text of an OpenAI message ``content``: a string, or the text parts of a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def fallback_prompt(messages: Sequence[dict[str, Any]]) -> str:
    """A plain transcript: ``Role: text`` lines, then ``Assistant:`` for the model to continue."""
    lines = []
    for message in messages:
        role = _ROLE_NAMES.get(message.get("role", ""), "User")
        text = message_text(message.get("content"))
        for call in message.get("tool_calls") or ():
            function = call.get("function", {})
            text += orjson.dumps(
                {"name": function.get("name"), "arguments": function.get("arguments")}
            ).decode()
        lines.append(f"{role}: {text}")
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
