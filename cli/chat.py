"""``inferctl chat``: talk to any InferFlux router (local or in-cluster) through the openai SDK.

With ``--interactive`` it is a terminal chat: answers stream token by token, and slash commands
(see `chat_session`) switch model and system prompt. Without it, it answers one MESSAGE and exits.
The SDK is imported only when the command runs (`chat_client`), so other commands start fast.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000/v1"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``chat``."""
    parser = commands.add_parser(
        "chat",
        help="chat with a model behind a router, streaming",
        description="Chat through the router's OpenAI API. In --interactive mode: /reset, /model, "
        "/prompt, /help, /exit.",
    )
    parser.add_argument("message", nargs="?", help="one message to answer (without --interactive)")
    parser.add_argument("-i", "--interactive", action="store_true", help="a terminal chat")
    parser.add_argument("--url", default=os.environ.get("INFERFLUX_URL", DEFAULT_URL), help="router base URL")
    parser.add_argument("-m", "--model", help="model to talk to (default: the router's first)")
    parser.add_argument(
        "--prompts", type=Path, action="append", help="Prompt YAML files or folders for /prompt"
    )
    parser.add_argument(
        "--max-tokens", type=int, help="longest answer, in tokens (default: the model's limit)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Chat once or interactively (see `chat_client.run`)."""
    from inferflux.cli import chat_client

    return chat_client.run(args)
