"""The SDK side of ``inferctl chat``: streaming answers, the interactive loop, errors as one line."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import cast

import openai
from openai.types.chat import ChatCompletionMessageParam

from inferflux.cli.chat_session import ChatSession, Quit, run_command
from inferflux.cli.errors import CliError
from inferflux.crds import Prompt
from inferflux.operator.local.resources import ResourceError, load

DEFAULT_PROMPTS = Path("docs/examples/local")


def client_for(url: str) -> openai.OpenAI:
    """An SDK client for the router; the key comes from INFERFLUX_API_KEY when the router wants one."""
    return openai.OpenAI(base_url=url, api_key=os.environ.get("INFERFLUX_API_KEY", "local"), max_retries=0)


def describe_error(error: openai.OpenAIError, url: str) -> str:
    """An SDK error as one line."""
    if isinstance(error, openai.APIConnectionError):
        return f"cannot reach the router at {url}"
    if isinstance(error, openai.APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        message = body.get("message") or error.message
        return f"the router answered {error.status_code}: {message}"
    return str(error)


def stream_answer(client: openai.OpenAI, session: ChatSession, text: str) -> str:
    """Print the answer as it streams and return it whole; Ctrl-C stops this answer only."""
    stream = client.chat.completions.create(
        model=session.model,
        messages=cast("list[ChatCompletionMessageParam]", session.messages(text)),
        stream=True,
        max_tokens=openai.omit if session.max_tokens is None else session.max_tokens,
    )
    parts: list[str] = []
    try:
        for chunk in stream:
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta:
                parts.append(delta)
                sys.stdout.write(delta)
                sys.stdout.flush()
    except KeyboardInterrupt:
        stream.close()
        sys.stdout.write(" [stopped]")
    sys.stdout.write("\n")
    return "".join(parts)


def run(args: argparse.Namespace) -> int:
    """Start a session, then chat once or until /exit."""
    client = client_for(args.url)
    try:
        models = [m.id for m in client.models.list()]
    except openai.OpenAIError as error:
        raise CliError(describe_error(error, args.url)) from None
    model = args.model or (models[0] if models else None)
    if model is None:
        raise CliError(f"the router at {args.url} serves no model yet")
    session = ChatSession(
        model=model, models=models, prompts=_prompts(args.prompts), max_tokens=args.max_tokens
    )
    if not args.interactive:
        if not args.message:
            raise CliError("give a MESSAGE, or --interactive", exit_code=2)
        try:
            stream_answer(client, session, args.message)
        except openai.OpenAIError as error:
            raise CliError(describe_error(error, args.url)) from None
        return 0
    return _interact(client, session, args.url)


def _interact(client: openai.OpenAI, session: ChatSession, url: str) -> int:
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401 - line editing and history for input()
    print(f"chatting with {session.model} at {url}; /help lists commands, Ctrl-D leaves")
    while True:
        try:
            text = input(f"{session.model}> ").strip()
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            print()
            continue
        if not text:
            continue
        if text.startswith("/"):
            try:
                print(run_command(session, text))
            except Quit:
                return 0
            continue
        try:
            session.remember(text, stream_answer(client, session, text))
        except openai.OpenAIError as error:
            print(f"error: {describe_error(error, url)}")


def _prompts(paths: list[Path] | None) -> dict[str, Prompt]:
    """Prompt resources for /prompt, by id; the default folder only when it exists."""
    chosen = paths or ([DEFAULT_PROMPTS] if DEFAULT_PROMPTS.is_dir() else [])
    try:
        return {p.spec.id: p for p in load(chosen).prompts}
    except ResourceError as error:
        raise CliError(str(error)) from None
