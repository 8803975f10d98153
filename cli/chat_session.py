"""The state of a terminal chat and its slash commands (pure: no I/O, so every command is testable).

``/reset`` forgets the conversation, ``/model [NAME]`` shows or switches the model, ``/prompt [ID
key=value ...|off]`` shows, sets or clears the system prompt rendered from a Prompt resource, and
``/help`` lists them. Switching model or prompt keeps the conversation, as a chat UI would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inferflux.crds import Prompt
from inferflux.prompts.compiled import VariablesError, compile_prompt

HELP = (
    "/reset              forget the conversation\n"
    "/model [NAME]       show the models, or switch to NAME\n"
    "/prompt [ID k=v...] show the prompts, set the system prompt ID with variables, or /prompt off\n"
    "/exit               leave (or Ctrl-D)"
)


@dataclass
class ChatSession:
    """Who we talk to, with which system prompt, and what was said."""

    model: str
    models: list[str] = field(default_factory=list)
    prompts: dict[str, Prompt] = field(default_factory=dict)
    prompt_id: str | None = None
    system: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)
    max_tokens: int | None = None

    def messages(self, user_text: str) -> list[dict[str, str]]:
        """What to send for ``user_text``: system prompt, the conversation so far, the new turn."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, *self.history, {"role": "user", "content": user_text}]

    def remember(self, user_text: str, answer: str) -> None:
        """Keep a completed exchange in the conversation."""
        self.history += [{"role": "user", "content": user_text}, {"role": "assistant", "content": answer}]


class Quit(Exception):
    """The user asked to leave."""


def run_command(session: ChatSession, line: str) -> str:
    """Apply a slash command to ``session`` and return what to print."""
    name, _, rest = line.strip().partition(" ")
    args = rest.split()
    if name in ("/exit", "/quit"):
        raise Quit
    if name == "/reset":
        session.history.clear()
        return "conversation cleared"
    if name == "/model":
        return _model(session, args)
    if name == "/prompt":
        return _prompt(session, args)
    if name == "/help":
        return HELP
    return f"unknown command {name}; /help lists them"


def _model(session: ChatSession, args: list[str]) -> str:
    if not args:
        listed = ", ".join(f"*{m}" if m == session.model else m for m in session.models)
        return f"model: {session.model} (available: {listed or 'unknown'})"
    if session.models and args[0] not in session.models:
        return f"no model {args[0]!r}; available: {', '.join(session.models)}"
    session.model = args[0]
    return f"model: {session.model}"


def _prompt(session: ChatSession, args: list[str]) -> str:
    if not args:
        current = session.prompt_id or "none"
        return f"prompt: {current} (available: {', '.join(sorted(session.prompts)) or 'none'})"
    if args[0] == "off":
        session.prompt_id = session.system = None
        return "prompt: none"
    prompt = session.prompts.get(args[0])
    if prompt is None:
        return f"no prompt {args[0]!r}; available: {', '.join(sorted(session.prompts)) or 'none'}"
    variables: dict[str, Any] = {}
    for pair in args[1:]:
        key, sep, value = pair.partition("=")
        if not sep:
            return f"variables are key=value, got {pair!r}"
        variables[key] = value
    try:
        session.system = compile_prompt(prompt.spec).render(variables)
    except VariablesError as error:
        return f"prompt {args[0]} not set: {error}"
    session.prompt_id = args[0]
    return f"prompt: {args[0]}@{prompt.spec.version}"
